package migrate

import (
	"context"
	"fmt"
	"strings"

	"github.com/fedi-ferry/ferry/fedi"
)

// maxCrossCheck bounds how many accounts the export asks relationships
// for (40 per request): the check must stay cheap.
const maxCrossCheck = 400

// seenAccounts records the accounts an export wrote, per type, so that the
// block and mute lists can be checked against the relationships of accounts
// the export met anyway.
type seenAccounts struct {
	byType map[Type]map[string]string // type → id → acct
}

func newSeenAccounts() *seenAccounts {
	return &seenAccounts{byType: map[Type]map[string]string{}}
}

func (s *seenAccounts) add(t Type, a fedi.Account) {
	if s == nil || a.ID == "" {
		return
	}
	m := s.byType[t]
	if m == nil {
		m = map[string]string{}
		s.byType[t] = m
	}
	m[a.ID] = a.Acct
}

// crossCheck compares the exported block and mute lists with what the
// server's relationships say about the accounts the export met (follows,
// followers, list members, and the other of the two lists). A server whose
// /api/v1/blocks or /mutes is a stub (snac2 answers [] while relationships
// show blocking: true) would otherwise yield an empty file that reads as
// "nothing blocked". It sets Untrustworthy on the results it doubts.
func crossCheck(ctx context.Context, c API, seen *seenAccounts, out []ExportResult) error {
	idx := map[Type]int{}
	for i, r := range out {
		if (r.Type == Blocks || r.Type == Mutes) && r.File != "" {
			idx[r.Type] = i
		}
	}
	if len(idx) == 0 {
		return nil
	}
	known := map[string]string{}
	for _, m := range seen.byType {
		for id, a := range m {
			if len(known) < maxCrossCheck {
				known[id] = a
			}
		}
	}
	if len(known) == 0 {
		return nil
	}
	ids := make([]string, 0, len(known))
	for id := range known {
		ids = append(ids, id)
	}
	rels, err := c.Relationships(ctx, ids)
	if err != nil {
		return err
	}
	missing := map[Type][]string{}
	for _, r := range rels {
		if r.Blocking && seen.byType[Blocks][r.ID] == "" {
			missing[Blocks] = append(missing[Blocks], known[r.ID])
		}
		if r.Muting && seen.byType[Mutes][r.ID] == "" {
			missing[Mutes] = append(missing[Mutes], known[r.ID])
		}
	}
	for t, i := range idx {
		m := missing[t]
		if len(m) == 0 {
			continue
		}
		shown := m[:min(len(m), 3)]
		out[i].Untrustworthy = fmt.Sprintf("the server's %s list is not trustworthy: it listed %d accounts, but its relationships show %d more of the %d accounts checked as %s (%s); export them from another source or check by hand",
			featureName(t), out[i].Rows, len(m), len(known), map[Type]string{Blocks: "blocked", Mutes: "muted"}[t], strings.Join(shown, ", "))
	}
	return nil
}
