package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/journal"
)

// Server-side bulk import (GoToSocial's POST /api/v1/import): one upload
// instead of two requests per row, then verification through the API,
// because the server works in the background and reports nothing per row.

// verifyPoll is how often the account's list is read while the server
// imports; verifyStall is how long no progress ends the wait early.
const (
	verifyPoll  = 2 * time.Second
	verifyStall = 30 * time.Second
)

// serverImport uploads the rows the account does not have yet, waits until
// they show up through the API, and turns the outcome into one journal item
// per row: done when the server applied it; otherwise pending for the API
// path (MethodAuto) or failed (MethodServer).
func (a *applier) serverImport(ctx context.Context, it journal.Item, p payload, prev int) (journal.Item, error) {
	c := a.o.API
	parsed, err := ParseFile(strings.NewReader(p.CSV), "bulk import", p.Type)
	if err != nil {
		return it, err
	}
	rows := parsed.Rows
	for i := range rows {
		if i < len(p.Sources) {
			rows[i].Pos = Pos{File: p.Sources[i]}
		}
	}
	host := c.Host()
	have, err := a.current(ctx, p.Type)
	if err != nil {
		return it, err
	}
	missing := func(have map[string]fedi.Account) []Row {
		var out []Row
		for _, r := range rows {
			if _, ok := have[accountKey(r.Account, host)]; !ok {
				out = append(out, r)
			}
		}
		return out
	}
	if m := missing(have); len(m) > 0 {
		// After an interruption only what is still missing is sent again.
		var sb strings.Builder
		w := NewWriter(&sb, p.Type)
		for _, r := range m {
			w.Write(r)
		}
		_ = w.Flush()
		if err := c.ServerImport(ctx, string(p.Type), string(Merge), p.Type.FileName(), []byte(sb.String())); err != nil {
			return it, err
		}
		a.o.Log.Debug("applied", "step", it.Step, "key", it.Key, "rows", len(m), "resumed", prev > 0)
		if have, err = a.awaitServerImport(ctx, p.Type, have, missing); err != nil {
			return it, err
		}
	}

	step := stepForType(p.Type)
	var items []journal.Item
	for _, r := range rows {
		pl := payload{Type: p.Type, Source: r.Pos.String(), Entry: r.Account, Reblogs: r.ShowBoosts, Notify: r.Notify,
			Languages: r.Languages, HideNotif: r.HideNotifications}
		item := journal.Item{Step: step, Key: strings.ToLower(r.Account)}
		acc, ok := have[accountKey(r.Account, host)]
		switch {
		case ok && p.Type == Following && acc.Moved != nil && acc.Moved.ID != "" && a.o.Method == MethodAuto:
			// The importer followed the old address; follow the new one.
			pl.TargetID, pl.MovedTo = acc.Moved.ID, strings.ToLower(acc.Moved.Acct)
			item.Status = journal.ItemPending
		case ok:
			pl.TargetID, pl.Note = acc.ID, "applied by the server's importer"
			item.Status, item.RemoteID = journal.ItemDone, acc.ID
		case a.o.Method == MethodAuto:
			pl.Note = "the server's importer left it out; applying through the API"
			item.Status = journal.ItemPending
		default:
			// Not in the list: a follow may still await the account's
			// Accept (the lists show accepted follows only), or the
			// importer skipped the row. Ask the server which.
			if err := a.checkLeftOut(ctx, p.Type, &pl, &item); err != nil {
				return it, err
			}
		}
		b, _ := json.Marshal(pl)
		item.Payload = string(b)
		items = append(items, item)
	}
	if err := a.o.Journal.FreezePlan(ctx, a.job.ID, items); err != nil {
		return it, err
	}
	a.m.grow(len(items), notPending(items))
	out := it
	out.Status, out.Error = journal.ItemDone, ""
	return out, nil
}

// awaitServerImport polls what the account has of type t until no row is
// missing, until no progress for verifyStall, or until VerifyTimeout.
func (a *applier) awaitServerImport(ctx context.Context, t Type, have map[string]fedi.Account,
	missing func(map[string]fedi.Account) []Row) (map[string]fedi.Account, error) {
	deadline := time.Now().Add(a.o.VerifyTimeout)
	lastProgress, lastMissing := time.Now(), len(missing(have))
	for lastMissing > 0 && time.Now().Before(deadline) {
		a.m.report(fmt.Sprintf("waiting for the server to import %d %s rows", lastMissing, t), 0)
		timer := time.NewTimer(verifyPoll)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
		var err error
		if have, err = a.current(ctx, t); err != nil {
			return nil, err
		}
		if n := len(missing(have)); n < lastMissing {
			lastProgress, lastMissing = time.Now(), n
		} else if time.Since(lastProgress) > verifyStall {
			break
		}
	}
	return have, nil
}

// checkLeftOut settles a row the server's importer did not visibly apply
// (MethodServer): resolved and related as wanted (a follow requested, a
// block, a mute) it is done; otherwise it failed, with the reason. Only
// errors that stop the import are returned.
func (a *applier) checkLeftOut(ctx context.Context, t Type, pl *payload, item *journal.Item) error {
	item.Status = journal.ItemFailed
	acc, err := a.o.API.ResolveAccount(ctx, pl.Entry)
	if err != nil {
		if fedi.IsUnauthorized(err) || ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		}
		item.Error = "the server's importer did not apply it: " + reason(err)
		return nil
	}
	rel, err := relationship(ctx, a.o.API, acc.ID)
	if err != nil {
		if fedi.IsUnauthorized(err) || ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		}
		item.Error = "the server's importer did not apply it; its relationship could not be read: " + err.Error()
		return nil
	}
	pl.TargetID = acc.ID
	switch {
	case t == Following && rel.Requested && !rel.Following:
		item.Status, item.RemoteID, item.Error = journal.ItemDone, acc.ID, "follow requested; the account has not accepted it yet"
	case t == Following && rel.Following, t == Blocks && rel.Blocking, t == Mutes && rel.Muting:
		item.Status, item.RemoteID = journal.ItemDone, acc.ID
		pl.Note = "applied by the server's importer"
	default:
		item.Error = "the server's importer did not apply it (it skips rows it fails on; try --method api)"
	}
	return nil
}

// current reads what the account has of type t, keyed by address.
func (a *applier) current(ctx context.Context, t Type) (map[string]fedi.Account, error) {
	c := a.o.API
	host := c.Host()
	m := map[string]fedi.Account{}
	collect := func(page []fedi.Account) error {
		for _, acc := range page {
			m[accountKey(acc.Acct, host)] = acc
		}
		return nil
	}
	var err error
	switch t {
	case Following:
		var me fedi.Account
		if me, err = c.VerifyCredentials(ctx); err == nil {
			err = c.Following(ctx, me.ID, collect)
		}
	case Blocks:
		err = c.Blocks(ctx, collect)
	case Mutes:
		err = c.Mutes(ctx, collect)
	default:
		err = fmt.Errorf("no bulk import for %s", t)
	}
	return m, err
}
