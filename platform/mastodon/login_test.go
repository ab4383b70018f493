package mastodon

import "testing"

func TestCodeFromInput(t *testing.T) {
	if c, err := codeFromInput("abc123", "s"); err != nil || c != "abc123" {
		t.Errorf("bare code: %q %v", c, err)
	}
	if c, err := codeFromInput("http://127.0.0.1:47613/callback?code=xyz&state=s", "s"); err != nil || c != "xyz" {
		t.Errorf("pasted URL: %q %v", c, err)
	}
	if _, err := codeFromInput("http://127.0.0.1:47613/callback?code=xyz&state=other", "s"); err == nil {
		t.Error("a foreign state was accepted")
	}
	if _, err := codeFromInput("http://127.0.0.1:47613/callback?code=&state=s", "s"); err == nil {
		t.Error("an address without a code was accepted")
	}
}
