package bridge_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	sinkarchive "github.com/fedi-ferry/ferry/sinks/archive"
	srcarchive "github.com/fedi-ferry/ferry/sources/archive"
	"github.com/fedi-ferry/ferry/state"
	"github.com/fedi-ferry/ferry/state/bridgestore"
)

// openArchiveSink opens an archive directory for writing.
func openArchiveSink(t *testing.T, dir, actor string) *sinkarchive.Sink {
	t.Helper()
	st, err := sinkarchive.OpenStore(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := sinkarchive.NewSink(st, sinkarchive.SinkOptions{Actor: actor})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A dry run over a route whose origin posts were edited and deleted plans
// (and reports) the edit and the delete through the dry-run sink, and
// writes nothing; the real run that follows applies both. Origin and
// destination are real archives, the engine runs on the real store.
func TestMirrorDryRunPlansEditAndDelete(t *testing.T) {
	ctx := context.Background()
	originDir, destDir := t.TempDir(), t.TempDir()
	origin := openArchiveSink(t, originDir, "https://origin.example/users/me")
	dest := openArchiveSink(t, destDir, "https://dest.example/users/me")
	t0 := time.Now().Add(-time.Hour).UTC()
	kept, err := origin.Publish(ctx, sinks.Draft{PublishedAt: t0, Post: post.Post{Text: "first version", Visibility: post.Public}})
	if err != nil {
		t.Fatal(err)
	}
	doomed, err := origin.Publish(ctx, sinks.Draft{PublishedAt: t0.Add(time.Minute), Post: post.Post{Text: "soon deleted", Visibility: post.Public}})
	if err != nil {
		t.Fatal(err)
	}

	st := state.TestStore(t)
	route := func(s sinks.Sink) *bridge.Route {
		return &bridge.Route{Name: "from-archive", Kind: bridge.KindAccount, FirstRun: 2, SourceAccount: "me@origin.example",
			Source: srcarchive.NewSource(originDir, srcarchive.SourceOptions{}),
			Sinks:  []bridge.Target{{Account: "me@dest.example", Sink: s}}}
	}
	res, err := bridge.New(bridgestore.New(st), bridge.Options{}).Run(ctx, route(dest))
	if err != nil || res.Published != 2 {
		t.Fatalf("first run: published %d, %v", res.Published, err)
	}

	if err := origin.Edit(ctx, kept.ID, sinks.Draft{Post: post.Post{Text: "second version"}}); err != nil {
		t.Fatal(err)
	}
	if err := origin.Delete(ctx, doomed.ID); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(destDir, "outbox.json"))
	if err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	dry := bridge.New(bridgestore.New(st), bridge.Options{DryRun: true, Logger: log})
	res, err = dry.Run(ctx, route(sinks.DryRun(dest, log)))
	if err != nil {
		t.Fatal(err)
	}
	planned := map[string]string{}
	for _, s := range res.Planned {
		planned[s.Item] = s.Kind
	}
	if planned[kept.URL] != bridge.StepEdit || planned[doomed.URL] != bridge.StepDelete || len(res.Planned) != 2 {
		t.Fatalf("dry run planned %+v; want an edit of %s and a delete of %s", res.Planned, kept.URL, doomed.URL)
	}
	after, err := os.ReadFile(filepath.Join(destDir, "outbox.json"))
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the dry run changed the destination (%v)", err)
	}

	// Nothing was recorded: the real run finds the same work and does it.
	res, err = bridge.New(bridgestore.New(st), bridge.Options{}).Run(ctx, route(dest))
	if err != nil || res.Edited != 1 || res.Deleted != 1 {
		t.Fatalf("real run after the dry run: edited %d deleted %d, %v", res.Edited, res.Deleted, err)
	}
	page, err := srcarchive.NewSource(destDir, srcarchive.SourceOptions{}).Fetch(ctx, "")
	if err != nil || len(page.Posts) != 2 {
		t.Fatalf("destination: %+v, %v", page.Posts, err)
	}
	if got := page.Posts[0]; got.Text != "second version" || got.Deleted {
		t.Errorf("edited copy: %q deleted=%v", got.Text, got.Deleted)
	}
	if !page.Posts[1].Deleted {
		t.Errorf("deleted copy not marked deleted")
	}
}
