package memsource_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/sources/memsource"
	"github.com/fedi-ferry/ferry/sources/sourcetest"
)

// memOrigin changes a memsource as an origin would: the post joins the
// window, and a running stream hears of it.
type memOrigin struct {
	s  *memsource.Source
	mu sync.Mutex
	n  int
	at time.Time
}

// push hands ev to a running stream, if one takes it soon: an origin does
// not wait for listeners.
func (o *memOrigin) push(ctx context.Context, ev sources.Event) {
	go func() {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = o.s.Push(pctx, ev)
	}()
}

func (o *memOrigin) Post(ctx context.Context, text string) (string, error) {
	o.mu.Lock()
	o.n++
	o.at = o.at.Add(time.Minute)
	p := post.Post{OriginID: fmt.Sprintf("m%d", o.n), Text: text, CreatedAt: o.at}
	o.mu.Unlock()
	o.s.Add(p)
	o.push(ctx, sources.Event{Kind: sources.Created, Post: p})
	return p.OriginID, nil
}

func (o *memOrigin) Edit(ctx context.Context, id, text string) error {
	p := post.Post{OriginID: id, Text: text, EditedAt: time.Now()}
	if !o.s.Edit(p) {
		return fmt.Errorf("no post %s", id)
	}
	o.push(ctx, sources.Event{Kind: sources.Edited, Post: p})
	return nil
}

func (o *memOrigin) Delete(ctx context.Context, id string) error {
	if !o.s.Delete(id) {
		return fmt.Errorf("no post %s", id)
	}
	o.push(ctx, sources.Event{Kind: sources.Deleted, Post: post.Post{OriginID: id}})
	return nil
}

// The engine's test double keeps the contract every source keeps: it
// answers with its whole window, as a feed does.
func TestSourceContract(t *testing.T) {
	s := memsource.New()
	sourcetest.Run(t, s, &memOrigin{s: s, at: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, sourcetest.Options{Window: true})
}
