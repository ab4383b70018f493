package misskey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	mk "github.com/fedi-ferry/ferry/misskey"
	"github.com/fedi-ferry/ferry/sources"
)

// Stream reports the account's new notes, edits (on forks that edit) and
// deletes as they happen, over Misskey's streaming WebSocket: the
// homeTimeline channel carries the account's own notes (and the main
// channel is connected, as Misskey's clients do); each note seen, and
// those of the newest page at the start, is subscribed to (subNote), so
// that its deletion and edit arrive as noteUpdated. It blocks until ctx
// ends or the connection fails; a server without the endpoint is
// sources.ErrNoStreaming, and the caller polls.
func (s *Source) Stream(ctx context.Context, events chan<- sources.Event) error {
	me, err := s.me(ctx)
	if err != nil {
		return err
	}
	st, err := s.c.Stream(ctx)
	if errors.Is(err, mk.ErrNoStreaming) {
		return fmt.Errorf("misskey source on %s: %w: %w", s.c.Base().Host, sources.ErrNoStreaming, err)
	}
	if err != nil {
		return fmt.Errorf("misskey source on %s: %w", s.c.Base().Host, err)
	}
	defer st.Close()
	const homeID, mainID = "ferry-home", "ferry-main"
	if err := st.Connect("homeTimeline", homeID); err != nil {
		return fmt.Errorf("misskey source: connect homeTimeline: %w", err)
	}
	if err := st.Connect("main", mainID); err != nil {
		return fmt.Errorf("misskey source: connect main: %w", err)
	}
	page, err := s.Fetch(ctx, "")
	if err != nil {
		return err
	}
	for _, p := range page.Posts {
		if err := st.SubNote(p.OriginID); err != nil {
			return fmt.Errorf("misskey source: subscribe to %s: %w", p.OriginID, err)
		}
	}
	s.log.Info("misskey source: streaming", "server", s.c.Base().Host)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		t := time.NewTicker(idle / 2)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
				_ = st.Ping()
			}
		}
	}()
	send := func(ev sources.Event) error {
		select {
		case events <- ev:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		m, err := st.Next(ctx)
		if err != nil {
			return err
		}
		switch m.Type {
		case "channel":
			var cm mk.ChannelMessage
			if json.Unmarshal(m.Body, &cm) != nil || cm.ID != homeID || cm.Type != "note" {
				continue
			}
			var n mk.Note
			if json.Unmarshal(cm.Body, &n) != nil || n.UserID != me.ID {
				continue
			}
			if err := st.SubNote(n.ID); err != nil {
				return fmt.Errorf("misskey source: subscribe to %s: %w", n.ID, err)
			}
			// Report the note once the server holds the subscription, so
			// that an edit or delete made right after is heard.
			if err := st.Sync(ctx); err != nil {
				return err
			}
			if p, ok := s.convert(n, me); ok {
				if err := send(sources.Event{Kind: sources.Created, Post: p}); err != nil {
					return err
				}
			}
		case "noteUpdated":
			var u mk.NoteUpdate
			if json.Unmarshal(m.Body, &u) != nil || u.ID == "" {
				continue
			}
			switch u.Type {
			case "deleted":
				ev := sources.Event{Kind: sources.Deleted}
				ev.Post.OriginID = u.ID
				if err := send(ev); err != nil {
					return err
				}
			case "updated":
				n, err := s.c.ShowNote(ctx, u.ID)
				if err != nil {
					s.log.Warn("misskey source: an edited note could not be read", "note", u.ID, "err", err)
					continue
				}
				if p, ok := s.convert(n, me); ok {
					if err := send(sources.Event{Kind: sources.Edited, Post: p}); err != nil {
						return err
					}
				}
			}
		}
	}
}

// idle is how often the stream is pinged (twice per) to keep proxies from
// closing it.
const idle = 2 * time.Minute

var _ sources.Streamer = (*Source)(nil)
