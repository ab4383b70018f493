package textfit

import (
	"strings"
	"testing"
)

// WithLinks keeps every link whole and shortens the text before them to
// the limit, counting URLs as the server does.
func TestWithLinks(t *testing.T) {
	link := "https://example.org/media/a-long-file-name-for-the-test.png"
	if got := (Rules{}).WithLinks(" short ", []string{link}, 500); got != "short\n\n"+link {
		t.Errorf("room enough: %q", got)
	}
	if got := (Rules{}).WithLinks("", []string{link}, 500); got != link {
		t.Errorf("no text: %q", got)
	}
	if got := (Rules{}).WithLinks("text", nil, 5); got != "text" {
		t.Errorf("no links: %q", got)
	}
	long := strings.Repeat("word ", 40) // 200 characters
	for _, r := range []Rules{{}, {CharsPerURL: 23}} {
		got := r.WithLinks(long, []string{link, link}, 200)
		if !strings.HasSuffix(got, "\n\n"+link+"\n"+link) || !strings.Contains(got, "…") {
			t.Errorf("%+v: links not whole or text not shortened: %q", r, got)
		}
		if n := r.Count(got); n > 200 {
			t.Errorf("%+v: counts %d, over 200: %q", r, n, got)
		}
	}
}
