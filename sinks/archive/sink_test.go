package archive_test

import (
	"context"
	"fmt"
	"path"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks/archive"
	"github.com/fedi-ferry/ferry/sinks/sinktest"
	srcarchive "github.com/fedi-ferry/ferry/sources/archive"
)

// archiveInspector reads posts back from the archive's outbox.json with the
// archive reader, the way every other tool reads the archive: not through
// the sink's record store.
type archiveInspector struct{ dir string }

func (in archiveInspector) Get(ctx context.Context, id string) (sinktest.Published, error) {
	var found *post.Post
	err := srcarchive.EachPost(ctx, in.dir, func(p post.Post) error {
		if path.Base(p.OriginID) == id {
			found = &p
		}
		return nil
	})
	if err != nil {
		return sinktest.Published{}, err
	}
	if found == nil || found.Deleted {
		return sinktest.Published{}, fmt.Errorf("post %s: %w", id, sinktest.ErrGone)
	}
	p := found
	got := sinktest.Published{Text: p.Text, Summary: p.Summary, Sensitive: p.Sensitive, Visibility: p.Visibility,
		Language: p.Language, Media: p.Media, CreatedAt: p.CreatedAt}
	if p.InReplyTo != "" {
		got.ReplyTo = path.Base(p.InReplyTo)
	}
	if p.Poll != nil {
		got.Poll = p.Poll.Options
	}
	for i := range got.Media {
		if !strings.HasPrefix(got.Media[i].Path, in.dir) {
			return got, fmt.Errorf("media %d of %s is not in the archive: %+v", i, id, got.Media[i])
		}
	}
	return got, nil
}

// The archive writer passes the sink contract: publish, reply, media, poll,
// edit, delete (as a deletion mark readers honour), backdating and keys.
func TestSinkContract(t *testing.T) {
	dir := t.TempDir()
	st, err := archive.OpenStore(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := archive.NewSink(st, archive.SinkOptions{Actor: "https://ferry.example/users/me"})
	if err != nil {
		t.Fatal(err)
	}
	sinktest.Run(t, s, archiveInspector{dir}, sinktest.Options{Idempotent: true, Polls: true, MediaReferences: true})
}
