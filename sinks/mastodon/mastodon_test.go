package mastodon

import (
	"github.com/fedi-ferry/ferry/fedi"
	"testing"
	"time"
)

func TestULIDPrefix(t *testing.T) {
	// The ULID spec's example ID 01ARZ3NDEKTSV4RRFFQ69G5FAV starts with the time 1469922850259 ms.
	if got := ulidPrefix(time.UnixMilli(1469922850259)); got != "01ARZ3NDEK" {
		t.Fatalf("ulidPrefix = %s, want 01ARZ3NDEK", got)
	}
}

func TestNormalize(t *testing.T) {
	server := fedi.HTMLText(`<p>hi <span class="h-card"><a href="https://b.example/@bob">@<span>bob</span></a></span> see <a href="https://x.example/a"><span class="invisible">https://</span><span>x.example/a</span></a></p><p>next<br/>line &amp; more</p>`, nil)
	draft := "hi @bob@b.example see https://x.example/a\n\nnext\nline & more"
	if normalize(server) != normalize(draft) {
		t.Fatalf("normalize(server) = %q\nnormalize(draft)  = %q", normalize(server), normalize(draft))
	}
}
