package sinks_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/sinks/archive"
)

// publishOnly hides every ability of a sink but Publish, as a destination
// that cannot edit or delete would.
type publishOnly struct{ sinks.Sink }

// The dry-run wrapper around a real sink (an archive) answers every write,
// writes nothing, logs what it would do, and has exactly the write
// abilities of the sink it wraps.
func TestDryRunWritesNothing(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	st, err := archive.OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	real, err := archive.NewSink(st, archive.SinkOptions{Actor: "https://ferry.example/users/me"})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	dry := sinks.DryRun(real, slog.New(slog.NewTextHandler(&logs, nil)))

	ref, err := dry.Publish(ctx, sinks.Draft{Key: "k1", Post: post.Post{Text: "never written"}})
	if err != nil || !strings.HasPrefix(ref.ID, "dry-run-") {
		t.Fatalf("Publish = %+v, %v", ref, err)
	}
	ed, ok := dry.(sinks.Editor)
	if !ok {
		t.Fatal("the wrapper of an Editor is no Editor")
	}
	if err := ed.Edit(ctx, "some-id", sinks.Draft{Key: "k1", Post: post.Post{Text: "edited"}}); err != nil {
		t.Fatal(err)
	}
	del, ok := dry.(sinks.Deleter)
	if !ok {
		t.Fatal("the wrapper of a Deleter is no Deleter")
	}
	if err := del.Delete(ctx, "some-id"); err != nil {
		t.Fatal(err)
	}
	if b, ok := dry.(sinks.Backdater); !ok {
		t.Error("the wrapper hides CanBackdate")
	} else if can, err := b.CanBackdate(ctx); !can || err != nil {
		t.Errorf("CanBackdate through the wrapper = %v, %v; want the archive's true", can, err)
	}

	if total, _, err := st.Count(ctx); err != nil || total != 0 {
		t.Fatalf("the archive holds %d posts (%v) after a dry run", total, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "outbox.json")); !os.IsNotExist(err) {
		t.Fatalf("the dry run wrote outbox.json: %v", err)
	}
	for _, want := range []string{"would publish", "would edit", "would delete"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}

	// A sink that can only publish stays so when wrapped: a dry run must
	// not report edits or deletes the real run would skip.
	narrow := sinks.DryRun(publishOnly{real}, slog.New(slog.DiscardHandler))
	if _, ok := narrow.(sinks.Editor); ok {
		t.Error("the wrapper of a publish-only sink claims to edit")
	}
	if _, ok := narrow.(sinks.Deleter); ok {
		t.Error("the wrapper of a publish-only sink claims to delete")
	}
}
