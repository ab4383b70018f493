package pdsmove

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	comatproto "github.com/bluesky-social/indigo/api/atproto"

	"github.com/fedi-ferry/ferry/atproto"
)

// Verification is what Verify found.
type Verification struct {
	DID string `json:"did"`
	// DIDPDS is the PDS the DID document names; PointsAtNew says whether
	// it is the new one (compared by service DID).
	DIDPDS      string `json:"did_document_pds"`
	PointsAtNew bool   `json:"points_at_new"`
	// NewActive, NewValidDID and the counts are the new PDS's
	// com.atproto.server.checkAccountStatus.
	NewActive     bool  `json:"new_active"`
	NewValidDID   bool  `json:"new_valid_did"`
	NewRecords    int64 `json:"new_records"`
	ExpectedBlobs int64 `json:"new_expected_blobs"`
	ImportedBlobs int64 `json:"new_imported_blobs"`
	// OldRecords and OldBlobs are the old repository's counts when it was
	// exported (the journal); -1 when unknown.
	OldRecords int64 `json:"old_records"`
	OldBlobs   int64 `json:"old_blobs"`
	// OldActive is the old account's status; OldChecked false when the
	// old PDS did not answer.
	OldActive  bool `json:"old_active"`
	OldChecked bool `json:"old_checked"`
	// Problems lists what is not as it should be after a move.
	Problems []string `json:"problems,omitempty"`
}

// OK reports whether the move is complete.
func (v Verification) OK() bool { return len(v.Problems) == 0 }

// Summary is one line for people.
func (v Verification) Summary() string {
	if v.OK() {
		return fmt.Sprintf("%s lives on %s: DID document updated, active, %d records and %d/%d blobs there, old account deactivated",
			v.DID, hostOf(v.DIDPDS), v.NewRecords, v.ImportedBlobs, v.ExpectedBlobs)
	}
	return fmt.Sprintf("%s: the move is not complete: %s", v.DID, strings.Join(v.Problems, "; "))
}

// Verify checks a move: the DID document names the new PDS, the new
// account is active with every record and blob the old repository had,
// and the old account is deactivated. It changes nothing. o.Password is
// needed to ask the new PDS about the account.
func Verify(ctx context.Context, o Options) (Verification, error) {
	o.defaults()
	v := Verification{DID: o.Old.DID(), OldRecords: -1, OldBlobs: -1}
	t, err := describeNew(ctx, &o)
	if err != nil {
		return v, fmt.Errorf("the new PDS %s: %w", o.NewPDS, err)
	}
	v.PointsAtNew, v.DIDPDS = pointsAt(ctx, &o, v.DID, t.did)
	if !v.PointsAtNew {
		v.Problems = append(v.Problems, fmt.Sprintf("the DID document names %s, not %s", v.DIDPDS, t.base))
	}
	if job, err := o.Journal.Job(ctx, JobKind, jobKey(v.DID, t.did)); err == nil {
		if it, err := o.Journal.Item(ctx, job.ID, StepImportRepo, v.DID); err == nil && it.RemoteID != "" {
			var st repoStats
			if json.Unmarshal([]byte(it.RemoteID), &st) == nil {
				v.OldRecords, v.OldBlobs = st.Records, st.Blobs
			}
		}
	}
	r := &runner{o: o, t: t, did: v.DID}
	nc, err := r.newClient(ctx)
	if err != nil {
		return v, err
	}
	st, err := comatproto.ServerCheckAccountStatus(ctx, nc)
	if err != nil {
		return v, atproto.Wrap("com.atproto.server.checkAccountStatus", err)
	}
	v.NewActive, v.NewValidDID, v.NewRecords = st.Activated, st.ValidDid, st.IndexedRecords
	v.ExpectedBlobs, v.ImportedBlobs = st.ExpectedBlobs, st.ImportedBlobs
	if !v.NewActive {
		v.Problems = append(v.Problems, "the new account is not active")
	}
	if !v.NewValidDID {
		v.Problems = append(v.Problems, "the new PDS does not find its keys in the DID document")
	}
	if v.ImportedBlobs != v.ExpectedBlobs {
		v.Problems = append(v.Problems, fmt.Sprintf("%d of %d blobs are on the new PDS", v.ImportedBlobs, v.ExpectedBlobs))
	}
	if v.OldRecords >= 0 && v.NewRecords != v.OldRecords {
		v.Problems = append(v.Problems, fmt.Sprintf("the new repository has %d records, the old one had %d", v.NewRecords, v.OldRecords))
	}
	if v.OldBlobs >= 0 && v.ExpectedBlobs != v.OldBlobs {
		v.Problems = append(v.Problems, fmt.Sprintf("the new repository refers to %d blobs, the old one to %d", v.ExpectedBlobs, v.OldBlobs))
	}
	if ost, err := comatproto.ServerCheckAccountStatus(ctx, o.Old); err == nil {
		v.OldChecked, v.OldActive = true, ost.Activated
		if ost.Activated {
			v.Problems = append(v.Problems, "the old account is still active")
		}
	}
	return v, nil
}
