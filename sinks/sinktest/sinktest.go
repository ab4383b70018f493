// Package sinktest is the contract suite every sinks.Sink must pass. A
// plugin's test calls Run with a sink bound to a real (or, where no server
// can run here, documented fake) destination and an Inspector that reads
// back what was published through an independent channel.
package sinktest

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
)

// ErrGone is wrapped by Inspector.Get for a post that no longer exists.
var ErrGone = errors.New("post is gone")

// Published is a post as the destination shows it.
type Published struct {
	Text       string // plain text, white space as the server renders it
	Summary    string
	Sensitive  bool
	Visibility post.Visibility
	Language   string
	ReplyTo    string // parent's ID, "" for none
	Media      []post.Media
	Poll       []string
	CreatedAt  time.Time
}

// Inspector reads published posts back without going through the sink.
type Inspector interface {
	Get(ctx context.Context, id string) (Published, error)
}

// Options tune the suite to what the destination supports.
type Options struct {
	// Idempotent: publishing the same Key twice yields one post.
	Idempotent bool
	// Polls: the destination can carry polls.
	Polls bool
	// PublicOnly: every post on the destination is public (Bluesky), so
	// the draft's visibility is not compared.
	PublicOnly bool
	// NoFocus: the destination keeps no focal points of images (Bluesky),
	// so only the alt text is compared.
	NoFocus bool
	// NoLanguage: the destination keeps no language of posts (Misskey's
	// notes have none), so it is not compared.
	NoLanguage bool
	// MediaReferences: the destination keeps media as references and
	// never reads the files (the archive, memory), so a file that cannot
	// be read is not its concern.
	MediaReferences bool
}

// Run runs the contract suite against s.
func Run(t *testing.T, s sinks.Sink, in Inspector, o Options) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	key := func(name string) string { return fmt.Sprintf("sinktest-%s-%d", name, time.Now().UnixNano()) }

	t.Run("Publish", func(t *testing.T) {
		d := sinks.Draft{Key: key("publish"), Post: post.Post{
			Text: "Hello from the sink contract suite.\nSecond line.", Summary: "a content warning",
			Sensitive: true, Visibility: post.Unlisted, Language: "en",
		}}
		ref, err := s.Publish(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if ref.ID == "" {
			t.Fatal("Publish returned no ID")
		}
		got, err := in.Get(ctx, ref.ID)
		if err != nil {
			t.Fatal(err)
		}
		if norm(got.Text) != norm(d.Post.Text) || got.Summary != d.Post.Summary || !got.Sensitive ||
			(got.Visibility != post.Unlisted && !o.PublicOnly) || (got.Language != "en" && !o.NoLanguage) {
			t.Errorf("published %+v, want the draft %+v", got, d.Post)
		}
	})

	t.Run("Reply", func(t *testing.T) {
		parent, err := s.Publish(ctx, sinks.Draft{Key: key("parent"), Post: post.Post{Text: "thread start", Visibility: post.Public}})
		if err != nil {
			t.Fatal(err)
		}
		child, err := s.Publish(ctx, sinks.Draft{Key: key("child"), ReplyTo: parent.ID, Post: post.Post{Text: "thread continues", Visibility: post.Unlisted}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := in.Get(ctx, child.ID)
		if err != nil || got.ReplyTo != parent.ID {
			t.Fatalf("reply's parent = %q (%v), want %q", got.ReplyTo, err, parent.ID)
		}
	})

	if !o.MediaReferences {
		t.Run("UnreadableMediaGoesAsLink", func(t *testing.T) {
			// A file that cannot be read would fail the same way at every
			// attempt: the post goes on, with the file's address.
			link := "https://example.org/m.png"
			d := sinks.Draft{Key: key("unreadable"), Post: post.Post{Text: "a post whose file is gone", Visibility: post.Public,
				Media: []post.Media{{Path: filepath.Join(t.TempDir(), "gone.png"), URL: link, MIMEType: "image/png", Description: "gone"}}}}
			ref, err := s.Publish(ctx, d)
			if err != nil {
				t.Fatalf("publish with an unreadable file: %v", err)
			}
			got, err := in.Get(ctx, ref.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(norm(got.Text), norm(d.Post.Text)) || !strings.Contains(got.Text, "example.org/m.png") || len(got.Media) != 0 {
				t.Errorf("published %q with %d files, want the text and the file's address, no file", got.Text, len(got.Media))
			}
			if f, ok := s.(sinks.Finder); ok {
				// Its own copy is recognised, so a lost answer is not
				// published twice.
				found, ok, err := f.Find(ctx, d, time.Now().Add(-time.Minute))
				if err != nil || !ok || found.ID != ref.ID {
					t.Errorf("Find after the publish: %+v %v %v, want %s", found, ok, err, ref.ID)
				}
			}
		})
	}

	t.Run("MediaWithAltAndFocus", func(t *testing.T) {
		img := writePNG(t)
		ref, err := s.Publish(ctx, sinks.Draft{Key: key("media"), Post: post.Post{Text: "a picture", Visibility: post.Unlisted,
			Media: []post.Media{{Path: img, MIMEType: "image/png", Description: "a blue square, for testing", FocusX: 0.5, FocusY: -0.25}}}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := in.Get(ctx, ref.ID)
		if err != nil || len(got.Media) != 1 {
			t.Fatalf("media = %+v (%v)", got.Media, err)
		}
		m := got.Media[0]
		if m.Description != "a blue square, for testing" || (!o.NoFocus && (m.FocusX != 0.5 || m.FocusY != -0.25)) {
			t.Errorf("media = %+v, want the alt text and focus kept", m)
		}
	})

	if o.Polls {
		t.Run("Poll", func(t *testing.T) {
			ref, err := s.Publish(ctx, sinks.Draft{Key: key("poll"), Post: post.Post{Text: "which?", Visibility: post.Unlisted,
				Poll: &post.Poll{Options: []string{"this", "that"}, ExpiresAt: time.Now().Add(48 * time.Hour)}}})
			if err != nil {
				t.Fatal(err)
			}
			got, err := in.Get(ctx, ref.ID)
			if err != nil || strings.Join(got.Poll, "|") != "this|that" {
				t.Fatalf("poll = %v (%v)", got.Poll, err)
			}
		})
	}

	if ed, ok := s.(sinks.Editor); ok {
		t.Run("EditKeepsMedia", func(t *testing.T) {
			d := sinks.Draft{Key: key("edit"), Post: post.Post{Text: "before the edit", Visibility: post.Unlisted,
				Media: []post.Media{{Path: writePNG(t), MIMEType: "image/png", Description: "kept across edits"}}}}
			ref, err := s.Publish(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			d.Post.Text, d.Post.Summary = "after the edit", "now with a warning"
			if err := ed.Edit(ctx, ref.ID, d); err != nil {
				t.Fatal(err)
			}
			got, err := in.Get(ctx, ref.ID)
			if err != nil || norm(got.Text) != "after the edit" || got.Summary != "now with a warning" || len(got.Media) != 1 {
				t.Fatalf("after edit: %+v (%v)", got, err)
			}
		})
	}

	if del, ok := s.(sinks.Deleter); ok {
		t.Run("DeleteIsIdempotent", func(t *testing.T) {
			ref, err := s.Publish(ctx, sinks.Draft{Key: key("delete"), Post: post.Post{Text: "short-lived", Visibility: post.Unlisted}})
			if err != nil {
				t.Fatal(err)
			}
			if err := del.Delete(ctx, ref.ID); err != nil {
				t.Fatal(err)
			}
			// Servers may finish a delete in the background (GoToSocial
			// does): give it a few seconds to disappear.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				if _, err = in.Get(ctx, ref.ID); errors.Is(err, ErrGone) || time.Now().After(deadline) {
					break
				}
			}
			if !errors.Is(err, ErrGone) {
				t.Fatalf("after delete, Get = %v; want ErrGone", err)
			}
			if err := del.Delete(ctx, ref.ID); err != nil {
				t.Fatalf("second delete: %v", err)
			}
		})
	}

	if l, ok := s.(sinks.Limiter); ok {
		t.Run("Limits", func(t *testing.T) {
			lim, err := l.Limits(ctx)
			if err != nil || lim.MaxChars <= 0 || lim.MaxMedia <= 0 {
				t.Fatalf("Limits = %+v, %v", lim, err)
			}
		})
	}

	if f, ok := s.(sinks.Finder); ok {
		t.Run("FindsEarlierCopy", func(t *testing.T) {
			since := time.Now()
			d := sinks.Draft{Key: key("find"), Post: post.Post{Text: "find me again https://example.org/x #tag", Visibility: post.Unlisted}}
			if _, found, err := f.Find(ctx, d, since); err != nil || found {
				t.Fatalf("Find before publishing: found=%v err=%v", found, err)
			}
			ref, err := s.Publish(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			got, found, err := f.Find(ctx, d, since)
			if err != nil || !found || got.ID != ref.ID {
				t.Fatalf("Find = %+v, %v, %v; want %s", got, found, err, ref.ID)
			}
		})
	}

	if b, ok := s.(sinks.Backdater); ok {
		t.Run("Backdate", func(t *testing.T) {
			can, err := b.CanBackdate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			when := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
			ref, err := s.Publish(ctx, sinks.Draft{Key: key("backdate"), PublishedAt: when,
				Post: post.Post{Text: "an old post", Visibility: post.Public}})
			if !can {
				if !errors.Is(err, sinks.ErrNoBackdate) || !sinks.IsPermanent(err) {
					t.Fatalf("backdating on a sink that cannot: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := in.Get(ctx, ref.ID)
			if err != nil || !got.CreatedAt.Equal(when) {
				t.Fatalf("backdated post created %v (%v), want %v", got.CreatedAt, err, when)
			}
		})
	}

	t.Run("CancelledContext", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Publish(cctx, sinks.Draft{Key: key("cancel"), Post: post.Post{Text: "never", Visibility: post.Unlisted}}); err == nil {
			t.Fatal("Publish with a cancelled context succeeded")
		}
	})

	if o.Idempotent {
		t.Run("SameKeyOnePost", func(t *testing.T) {
			d := sinks.Draft{Key: key("idem"), Post: post.Post{Text: "once", Visibility: post.Unlisted}}
			a, err := s.Publish(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			b, err := s.Publish(ctx, d)
			if err != nil || a.ID != b.ID {
				t.Fatalf("same key published %s and %s (%v)", a.ID, b.ID, err)
			}
		})
	}
}

func norm(s string) string { return strings.Join(strings.Fields(s), " ") }

// writePNG writes a small image for media tests.
func writePNG(t *testing.T) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for x := 0; x < 64; x++ {
		for y := 0; y < 48; y++ {
			img.Set(x, y, color.RGBA{B: 200, G: uint8(x * 3), A: 255})
		}
	}
	p := filepath.Join(t.TempDir(), "square.png")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	return p
}
