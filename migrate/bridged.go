package migrate

import (
	"fmt"
	"strings"

	"github.com/fedi-ferry/ferry/bridgy"
)

// bridgeRows maps the Bluesky rows of files (a handle or a DID, from a
// Bluesky export) to the fediverse addresses Bridgy Fed bridges those
// accounts under, and returns the new files and how many rows were mapped.
// A row Bridgy Fed has no name for (a handle that does not verify, a DID
// without a handle) becomes a row error with the reason. files is not
// changed.
func bridgeRows(files []Parsed) ([]Parsed, int) {
	n := 0
	out := make([]Parsed, len(files))
	for i, f := range files {
		out[i] = f
		mapped := false
		for _, r := range f.Rows {
			if isBluesky(r) {
				mapped = true
				break
			}
		}
		if !mapped {
			continue
		}
		out[i].Rows = make([]Row, 0, len(f.Rows))
		out[i].Errors = append([]*RowError(nil), f.Errors...)
		for _, r := range f.Rows {
			if !isBluesky(r) {
				out[i].Rows = append(out[i].Rows, r)
				continue
			}
			addr, err := bridgy.FediverseAddress(r.Account)
			if err != nil {
				out[i].Errors = append(out[i].Errors, &RowError{Pos: r.Pos, Raw: r.Account,
					Reason: fmt.Sprintf("the Bluesky account %s cannot be followed through Bridgy Fed: %v", r.Account, err)})
				continue
			}
			r.Account = addr
			out[i].Rows = append(out[i].Rows, r)
			n++
		}
	}
	return out, n
}

// isBluesky reports whether r names a Bluesky account (a row of a Bluesky
// export: a handle, or a DID) rather than a fediverse address.
func isBluesky(r Row) bool {
	switch r.Type {
	case Following, Followers, Blocks, Mutes, Lists:
		return !strings.Contains(r.Account, "@")
	}
	return false
}

// explainBridged says, in rep, which rows were Bluesky accounts followed
// through Bridgy Fed, and makes the failure of each one that did not
// resolve say that it is not bridged.
func explainBridged(rep *Report, n int) {
	rep.Notes = append(rep.Notes, fmt.Sprintf("%d Bluesky accounts were looked up under their Bridgy Fed addresses (@HANDLE@%s)", n, bridgy.BskyDomain))
	for i, f := range rep.Failures {
		addr := f.Entry
		if _, a, ok := cutListEntry(addr); ok {
			addr = a
		}
		if !bridgy.IsBridgedBluesky(addr) || strings.HasPrefix(f.Reason, "not bridged") {
			continue
		}
		handle := strings.TrimSuffix(addr, "@"+bridgy.BskyDomain)
		rep.Failures[i].Reason = bridgy.NotBridged("the Bluesky account "+handle, "@"+addr, f.Reason)
	}
}
