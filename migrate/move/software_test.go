package move

import (
	"strings"
	"testing"
)

// migrate plan names, per software, how the alias and the Move are done —
// the API, the right page, the administrator's command line, or not at all —
// and that software's cooldown rule, not Mastodon's 30 days everywhere.
func TestPreflightGuidanceBySoftware(t *testing.T) {
	oldSrv, newSrv := newFakeMastodon(t, "old"), newFakeMastodon(t, "new")
	for _, tc := range []struct {
		old, new  string
		want      []string
		notWant   string
		blocked   bool
		moveCheck bool // the move-api check is OK
	}{
		{old: "mastodon", new: "mastodon", want: []string{"/settings/migration", "/settings/aliases", "30 days"}, moveCheck: true},
		{old: "hollo", new: "hollo", want: []string{"/accounts/" + "{old}" + "/migrate", "/accounts/" + "{new}" + "/migrate", "Hollo documents no limit"},
			notWant: "30 days", moveCheck: true},
		{old: "snac", new: "gotosocial", want: []string{"only snac's administrator", "snac migrate", "cannot see whether it was done", "snac2 documents no limit"},
			notWant: "30 days"},
		{old: "gotosocial", new: "snac", want: []string{"only snac's administrator", "snac alias", "7 days"}, notWant: "30 days", moveCheck: true},
		{old: "misskey", new: "misskey", want: []string{"through its API", `"login" notification`, "one-time code", "captcha", "5 Move calls a day"},
			notWant: "30 days", moveCheck: true},
		{old: "lemmy", new: "mastodon", want: []string{"cannot send a Move at all"}, notWant: "30 days", blocked: true},
	} {
		t.Run(tc.old+"→"+tc.new, func(t *testing.T) {
			o, n := side(t, oldSrv), side(t, newSrv)
			o.Software.Name, n.Software.Name = tc.old, tc.new
			plan, err := Preflight(t.Context(), o, n, publicClient())
			if err != nil {
				t.Fatal(err)
			}
			var all []string
			moveOK := false
			for _, c := range plan.Checks {
				all = append(all, c.Detail)
				if c.Name == "move-api" {
					moveOK = c.OK
				}
			}
			text := strings.Join(all, "\n") + "\n" + plan.Warning
			for _, w := range tc.want {
				w = strings.NewReplacer("{old}", o.Account.ID, "{new}", n.Account.ID).Replace(w)
				if !strings.Contains(text, w) {
					t.Errorf("plan does not say %q:\n%s", w, text)
				}
			}
			if tc.notWant != "" && strings.Contains(text, tc.notWant) {
				t.Errorf("plan says %q:\n%s", tc.notWant, text)
			}
			if plan.Blocked() != tc.blocked {
				t.Errorf("blocked = %v, want %v:\n%s", plan.Blocked(), tc.blocked, text)
			}
			if moveOK != tc.moveCheck {
				t.Errorf("move check OK = %v, want %v", moveOK, tc.moveCheck)
			}
		})
	}
}
