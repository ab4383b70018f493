package memsink_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	"github.com/fedi-ferry/ferry/sinks/memsink"
	"github.com/fedi-ferry/ferry/sinks/sinktest"
)

// inspector reads the sink's posts back as a server would show them.
type inspector struct{ s *memsink.Sink }

func (in inspector) Get(ctx context.Context, id string) (sinktest.Published, error) {
	d, ok := in.s.Get(id)
	if !ok {
		return sinktest.Published{}, fmt.Errorf("%s: %w", id, sinktest.ErrGone)
	}
	p := d.Post
	var poll []string
	if p.Poll != nil {
		poll = p.Poll.Options
	}
	return sinktest.Published{Text: p.Text, Summary: p.Summary, Sensitive: p.Sensitive, Visibility: p.Visibility,
		Language: p.Language, ReplyTo: d.ReplyTo, Media: p.Media, Poll: poll, CreatedAt: p.CreatedAt}, nil
}

// The double keeps the contract the engine relies on.
func TestContract(t *testing.T) {
	s := memsink.New()
	sinktest.Run(t, s, inspector{s}, sinktest.Options{Polls: true, MediaReferences: true})
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	s := memsink.New()
	boom := errors.New("502 Bad Gateway")
	s.Fail(memsink.OpPublish, memsink.Fault{Err: boom}, memsink.Fault{Err: boom, Done: true})
	d := sinks.Draft{Post: post.Post{Text: "x"}}
	if _, err := s.Publish(ctx, d); !errors.Is(err, boom) || s.Count() != 0 {
		t.Fatalf("a failed publish: %v, %d posts", err, s.Count())
	}
	// The lost answer: the post is made, the caller gets the error.
	if _, err := s.Publish(ctx, d); !errors.Is(err, boom) || s.Count() != 1 {
		t.Fatalf("a lost answer: %v, %d posts", err, s.Count())
	}
	if ref, found, err := s.Find(ctx, d, time.Time{}); err != nil || !found || ref.ID != "r1" {
		t.Fatalf("Find = %+v %v %v", ref, found, err)
	}
	if _, err := s.Publish(ctx, d); err != nil || s.Count() != 2 || s.Calls(memsink.OpPublish) != 3 {
		t.Fatalf("after the faults: %v, %d posts, %d calls", err, s.Count(), s.Calls(memsink.OpPublish))
	}
}
