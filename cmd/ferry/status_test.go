package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/state"
)

// After a transient failure, `ferry status` says so and when the route
// tries again; after a permanent one, it shows the error as before.
func TestStatusShowsTransientErrors(t *testing.T) {
	c := newCLI(t, "")
	ctx := context.Background()
	st, err := state.Open(ctx, filepath.Join(c.dataDir, "ferry.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.BridgeSchedule(ctx, map[string]string{"flaky": "15m", "broken": "15m"}, false); err != nil {
		t.Fatal(err)
	}
	if err := st.BridgeRecordRun(ctx, "flaky", now, "POST https://sink.example/api/v1/statuses: 502 Bad Gateway", true, now.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := st.BridgeRecordRun(ctx, "broken", now, "GET https://src.example/api/v1/accounts/1/statuses: 401 token revoked", false, now.Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	out := c.run("--config", filepath.Join(c.dataDir, "none.toml"), "status").mustSucceed(t).stdout
	var flaky, broken string
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, "flaky"):
			flaky = l
		case strings.HasPrefix(l, "broken"):
			broken = l
		}
	}
	if !strings.Contains(flaky, "transient, tries again in ") || !strings.Contains(flaky, "502 Bad Gateway") {
		t.Errorf("the transient failure: %q", flaky)
	}
	if strings.Contains(broken, "transient") || !strings.Contains(broken, "401 token revoked") {
		t.Errorf("the permanent failure: %q", broken)
	}

	var rep statusReport
	if err := json.Unmarshal([]byte(c.run("--config", filepath.Join(c.dataDir, "none.toml"), "--json", "status").mustSucceed(t).stdout), &rep); err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Routes {
		if want := r.Route == "flaky"; r.Transient != want || r.NextRun == nil {
			t.Errorf("%s: transient %v, next run %v", r.Route, r.Transient, r.NextRun)
		}
	}
}
