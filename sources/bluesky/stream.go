package bluesky

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	firehose "github.com/bluesky-social/indigo/events"
	"github.com/bluesky-social/indigo/events/schedulers/sequential"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/gorilla/websocket"

	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sources"
)

// subscribeRepos is the PDS's repository event stream: every commit of
// every repository it hosts, live from the moment of the subscription.
const subscribeRepos = "/xrpc/com.atproto.sync.subscribeRepos"

// Stream pushes the account's new, changed and deleted posts from the PDS's
// repository event stream until ctx ends or the stream fails (then the
// caller falls back to Fetch, which also catches up on what happened while
// nothing streamed). Commits of other accounts on the same PDS are dropped.
// Bluesky apps never edit posts; a record rewritten in place (putRecord) is
// reported as Edited.
//
// The stream is read with indigo's event-stream reader, and the records of a
// commit from its CAR slice with indigo's repository reader; a record the
// commit does not carry is read from the PDS instead.
func (s *Source) Stream(ctx context.Context, out chan<- sources.Event) error {
	acct := s.account()
	wsURL, err := streamURL(acct.pds)
	if err != nil {
		return err
	}
	d := websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: 30 * time.Second}
	conn, resp, err := d.DialContext(ctx, wsURL, http.Header{"User-Agent": {"ferry"}})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("bluesky source: subscribe to %s: %w", acct.pds, err)
	}
	// indigo's reader extends the read deadline on every answer to its
	// pings (sent every 30 s); this first deadline covers a connection that
	// dies silently before the first answer.
	if err := conn.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		conn.Close()
		return fmt.Errorf("bluesky source: stream of %s: %w", acct.pds, err)
	}
	s.log.Debug("bluesky source: streaming", "pds", acct.pds, "did", acct.did)
	cb := &firehose.RepoStreamCallbacks{
		RepoCommit: func(evt *comatproto.SyncSubscribeRepos_Commit) error {
			return s.commit(ctx, acct, evt, out)
		},
		RepoAccount: func(evt *comatproto.SyncSubscribeRepos_Account) error {
			if evt.Did == acct.did && !evt.Active {
				status := "inactive"
				if evt.Status != nil {
					status = *evt.Status
				}
				return fmt.Errorf("account %s is %s", acct.did, status)
			}
			return nil
		},
		Error: func(evt *firehose.ErrorFrame) error {
			return fmt.Errorf("the PDS ended the stream: %s: %s", evt.Error, evt.Message)
		},
	}
	sched := sequential.NewScheduler("ferry-bluesky-source", cb.EventHandler)
	err = firehose.HandleRepoStream(ctx, conn, sched, s.log)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("bluesky source: stream of %s: %w", acct.pds, err)
}

// streamURL is the websocket address of the PDS's event stream; the PDS
// base URL has passed atproto.CheckPDS (https, or http on loopback).
func streamURL(pds string) (string, error) {
	switch {
	case strings.HasPrefix(pds, "https://"):
		return "wss://" + strings.TrimPrefix(pds, "https://") + subscribeRepos, nil
	case strings.HasPrefix(pds, "http://"):
		return "ws://" + strings.TrimPrefix(pds, "http://") + subscribeRepos, nil
	}
	return "", fmt.Errorf("bluesky source: PDS address %q is not http(s)", pds)
}

// commit turns the account's commit into events, in the commit's order.
func (s *Source) commit(ctx context.Context, acct account, evt *comatproto.SyncSubscribeRepos_Commit, out chan<- sources.Event) error {
	if evt.Repo != acct.did {
		return nil
	}
	var car *repo.Repo // loaded on first need
	for _, op := range evt.Ops {
		if op == nil {
			continue
		}
		col, rkey, err := syntax.ParseRepoPath(op.Path)
		if err != nil || !s.streams(col.String()) {
			continue
		}
		uri := "at://" + acct.did + "/" + op.Path
		var ev sources.Event
		switch op.Action {
		case "delete":
			ev = sources.Event{Kind: sources.Deleted, Post: post.Post{OriginID: uri, Deleted: true}}
		case "create", "update":
			val, err := s.opRecord(ctx, evt, &car, col, rkey)
			if err != nil {
				return fmt.Errorf("record %s: %w", uri, err)
			}
			p, ok := acct.convert(uri, rkey.String(), val, s.quotes)
			if !ok {
				continue
			}
			ev = sources.Event{Kind: sources.Created, Post: p}
			if op.Action == "update" {
				ev.Kind = sources.Edited
				ev.Post.EditedAt = time.Now().UTC()
				if d, err := syntax.ParseDatetimeLenient(evt.Time); err == nil {
					ev.Post.EditedAt = d.Time().UTC()
				}
			}
		default:
			continue
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *Source) streams(collection string) bool {
	return slices.Contains(s.collections(), collection)
}

// opRecord returns the record an operation wrote, from the commit's blocks
// when they carry it, else from the PDS.
func (s *Source) opRecord(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Commit, car **repo.Repo, col syntax.NSID, rkey syntax.RecordKey) (lexutil.CBOR, error) {
	if *car == nil && len(evt.Blocks) > 0 {
		if _, r, err := repo.LoadRepoFromCAR(ctx, bytes.NewReader(evt.Blocks)); err == nil {
			*car = r
		} else {
			s.log.Debug("bluesky source: commit blocks unreadable; reading records from the PDS", "rev", evt.Rev, "err", err)
		}
	}
	if *car != nil {
		raw, _, err := (*car).GetRecordBytes(ctx, col, rkey)
		if err == nil {
			v, err := lexutil.CborDecodeValue(raw)
			if err == nil {
				return v, nil
			}
			s.log.Debug("bluesky source: record in commit undecodable", "path", col.String()+"/"+rkey.String(), "err", err)
		}
	}
	rec, err := s.c.GetRecord(ctx, col.String(), rkey.String())
	if err != nil {
		return nil, err
	}
	if rec.Value == nil {
		return nil, errors.New("the PDS returned a record of an unknown type")
	}
	return rec.Value, nil
}
