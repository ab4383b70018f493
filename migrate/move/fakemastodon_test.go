package move

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// fakeMastodon imitates what a Mastodon server shows of account migration,
// which no server runnable here reproduces (GoToSocial has API endpoints
// for both steps; Mastodon has none):
//
//   - aliases and the Move are web forms, not API calls: POST
//     /settings/aliases with account_alias[acct], and POST /settings/migration
//     with account_migration[acct] and account_migration[current_password]
//     (source: config/routes/settings.rb, app/controllers/settings/
//     aliases_controller.rb and migrations_controller.rb). The test plays the
//     person's signed-in browser, so sessions and CSRF tokens are left out;
//   - the Move is refused unless the target's actor lists the old actor in
//     alsoKnownAs (app/models/account_migration.rb), fetched from the target;
//   - afterwards the API shows the redirect in Account.moved
//     (docs: entities/Account.md#moved);
//   - the actor document is public and carries alsoKnownAs
//     (docs: spec/activitypub.md).
type fakeMastodon struct {
	t        *testing.T
	srv      *httptest.Server
	user     string
	mu       sync.Mutex
	aliases  []string // actor URIs
	movedTo  map[string]string
	follower []string // accts following this account
	moves    int      // Move forms accepted
}

func newFakeMastodon(t *testing.T, user string) *fakeMastodon {
	f := &fakeMastodon{t: t, user: user}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeMastodon) host() string  { return strings.TrimPrefix(f.srv.URL, "http://") }
func (f *fakeMastodon) actor() string { return f.srv.URL + "/users/" + f.user }
func (f *fakeMastodon) acct() string  { return f.user + "@" + f.host() }

func (f *fakeMastodon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	switch p := r.URL.Path; {
	case p == "/.well-known/nodeinfo":
		j(200, map[string]any{"links": []map[string]string{{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": "/nodeinfo/2.0"}}})
	case p == "/nodeinfo/2.0":
		j(200, map[string]any{"software": map[string]string{"name": "mastodon", "version": "4.3.2"}})
	case p == "/api/v1/accounts/verify_credentials":
		acc := map[string]any{"id": "1", "username": f.user, "acct": f.user, "uri": f.actor(), "url": f.srv.URL + "/@" + f.user}
		if f.movedTo != nil {
			acc["moved"] = f.movedTo
		}
		j(200, acc)
	case p == "/users/"+f.user:
		a := map[string]any{"id": f.actor(), "type": "Person", "alsoKnownAs": f.aliases}
		if f.movedTo != nil {
			a["movedTo"] = f.movedTo["uri"]
		}
		w.Header().Set("Content-Type", "application/activity+json")
		_ = json.NewEncoder(w).Encode(a)
	case p == "/api/v1/accounts/1/followers":
		var out []map[string]string
		for _, a := range f.follower {
			out = append(out, map[string]string{"id": a, "acct": a, "username": strings.Split(a, "@")[0]})
		}
		j(200, out)
	case p == "/api/v2/search":
		j(200, map[string]any{"accounts": []any{}})
	case p == "/settings/aliases" && r.Method == http.MethodPost:
		// The form takes a handle and stores the resolved actor URI.
		f.aliases = append(f.aliases, actorOf(r.FormValue("account_alias[acct]")))
		w.WriteHeader(http.StatusFound)
	case p == "/settings/migration" && r.Method == http.MethodPost:
		target := r.FormValue("account_migration[acct]")
		if r.FormValue("account_migration[current_password]") == "" {
			http.Error(w, "Current password is invalid", http.StatusUnprocessableEntity)
			return
		}
		// AccountMigration validates that the target lists us as an alias.
		resp, err := http.Get(actorOf(target))
		var a struct {
			AlsoKnownAs []string `json:"alsoKnownAs"`
		}
		if err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&a)
			resp.Body.Close()
		}
		if !contains(a.AlsoKnownAs, f.actor()) {
			http.Error(w, "Validation failed: Acct is not an alias of this account", http.StatusUnprocessableEntity)
			return
		}
		f.movedTo = map[string]string{"id": "2", "acct": target, "username": strings.Split(target, "@")[0], "uri": actorOf(target)}
		f.moves++
		w.WriteHeader(http.StatusFound)
	default:
		j(404, map[string]string{"error": "Record not found"})
	}
}

// actorOf is the fakes' WebFinger: user@host → http://host/users/user.
func actorOf(acct string) string {
	user, host, _ := strings.Cut(strings.TrimPrefix(acct, "@"), "@")
	return "http://" + host + "/users/" + user
}

// browserPost plays the person submitting a settings form; it returns the
// status code.
func browserPost(t *testing.T, target string, form url.Values) int {
	t.Helper()
	resp, err := http.PostForm(target, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
