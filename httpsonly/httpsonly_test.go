package httpsonly

import (
	"net/url"
	"testing"
)

func TestCheck(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://example.social/api":  true,
		"wss://example.social/stream": true,
		"http://localhost/x":          true,
		"http://app.localhost/x":      true,
		"http://127.0.0.2/x":          true,
		"http://example.social/x":     false,
		"http://10.0.0.1/x":           false,
		"file:///etc/passwd":          false,
	} {
		u, _ := url.Parse(raw)
		if err := Check(u); (err == nil) != ok {
			t.Errorf("Check(%s) = %v, want ok=%v", raw, err, ok)
		}
	}
}
