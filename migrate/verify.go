package migrate

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/fedi-ferry/ferry/fedi"
)

// ignoredPrefix starts the note of a follow the server made without some
// of the settings asked for.
const ignoredPrefix = "followed; the server ignored: "

// ignoredSettings compares the follow settings asked for in p with the
// relationship the server shows and names those it did not keep ("notify",
// "languages", "show boosts"). Some servers (snac2) accept the settings
// and drop them, and "applied" would be untrue.
func ignoredSettings(p payload, rel fedi.Relationship) []string {
	var out []string
	if p.Reblogs != nil && *p.Reblogs != rel.ShowingReblogs {
		out = append(out, "show boosts")
	}
	if p.Notify != nil && *p.Notify != rel.Notifying {
		out = append(out, "notify")
	}
	if len(p.Languages) > 0 {
		want, got := normLangs(p.Languages), normLangs(rel.Languages)
		if !slices.Equal(want, got) {
			out = append(out, "languages")
		}
	}
	return out
}

func normLangs(l []string) []string {
	out := make([]string, 0, len(l))
	for _, s := range l {
		out = append(out, strings.ToLower(strings.TrimSpace(s)))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// checkFollowSettings reads the relationship back after a follow whose
// answer did not show every setting asked for (the answer of some servers
// lags) and returns the note for what the server ignored, or "".
func checkFollowSettings(ctx context.Context, c API, p payload, answer fedi.Relationship) string {
	if !answer.Following || len(ignoredSettings(p, answer)) == 0 {
		return ""
	}
	rel, err := relationship(ctx, c, p.TargetID)
	if err != nil {
		rel = answer
	}
	if ign := ignoredSettings(p, rel); len(ign) > 0 {
		return ignoredPrefix + strings.Join(ign, ", ")
	}
	return ""
}

// checkNewList reads the account's lists back after creating list title
// and returns an error wrapping errRetryLater when the server gave it the
// ID of a list that existed before (before maps ID → title): a server whose
// list IDs are the second of creation (snac2) renames the earlier list
// instead of making a second one. The earlier list gets its title back, so
// the next run can create this one again.
func checkNewList(ctx context.Context, c API, title string, made fedi.List, before map[string]string) error {
	old, reused := before[made.ID]
	if !reused || old == title {
		return nil
	}
	restore := "it was renamed back"
	if err := c.RenameList(ctx, made.ID, old); err != nil {
		restore = "renaming it back failed: " + err.Error()
	}
	return fmt.Errorf("%w: the server gave list %q the ID %s of the existing list %q and renamed that one instead of creating a new list (lists made in the same second share an ID there); %s",
		errRetryLater, title, made.ID, old, restore)
}

// listTitles maps the IDs of the account's lists to their titles.
func listTitles(ctx context.Context, c API) (map[string]string, error) {
	ls, err := c.Lists(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(ls))
	for _, l := range ls {
		m[l.ID] = l.Title
	}
	return m, nil
}

// notePartial adds one note per kind of caveat in rep.Partial, naming a few
// of the rows, so a thousand follows make one line.
func notePartial(rep *Report) {
	byNote := map[string][]string{}
	var order []string
	for _, e := range rep.Partial {
		if _, ok := byNote[e.Note]; !ok {
			order = append(order, e.Note)
		}
		byNote[e.Note] = append(byNote[e.Note], e.Entry)
	}
	for _, note := range order {
		entries := byNote[note]
		shown := entries[:min(len(entries), 3)]
		more := ""
		if len(entries) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(entries)-len(shown))
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s%s: %s", strings.Join(shown, ", "), more, note))
	}
}
