package atproto

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// RecordKey returns the record key under which the copy of one origin post is written by
// one route: a TID (the key type app.bsky.feed.post requires) that depends only on its
// arguments, so a retry after a crash or a lost answer writes to the same key and the
// PDS refuses a second record (see Client.CreateRecord).
//
// published is the origin post's own publication time, which does not change between
// retries. A TID is a timestamp, and a repository lists its records in key order, so the
// key's time is published to the second; the microseconds and the clock identifier come
// from a SHA-256 of route and originID, which keeps two posts of one route published in the
// same second apart (they collide with a probability of 2⁻³⁰). A zero published (an origin
// without a date) places the key in 1970. Times before 1970 are treated as zero.
func RecordKey(route, originID string, published time.Time) string {
	h := sha256.New()
	// Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(route)))
	h.Write(n[:])
	h.Write([]byte(route))
	h.Write([]byte(originID))
	sum := h.Sum(nil)
	bits := binary.BigEndian.Uint64(sum[:8])

	secs := published.Unix()
	if published.IsZero() || secs < 0 {
		secs = 0
	}
	micros := secs*1_000_000 + int64(bits%1_000_000)
	clock := uint((bits >> 20) & 0x3ff)
	return syntax.NewTID(micros, clock).String()
}
