package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/config"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/state"
)

// `ferry mirror` on PostgreSQL keeps its routes' leases for as long as the
// pass runs, however long that is, and stops the pass when a lease is lost
// rather than run a route another process may be running.
func TestMirrorLeasesRenewedAndLost(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dbURL, err := pg.NewDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	st, err := state.OpenDatabase(t.Context(), dbURL, state.Options{SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old := mirrorLease
	mirrorLease = 900 * time.Millisecond
	defer func() { mirrorLease = old }()

	cfg := &config.Config{}
	run, done, err := leaseMirrorRuns(t.Context(), st, cfg, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	holderOf := func(name string) string {
		ls, err := st.Leases(t.Context(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.Name == state.LeaseRun+name {
				return l.Holder
			}
		}
		return ""
	}
	// Three lease lengths later the pass still holds both routes.
	time.Sleep(3 * mirrorLease)
	if run.Err() != nil {
		t.Fatalf("the pass was stopped: %v", context.Cause(run))
	}
	h := holderOf("a")
	if !strings.HasPrefix(h, "mirror-") || holderOf("b") != h {
		t.Fatalf("after 3 lease lengths: holders %q and %q", h, holderOf("b"))
	}
	// Another process takes route b (its lease dropped and claimed): the
	// pass stops, saying why.
	if err := st.ReleaseLease(t.Context(), state.LeaseRun+"b", h); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.AcquireLease(t.Context(), state.LeaseRun+"b", "daemon-x", time.Now(), time.Minute); err != nil || !ok {
		t.Fatalf("take b: %v %v", ok, err)
	}
	select {
	case <-run.Done():
	case <-time.After(3 * mirrorLease):
		t.Fatal("the pass went on after losing a lease")
	}
	if cause := context.Cause(run); cause == nil || errors.Is(cause, context.Canceled) || !strings.Contains(cause.Error(), "lost the lease") {
		t.Fatalf("cause = %v", cause)
	}
	done()
	if holderOf("b") != "daemon-x" || holderOf("a") != "" {
		t.Errorf("after done: a held by %q, b by %q", holderOf("a"), holderOf("b"))
	}
}
