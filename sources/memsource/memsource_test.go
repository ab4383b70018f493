package memsource_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sources"
	"github.com/fedi-ferry/ferry/sources/memsource"
)

func TestFetch(t *testing.T) {
	ctx := context.Background()
	s := memsource.New(post.Post{OriginID: "a"}, post.Post{OriginID: "b"})
	s.SetWait(time.Minute)
	s.Add(post.Post{OriginID: "c"})
	s.Edit(post.Post{OriginID: "b", Text: "edited"})
	if !s.Delete("a") || s.Delete("zz") {
		t.Error("Delete reported wrongly")
	}
	boom := errors.New("503")
	s.FailFetch(boom)
	if _, err := s.Fetch(ctx, ""); !errors.Is(err, boom) {
		t.Fatalf("the queued error: %v", err)
	}
	p, err := s.Fetch(ctx, "all")
	if err != nil || len(p.Posts) != 2 || p.Posts[0].Text != "edited" || p.Posts[1].OriginID != "c" || p.Wait != time.Minute {
		t.Fatalf("page %+v, %v", p, err)
	}
	if s.Fetches() != 2 {
		t.Errorf("%d fetches", s.Fetches())
	}
}

func TestStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := memsource.New()
	events := make(chan sources.Event, 1)
	done := make(chan error, 1)
	go func() { done <- s.Stream(ctx, events) }()
	if err := s.Push(ctx, sources.Event{Kind: sources.Created, Post: post.Post{OriginID: "x"}}); err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Post.OriginID != "x" {
		t.Fatalf("event %+v", ev)
	}
	s.EndStream()
	if err := <-done; err == nil {
		t.Fatal("an ended stream returned no error")
	}
	if s.Streams() != 1 {
		t.Errorf("%d streams", s.Streams())
	}
}
