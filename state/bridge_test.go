package state

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBridgeItemsAndCopies(t *testing.T) { forEachStore(t, testBridgeItemsAndCopies) }

func testBridgeItemsAndCopies(t *testing.T, s *Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	if _, _, found, err := s.BridgeFindItem(ctx, "r", "g1", "", ""); found || err != nil {
		t.Fatalf("empty store: %v %v", found, err)
	}
	if err := s.BridgeSaveItems(ctx, "r", []BridgeItem{
		{OriginID: "g1", Link: "https://x/1", ContentHash: "h1", Version: "v1", CreatedAt: t0},
		{OriginID: "g2", Link: "https://x/2", ContentHash: "h2", Version: "v1", CreatedAt: t0.Add(time.Minute)},
	}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct{ origin, link, hash, want string }{
		{"g1", "", "", "g1"},
		{"new-guid", "https://x/2", "", "g2"},
		{"new-guid", "https://other", "h1", "g1"},
	} {
		item, version, found, err := s.BridgeFindItem(ctx, "r", q.origin, q.link, q.hash)
		if err != nil || !found || item != q.want || version != "v1" {
			t.Errorf("find %+v: %s %s %v %v", q, item, version, found, err)
		}
	}
	if _, _, found, _ := s.BridgeFindItem(ctx, "other-route", "g1", "", ""); found {
		t.Error("items leak across routes")
	}
	// An alias row keeps pointing at the first item.
	if err := s.BridgeSaveItems(ctx, "r", []BridgeItem{{OriginID: "g1-renamed", Item: "g1", Version: "v2"}}); err != nil {
		t.Fatal(err)
	}
	known, err := s.BridgeItemsByOrigin(ctx, "r", []string{"g1", "g1-renamed", "nope"})
	if err != nil || len(known) != 2 || known["g1-renamed"] != [2]string{"g1", "v2"} {
		t.Errorf("by origin: %v %v", known, err)
	}

	// Copies are written with the journal step that made them.
	j, err := s.BridgeJob(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FreezePlan(ctx, j.ID, []Item{{Step: "publish", Key: "k1"}, {Step: "publish", Key: "k2"}}); err != nil {
		t.Fatal(err)
	}
	if prev, err := s.BeginItem(ctx, j.ID, "publish", "k1"); prev != 0 || err != nil {
		t.Fatalf("begin: %d %v", prev, err)
	}
	c := BridgeCopy{Route: "r", Item: "g1", Sink: "Me@Sink.example", Part: 0, State: CopyPosted, RemoteID: "R1",
		Version: "v1", OriginAt: t0}
	if err := s.BridgeFinish(ctx, Item{JobID: j.ID, Step: "publish", Key: "k1", Status: ItemDone, RemoteID: "R1"}, c); err != nil {
		t.Fatal(err)
	}
	pending, _ := s.Items(ctx, j.ID, ItemFilter{Status: ItemPending})
	if len(pending) != 1 || pending[0].Key != "k2" {
		t.Errorf("pending after finish: %+v", pending)
	}
	cs, err := s.BridgeCopies(ctx, "r", "g1")
	if err != nil || len(cs) != 1 || cs[0].RemoteID != "R1" || !cs[0].OriginAt.Equal(t0) {
		t.Fatalf("copies: %+v %v", cs, err)
	}
	if ok, _ := s.BridgeIsCopy(ctx, "me@sink.example", "R1"); !ok {
		t.Error("IsCopy is not case-insensitive on the account")
	}
	if ok, _ := s.BridgeIsCopy(ctx, "me@other.example", "R1"); ok {
		t.Error("IsCopy matched another account")
	}
	between, _ := s.BridgeCopiesBetween(ctx, "r", t0.Add(-time.Minute), t0.Add(time.Minute))
	if len(between) != 1 {
		t.Errorf("between: %+v", between)
	}
	if n, _ := s.BridgePostedSince(ctx, "r", time.Now().Add(-time.Hour)); n != 1 {
		t.Errorf("posted since: %d", n)
	}
	// A step not in the journal records no copy: the two go together.
	lost := BridgeCopy{Route: "r", Item: "g9", Sink: "me@sink.example", State: CopyPosted, RemoteID: "R9"}
	if err := s.BridgeFinish(ctx, Item{JobID: j.ID, Step: "publish", Key: "k9", Status: ItemDone}, lost); !errors.Is(err, ErrNotFound) {
		t.Errorf("finishing a step never planned: %v", err)
	}
	if cs, _ := s.BridgeCopies(ctx, "r", "g9"); len(cs) != 0 {
		t.Errorf("a copy recorded without its step: %+v", cs)
	}
	// An edit keeps the remote ID and creation time, updates the version.
	c.Version, c.RemoteID = "v2", ""
	if err := s.FreezePlan(ctx, j.ID, []Item{{Step: "edit", Key: "e1"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.BridgeFinish(ctx, Item{JobID: j.ID, Step: "edit", Key: "e1", Status: ItemDone}, c); err != nil {
		t.Fatal(err)
	}
	cs, _ = s.BridgeCopies(ctx, "r", "g1")
	if cs[0].RemoteID != "R1" || cs[0].Version != "v2" {
		t.Errorf("after edit: %+v", cs[0])
	}
	// Prune keeps copies and their items, drops finished steps.
	if err := s.BridgePrune(ctx, "r", -time.Hour); err != nil {
		t.Fatal(err)
	}
	if done, _ := s.Items(ctx, j.ID, ItemFilter{Status: ItemDone}); len(done) != 0 {
		t.Errorf("finished steps kept: %d", len(done))
	}
	if _, _, found, _ := s.BridgeFindItem(ctx, "r", "g1", "", ""); !found {
		t.Error("an item with a copy was pruned")
	}
	if _, _, found, _ := s.BridgeFindItem(ctx, "r", "g2", "", ""); found {
		t.Error("an item without copy, not seen for long, was kept")
	}
}

func TestBridgeSchedule(t *testing.T) { forEachStore(t, testBridgeSchedule) }

func testBridgeSchedule(t *testing.T, s *Store) {
	ctx := context.Background()
	if err := s.BridgeSchedule(ctx, map[string]string{"a": "5m", "b": "1h"}, false); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(time.Second)
	due, err := s.BridgeClaimDue(ctx, []string{"a", "b", "c"}, now, time.Minute)
	if err != nil || len(due) != 2 {
		t.Fatalf("due: %v %v", due, err)
	}
	if again, _ := s.BridgeClaimDue(ctx, []string{"a", "b"}, now, time.Minute); len(again) != 0 {
		t.Errorf("claimed twice: %v", again)
	}
	if err := s.BridgeRecordRun(ctx, "a", now, "boom", false, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.BridgeRecordRun(ctx, "a", now, "boom again", true, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	r, _ := s.BridgeRoute(ctx, "a")
	if n, _ := s.BridgeFailures(ctx, "a"); n != 2 {
		t.Errorf("BridgeFailures = %d", n)
	}
	if at, _ := s.BridgeRetryAt(ctx, "a"); !at.Equal(now.Add(time.Minute).Truncate(time.Millisecond)) && !at.Equal(now.Add(time.Minute)) {
		t.Errorf("BridgeRetryAt = %v, want %v", at, now.Add(time.Minute))
	}
	if r.FailCount != 2 || r.LastError != "boom again" || !r.Transient || !r.LastOKAt.IsZero() || r.Schedule != "5m" {
		t.Errorf("after failures: %+v", r)
	}
	if err := s.BridgeRecordRun(ctx, "a", now, "", true, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	r, _ = s.BridgeRoute(ctx, "a")
	if at, _ := s.BridgeRetryAt(ctx, "a"); !at.IsZero() {
		t.Errorf("BridgeRetryAt after a success = %v", at)
	}
	if r.FailCount != 0 || r.LastError != "" || r.Transient || r.LastOKAt.IsZero() {
		t.Errorf("after success: %+v", r)
	}
	// A restarted daemon makes everything due; a changed schedule too.
	if err := s.BridgeSchedule(ctx, map[string]string{"a": "5m", "b": "1h"}, true); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.BridgeClaimDue(ctx, []string{"a", "b"}, time.Now().Add(time.Second), time.Minute); len(due) != 2 {
		t.Errorf("after restart: %v", due)
	}
	if err := s.BridgeSaveCursor(ctx, "a", "c1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.BridgeSetPaused(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
	r, _ = s.BridgeRoute(ctx, "a")
	if !r.Started || !r.Paused || r.Cursor != "c1" || r.NewestAt.IsZero() {
		t.Errorf("route state: %+v", r)
	}
	if err := s.BridgeSaveCursor(ctx, "a", "c2", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if r, _ = s.BridgeRoute(ctx, "a"); r.Paused || r.Cursor != "c2" || r.NewestAt.IsZero() {
		t.Errorf("a saved cursor did not end the pause or lost NewestAt: %+v", r)
	}
	if all, _ := s.BridgeRoutes(ctx); len(all) != 2 {
		t.Errorf("routes: %d", len(all))
	}
}

// TestBridgeSaveItemsTwice: an origin ID listed twice in one save ends as
// saving them one after the other would leave it (on PostgreSQL the list
// is one statement, which may not change a row twice).
func TestBridgeSaveItemsTwice(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *Store) {
		ctx := t.Context()
		created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		err := s.BridgeSaveItems(ctx, "r", []BridgeItem{
			{OriginID: "o1", Link: "https://a/1", Version: "v1", CreatedAt: created},
			{OriginID: "o2", Item: "o1", Link: "https://a/1"},
			{OriginID: "o1", Item: "other", Link: "https://a/2", ContentHash: "h", Version: "v2"},
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.BridgeItemsByOrigin(ctx, "r", []string{"o1", "o2"})
		if err != nil || got["o1"] != [2]string{"o1", "v2"} || got["o2"] != [2]string{"o1", ""} {
			t.Fatalf("items = %v, %v", got, err)
		}
		if item, v, found, _ := s.BridgeFindItem(ctx, "r", "", "https://a/2", ""); !found || item != "o1" || v != "v2" {
			t.Errorf("by the last link: %q %q %v", item, v, found)
		}
		if item, _, found, _ := s.BridgeFindItem(ctx, "r", "", "", "h"); !found || item != "o1" {
			t.Errorf("by the last hash: %q %v", item, found)
		}
		// Origin ID before link before hash, whichever rows match.
		if err := s.BridgeSaveItems(ctx, "r", []BridgeItem{{OriginID: "o3", Link: "https://a/3", ContentHash: "h3", Version: "v3"}}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ origin, link, hash, want string }{
			{"o3", "https://a/2", "h", "o3"}, {"o9", "https://a/3", "h", "o3"}, {"o9", "https://a/2", "h3", "o1"},
			{"", "", "h3", "o3"}, {"o9", "https://a/9", "h", "o1"}, {"o9", "", "", ""},
		} {
			item, _, found, err := s.BridgeFindItem(ctx, "r", c.origin, c.link, c.hash)
			if err != nil || item != c.want || found != (c.want != "") {
				t.Errorf("find %+v = %q, %v, %v", c, item, found, err)
			}
		}
	})
}
