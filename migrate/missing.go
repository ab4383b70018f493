package migrate

import (
	"fmt"
	"strings"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/journal"
)

// noFeaturePrefix starts the reason of every row of a type the server has
// no API for, so the report can say it once per type.
const noFeaturePrefix = "the server has no such feature: "

// noFeature is the reason for rows of type t on a server without its API.
func noFeature(t Type) string {
	return noFeaturePrefix + "no " + featureName(t) + " API (it answers 404 with a web page)"
}

// featureName names a type's feature for people.
func featureName(t Type) string {
	switch t {
	case DomainBlocks:
		return "domain block"
	case Following, Followers:
		return "follow"
	case Blocks:
		return "block"
	case Mutes:
		return "mute"
	case Lists:
		return "list"
	case Bookmarks:
		return "bookmark"
	}
	return string(t)
}

// missingFeature records that the server lacks the API of type t when err
// says so (fedi.IsMissingEndpoint) and reports whether it did.
func (p *planner) missingFeature(t Type, err error) bool {
	if !fedi.IsMissingEndpoint(err) {
		return false
	}
	if p.missing == nil {
		p.missing = map[Type]bool{}
	}
	p.missing[t] = true
	p.o.Log.Info("the server has no API for this type", "type", t, "err", err)
	return true
}

// failMissing plans every row of t as failed when the server lacks its
// API, once, without resolving the rows' accounts, and returns the rows
// left to plan (none then).
func (p *planner) failMissing(t Type, step string, rows []Row) []Row {
	if !p.missing[t] {
		return rows
	}
	for _, r := range rows {
		e := rowEntry(r)
		pl := payload{Type: t, Source: r.Pos.String(), Entry: e, List: r.List, Domain: r.Domain, URI: r.URI}
		p.add(step, strings.ToLower(e), journal.ItemFailed, noFeature(t), pl)
	}
	return nil
}

// missingStep remembers, during one run, the steps whose API the server
// turned out not to have, so their other rows fail at once with the same
// reason instead of each asking the server again.
func (a *applier) missingStep(step string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	why, ok := a.missing[step]
	return why, ok
}

func (a *applier) markMissing(step string, t Type) string {
	why := noFeature(t)
	a.mu.Lock()
	if a.missing == nil {
		a.missing = map[string]string{}
	}
	a.missing[step] = why
	a.mu.Unlock()
	return why
}

// noteMissing adds one note per type whose rows failed because the server
// lacks the feature, in place of a row-by-row list.
func noteMissing(rep *Report) {
	n := map[Type]int{}
	for _, f := range rep.Failures {
		if strings.HasPrefix(f.Reason, noFeaturePrefix) {
			n[f.Type]++
		}
	}
	for _, t := range AllTypes() {
		if n[t] > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: the server has no %s feature; %d rows not applied",
				t, featureName(t), n[t]))
		}
	}
}
