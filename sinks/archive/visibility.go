package archive

import (
	"fmt"

	"github.com/fedi-ferry/ferry/fedi"
)

// visibilityTally counts the posts a full walk of the account's statuses
// listed, by visibility, to notice a server that leaves posts out.
type visibilityTally struct {
	full   bool // the walk listed everything (first run or refresh)
	listed int
	byVis  map[string]int
}

func (v *visibilityTally) see(st fedi.Status) {
	if v.byVis == nil {
		v.byVis = map[string]int{}
	}
	v.listed++
	v.byVis[st.Visibility]++
}

// hiddenPrivate returns a warning when the walk listed fewer posts than
// the server counts (counted, the profile's statuses_count) and none of
// them followers-only or direct: a server that leaves those out of the
// account's statuses even for its owner (snac2) would otherwise give an
// archive, and a migration lifeboat, that silently lacks them. "" when
// nothing points that way; a mismatch with private posts present is left
// to the general count check.
func (v *visibilityTally) hiddenPrivate(counted int) string {
	if !v.full || v.listed >= counted || v.byVis["private"] > 0 || v.byVis["direct"] > 0 {
		return ""
	}
	return fmt.Sprintf("the server lists %d of the %d posts it counts and none of them is followers-only or direct: "+
		"it seems to leave followers-only and direct posts out of the account's list even for its owner, so the archive lacks them "+
		"(keep the server's own export of them)", v.listed, counted)
}
