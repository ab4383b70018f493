package platform_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/config"
	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/platform"
	"github.com/fedi-ferry/ferry/state"
)

const routesConfig = `
[[route]]
name = "blog"
source = { type = "feed", url = "https://blog.example/feed.xml" }
[[route.sink]]
account = "main"

[[route]]
name = "copy"
source = { type = "account", account = "me@a.example", stream = false }
[[route.sink]]
account = "main"
`

// storeWith returns a real store holding the accounts me@a.example and
// me@b.example (named "main").
func storeWith(t *testing.T) *state.Store {
	t.Helper()
	st := state.TestStore(t)
	for _, a := range []state.Account{
		{Handle: "me@a.example", Server: "https://a.example", AccountID: "1", Token: "ta", Platform: "mastodon"},
		{Handle: "me@b.example", Name: "main", Server: "https://b.example", AccountID: "2", Token: "tb", Platform: "mastodon"},
	} {
		if err := st.PutAccount(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func TestConfigAccounts(t *testing.T) {
	ctx := context.Background()
	st := storeWith(t)
	cfg, err := config.Parse("ferry.toml", routesConfig)
	if err != nil {
		t.Fatal(err)
	}
	accts, err := platform.ConfigAccounts(ctx, st, cfg)
	if err != nil || accts["main"].Handle != "me@b.example" || accts["me@a.example"].AccountID != "1" {
		t.Fatalf("accounts %+v, %v", accts, err)
	}
	cfg, err = config.Parse("ferry.toml", strings.ReplaceAll(routesConfig, `account = "main"`, `account = "nobody"`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = platform.ConfigAccounts(ctx, st, cfg)
	if err == nil || strings.Count(err.Error(), `no account "nobody"`) != 2 {
		t.Fatalf("every place naming an unknown account is reported: %v", err)
	}
	if _, err := platform.LookupAccount(ctx, st, "nobody"); err == nil || !strings.Contains(err.Error(), "ferry login SERVER") {
		t.Fatalf("LookupAccount: %v", err)
	}
}

func TestRoutesFromConfig(t *testing.T) {
	ctx := context.Background()
	st := storeWith(t)
	cfg, err := config.Parse("ferry.toml", routesConfig)
	if err != nil {
		t.Fatal(err)
	}
	accts, err := platform.ConfigAccounts(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d := platform.DescribeSource(cfg.Routes[1]); d != "account me@a.example" {
		t.Fatalf("DescribeSource = %q", d)
	}
	routes := registry(t).Routes(accts, false)
	blog, stream, err := routes.Route(cfg.Routes[0])
	if err != nil {
		t.Fatal(err)
	}
	if blog.Kind != bridge.KindFeed || stream || len(blog.Sinks) != 1 || blog.Sinks[0].Account != "me@b.example" || blog.Sinks[0].Sink == nil {
		t.Fatalf("feed route: %+v", blog)
	}
	if cfg.Routes[0].Route.Sinks[0].Account != "main" || cfg.Routes[0].Route.Sinks[0].Sink != nil {
		t.Fatalf("the spec was changed: %+v", cfg.Routes[0].Route.Sinks[0])
	}
	cp, stream, err := routes.Route(cfg.Routes[1])
	if err != nil {
		t.Fatal(err)
	}
	if cp.Kind != bridge.KindAccount || cp.SourceAccount != "me@a.example" || stream || cp.Sinks[0].Sink != blog.Sinks[0].Sink {
		t.Fatalf("account route (stream = false; one sink per account): %+v", cp)
	}

	// Every account used has a budget; none was announced by a server.
	routes.RecordBudgets(ctx, st)
	all, err := st.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := platform.Budgets(ctx, st, all)
	if len(got) != 2 || got[0].Account != "me@a.example" || got[1].Account != "me@b.example" || got[0].Updated.IsZero() {
		t.Fatalf("budgets %+v", got)
	}
	if got := platform.Budgets(ctx, state.TestStore(t), all); got == nil || len(got) != 0 {
		t.Fatalf("an empty store has no budgets, as an empty list: %#v", got)
	}
}

func TestBudgetLeft(t *testing.T) {
	now := time.Now()
	b := platform.AccountBudget{Budgets: []fedi.Budget{
		{Key: "b.example/api", Limit: 300, Remaining: 12, Reset: now.Add(time.Minute)},
		{Key: "b.example/api#statuses", Limit: 30, Remaining: 0, Reset: now.Add(-time.Second)},
		{Key: "odd", Limit: 5, Remaining: 1},
	}}
	got := b.Left(now)
	want := []platform.BudgetLeft{{Name: "api", Remaining: 12, Limit: 300}, {Name: "api statuses", Remaining: 30, Limit: 30}, {Name: "odd", Remaining: 1, Limit: 5}}
	if len(got) != len(want) {
		t.Fatalf("Left = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Left[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}
