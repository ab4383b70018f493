package move

import (
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fedi-ferry/ferry/fedi"
)

// FollowersFile is where the lifeboat keeps the old account's followers,
// relative to the migration directory (the graph export's followers.csv).
const FollowersFile = "graph/followers.csv"

// NotMovedFile lists the followers who have not followed the new account.
const NotMovedFile = "not_moved.csv"

// VerifyResult compares the old account's followers with the new one's.
type VerifyResult struct {
	OldMoved  bool      `json:"old_moved"` // the old account points to the new one
	Followers int       `json:"followers"` // the old account's followers at export time
	Moved     int       `json:"moved"`     // of those, now following the new account
	NotMoved  []Missing `json:"not_moved"`
	File      string    `json:"file"` // the not_moved.csv written
}

// Missing is a follower who has not followed the new account yet.
type Missing struct {
	Account  string `json:"account"`
	Software string `json:"software,omitempty"` // of the follower's server, where nodeinfo tells
}

// Summary is a one-line account of the result.
func (v VerifyResult) Summary() string {
	s := fmt.Sprintf("%d of %d followers follow the new account; %d have not yet (%s)",
		v.Moved, v.Followers, len(v.NotMoved), v.File)
	if !v.OldMoved {
		s += "; the old account does not point to the new one"
	}
	return s
}

// Verify compares the lifeboat's follower list with the new account's
// followers, waiting up to VerifyWindow for stragglers (servers process a
// Move in the background), and writes not_moved.csv. It can run again at
// any time: followers keep arriving for days.
func (r *Runner) Verify(ctx context.Context) (VerifyResult, error) {
	r.defaults()
	want, err := readFollowers(filepath.Join(r.Dir, FollowersFile))
	if err != nil {
		return VerifyResult{}, err
	}
	res := VerifyResult{Followers: len(want), File: filepath.Join(r.Dir, NotMovedFile)}
	if r.Old != nil {
		if res.OldMoved, err = r.moved(ctx); err != nil {
			r.Log.Warn("could not check whether the old account moved", "account", r.Old.Handle, "err", err)
		}
	}
	var missing []string
	err = r.poll(ctx, r.VerifyWindow, "followers to arrive", func() (bool, error) {
		have, err := r.New.api().Followers(ctx, r.New.Account.ID)
		if err != nil {
			return false, err
		}
		missing = missing[:0]
		for _, f := range want {
			if !have[f] {
				missing = append(missing, f)
			}
		}
		return len(missing) == 0, nil
	})
	if err != nil && len(missing) == 0 {
		return res, err
	}
	// Running out of window is the normal case: report who is missing.
	res.Moved = len(want) - len(missing)
	res.NotMoved = softwareOf(ctx, r.Public, missing)
	if err := writeNotMoved(res.File, res.NotMoved); err != nil {
		return res, err
	}
	return res, nil
}

// Followers returns the handles (user@host, lower case) following the
// account id, paging through the API.
func Followers(ctx context.Context, c *fedi.Client, id string) (map[string]bool, error) {
	out := map[string]bool{}
	host := c.Base().Host
	path := "/api/v1/accounts/" + url.PathEscape(id) + "/followers"
	q := url.Values{"limit": {"80"}}
	for path != "" {
		var page []fedi.Account
		resp, err := c.Do(ctx, http.MethodGet, path, q, nil, &page)
		if err != nil {
			return nil, fmt.Errorf("list followers: %w", err)
		}
		for _, a := range page {
			acct := strings.ToLower(a.Acct)
			if !strings.Contains(acct, "@") {
				acct += "@" + host // local accounts have a bare acct
			}
			out[acct] = true
		}
		path, q = fedi.NextLink(resp.Header), nil
	}
	return out, nil
}

// readFollowers reads a one-column followers.csv (Mastodon's export
// format: one user@host per line, optionally with a header).
func readFollowers(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the exported followers: %w", err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var out []string
	seen := map[string]bool{}
	for _, rec := range recs {
		if len(rec) == 0 {
			continue
		}
		a := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(rec[0], "\ufeff")), "@"))
		if a == "" || a == "account address" || !strings.Contains(a, "@") || seen[a] {
			continue
		}
		seen[a] = true
		out = append(out, a)
	}
	return out, nil
}

// softwareOf looks up what each missing follower's server runs (nodeinfo),
// once per server, a few at a time, each bounded in time: a dead server
// must not hold up the report.
func softwareOf(ctx context.Context, hc *http.Client, accts []string) []Missing {
	var hosts []string
	seen := map[string]bool{}
	for _, a := range accts {
		_, h, _ := strings.Cut(a, "@")
		if !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	// Each lookup writes only its own slot, so the lookups share nothing.
	names := make([]string, len(hosts))
	var g errgroup.Group
	g.SetLimit(4)
	for i, h := range hosts {
		g.Go(func() error {
			names[i] = "unknown"
			if base, err := fedi.ParseServer(h); err == nil && hc != nil {
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				sw, err := fedi.NodeInfo(cctx, fedi.NewClient(base, "", hc))
				if err != nil && isLoopback(base.Hostname()) {
					// A handle names no scheme: a server on loopback (a
					// test or local instance, the old account's own) may
					// serve plain http, which https cannot reach.
					plain := *base
					plain.Scheme = "http"
					sw, err = fedi.NodeInfo(cctx, fedi.NewClient(&plain, "", hc))
				}
				if err == nil {
					names[i] = strings.TrimSpace(sw.Name + " " + sw.Version)
				}
			}
			return nil // a server that does not answer is "unknown", not an error
		})
	}
	_ = g.Wait() // the lookups return no error
	software := make(map[string]string, len(hosts))
	for i, h := range hosts {
		software[h] = names[i]
	}
	out := make([]Missing, len(accts))
	for i, a := range accts {
		_, h, _ := strings.Cut(a, "@")
		out[i] = Missing{Account: a, Software: software[h]}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Account < out[j].Account })
	return out
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func writeNotMoved(path string, rows []Missing) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"Account address", "Server software"})
	for _, m := range rows {
		_ = w.Write([]string{m.Account, m.Software})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
