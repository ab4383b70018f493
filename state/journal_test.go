package state

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

func TestJournalPlanApplyResume(t *testing.T) { forEachStore(t, testJournalPlanApplyResume) }

func testJournalPlanApplyResume(t *testing.T, s *Store) {
	ctx := t.Context()

	j, created, err := s.CreateJob(ctx, Job{Kind: "import", Key: "me@a.example:follows", Account: "me@a.example"})
	if err != nil || !created || j.Status != JobPlanning || j.Params != "{}" {
		t.Fatalf("CreateJob = %+v, %v, %v", j, created, err)
	}
	again, created, err := s.CreateJob(ctx, Job{Kind: "import", Key: "me@a.example:follows"})
	if err != nil || created || again.ID != j.ID {
		t.Fatalf("second CreateJob = %+v, %v, %v; want the same job", again, created, err)
	}

	plan := []Item{
		{Step: "follow", Key: "b@b.example", Payload: `{"reblogs":true}`},
		{Step: "follow", Key: "c@c.example"},
		{Step: "block", Key: "d@d.example", Status: ItemSkipped, Error: "already blocked"},
	}
	if err := s.FreezePlan(ctx, j.ID, plan); err != nil {
		t.Fatal(err)
	}
	// Freezing again (a rerun that planned the same items) changes nothing.
	if err := s.FreezePlan(ctx, j.ID, plan[:1]); err != nil {
		t.Fatal(err)
	}
	pending, err := s.Items(ctx, j.ID, ItemFilter{Status: ItemPending})
	if err != nil || len(pending) != 2 || pending[0].Key != "b@b.example" || pending[1].Seq <= pending[0].Seq {
		t.Fatalf("pending = %+v, %v", pending, err)
	}

	if prev, err := s.BeginItem(ctx, j.ID, "follow", "b@b.example"); err != nil || prev != 0 {
		t.Fatalf("BeginItem = %d, %v", prev, err)
	}
	// A crash here: the rerun sees one earlier attempt, after giving a
	// request the killed run may have sent time to land.
	start := time.Now()
	if prev, err := s.BeginItem(ctx, j.ID, "follow", "b@b.example"); err != nil || prev != 1 {
		t.Fatalf("BeginItem after crash = %d, %v", prev, err)
	}
	if waited := time.Since(start); waited < InFlightGrace-500*time.Millisecond {
		t.Fatalf("BeginItem after a recent attempt returned after %s; want it to wait about %s", waited, InFlightGrace)
	}

	// FinishItem writes the outcome and the caller's rows atomically; if
	// the caller's part fails, the item stays pending.
	boom := errors.New("boom")
	err = s.finishItem(ctx, Item{JobID: j.ID, Step: "follow", Key: "b@b.example", Status: ItemDone, RemoteID: "42"},
		func(tx *sql.Tx) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("FinishItem with failing also: %v", err)
	}
	if it, _ := s.Item(ctx, j.ID, "follow", "b@b.example"); it.Status != ItemPending {
		t.Fatalf("item after failed finish: %+v", it)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.FinishItem(cancelled, Item{JobID: j.ID, Step: "follow", Key: "b@b.example", Status: ItemDone, RemoteID: "42"}); err != nil {
		t.Fatalf("FinishItem with a cancelled context must still record: %v", err)
	}
	if err := s.FinishItem(ctx, Item{JobID: j.ID, Step: "follow", Key: "c@c.example", Status: ItemFailed, Error: "gone"}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishItem(ctx, Item{JobID: j.ID, Step: "follow", Key: "c@c.example", Status: ItemPending}); err == nil {
		t.Fatal("FinishItem accepted pending as an outcome")
	}

	counts, err := s.ItemCounts(ctx, j.ID)
	if err != nil || counts["follow"][ItemDone] != 1 || counts["follow"][ItemFailed] != 1 || counts["block"][ItemSkipped] != 1 {
		t.Fatalf("counts = %v, %v", counts, err)
	}
	it, err := s.Item(ctx, j.ID, "follow", "b@b.example")
	if err != nil || it.RemoteID != "42" || it.Attempts != 2 || it.Payload != `{"reblogs":true}` {
		t.Fatalf("item = %+v, %v", it, err)
	}
	if err := s.UpdateJob(ctx, j.ID, JobDone, `{"note":"ok"}`); err != nil {
		t.Fatal(err)
	}
	if j, _ := s.Job(ctx, "import", "me@a.example:follows"); j.Status != JobDone || j.Params != `{"note":"ok"}` {
		t.Fatalf("job after update: %+v", j)
	}
	if jobs, err := s.Jobs(ctx, "import"); err != nil || len(jobs) != 1 {
		t.Fatalf("Jobs = %v, %v", jobs, err)
	}
	if err := s.DeleteJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Item(ctx, j.ID, "follow", "b@b.example"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("items survive their job: %v", err)
	}
}
