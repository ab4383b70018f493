package atproto

import (
	"context"
	"errors"
	"fmt"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"
)

// PostCollection is the collection of Bluesky posts.
const PostCollection = "app.bsky.feed.post"

// Record is a record of the account's repository.
type Record struct {
	// URI is "at://DID/COLLECTION/RKEY".
	URI string
	// CID is the content hash of this version of the record.
	CID string
	// RKey is the record key, the last part of URI.
	RKey string
	// Value is the decoded record, such as *bsky.FeedPost (nil for Create's answer).
	Value lexutil.CBOR
}

// CreateRecord writes record (a lexicon type such as *bsky.FeedPost) into collection
// under rkey, validated against its lexicon by the PDS when validate is true.
//
// It writes exactly once per key: a PDS refuses to create a record whose key exists, and
// when the create fails for any reason — that refusal, or an answer lost after the PDS
// stored the record — CreateRecord looks the key up, and if a record is there returns it
// with existed true and no error. So a retry of the same rkey after a crash or a lost
// answer never makes a second record (see RecordKey). Otherwise the error of the create is
// returned.
func (c *Client) CreateRecord(ctx context.Context, collection, rkey string, record lexutil.CBOR, validate bool) (rec Record, existed bool, err error) {
	const op = "com.atproto.repo.createRecord"
	if _, err := syntax.ParseNSID(collection); err != nil {
		return Record{}, false, fmt.Errorf("%s: collection %q: %w", op, collection, err)
	}
	if _, err := syntax.ParseRecordKey(rkey); err != nil {
		return Record{}, false, fmt.Errorf("%s: record key %q: %w", op, rkey, err)
	}
	out, err := comatproto.RepoCreateRecord(ctx, c, &comatproto.RepoCreateRecord_Input{
		Repo:       c.DID(),
		Collection: collection,
		Rkey:       &rkey,
		Record:     &lexutil.LexiconTypeDecoder{Val: record},
		Validate:   &validate,
	})
	if err == nil {
		return Record{URI: out.Uri, CID: out.Cid, RKey: rkey}, false, nil
	}
	err = wrap(op, err)
	if ctx.Err() != nil || errors.Is(err, ErrAuth) {
		return Record{}, false, err
	}
	got, gerr := c.GetRecord(ctx, collection, rkey)
	if gerr == nil {
		return got, true, nil
	}
	if errors.Is(gerr, ErrNotFound) {
		return Record{}, false, err
	}
	return Record{}, false, errors.Join(err, gerr)
}

// GetRecord reads one record of the account's repository. A missing record is an error
// matching ErrNotFound.
func (c *Client) GetRecord(ctx context.Context, collection, rkey string) (Record, error) {
	const op = "com.atproto.repo.getRecord"
	out, err := comatproto.RepoGetRecord(ctx, c, "", collection, c.DID(), rkey)
	if err != nil {
		return Record{}, wrap(op, err)
	}
	r := Record{URI: out.Uri, RKey: rkey}
	if out.Cid != nil {
		r.CID = *out.Cid
	}
	if out.Value != nil {
		r.Value, _ = out.Value.Val.(lexutil.CBOR)
	}
	return r, nil
}

// DeleteRecord removes a record of the account's repository. A record that is already
// gone is not an error, so a retried delete succeeds.
func (c *Client) DeleteRecord(ctx context.Context, collection, rkey string) error {
	const op = "com.atproto.repo.deleteRecord"
	_, err := comatproto.RepoDeleteRecord(ctx, c, &comatproto.RepoDeleteRecord_Input{
		Repo:       c.DID(),
		Collection: collection,
		Rkey:       rkey,
	})
	if err = wrap(op, err); errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// ListRecords returns one page of up to limit (1–100) records of collection in the
// account's repository, newest key first (oldest first when reverse), and the cursor of
// the next page ("" after the last page). Pass "" as cursor for the first page.
func (c *Client) ListRecords(ctx context.Context, collection, cursor string, limit int, reverse bool) ([]Record, string, error) {
	const op = "com.atproto.repo.listRecords"
	if limit < 1 || limit > 100 {
		return nil, "", fmt.Errorf("%s: limit %d is outside 1–100", op, limit)
	}
	out, err := comatproto.RepoListRecords(ctx, c, collection, cursor, int64(limit), c.DID(), reverse)
	if err != nil {
		return nil, "", wrap(op, err)
	}
	recs := make([]Record, 0, len(out.Records))
	for _, r := range out.Records {
		rec := Record{URI: r.Uri, CID: r.Cid}
		if u, err := syntax.ParseATURI(r.Uri); err == nil {
			rec.RKey = u.RecordKey().String()
		}
		if r.Value != nil {
			rec.Value, _ = r.Value.Val.(lexutil.CBOR)
		}
		recs = append(recs, rec)
	}
	next := ""
	if out.Cursor != nil && len(out.Records) > 0 {
		next = *out.Cursor
	}
	return recs, next, nil
}
