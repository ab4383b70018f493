package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
)

// CursorStore keeps the per-account cursors of incremental runs.
// *state.Store satisfies it. A Get error of any kind is treated as "no
// cursor" (a full, slower fetch), never as a failure.
type CursorStore interface {
	Get(ctx context.Context, key string) (string, error)
	Set(ctx context.Context, key, value string) error
}

// Options configure Run.
type Options struct {
	// Client is the archived account's API client (required unless API
	// is set).
	Client *fedi.Client
	// API, when not nil, is used instead of Client: another platform's
	// server in the Mastodon API's terms (see API).
	API API
	// Media downloads media files; nil means Client.HTTP(), which paces
	// requests within the server's limits.
	Media *http.Client
	// Cursors stores where the last run stopped (required).
	Cursors CursorStore
	// Account is the account's handle, part of the cursor's key.
	Account string
	// Refresh re-reads every post to find edits and deletions.
	Refresh bool
	// MediaWorkers bounds concurrent media downloads; 0 means 4.
	MediaWorkers int
	// MaxMediaBytes bounds one media file; 0 means 512 MiB.
	MaxMediaBytes int64
	// Logger receives progress; nil discards.
	Logger *slog.Logger
}

// pageLimit is the largest page the statuses endpoints return (Mastodon and
// GoToSocial: 40).
const pageLimit = 40

// Summary is what one Run did.
type Summary struct {
	Account         string         `json:"account"`
	Dir             string         `json:"dir"`
	NewPosts        int            `json:"new_posts"`
	UpdatedPosts    int            `json:"updated_posts"`
	DeletedPosts    int            `json:"newly_deleted_posts"`
	TotalPosts      int            `json:"total_posts"`
	MarkedDeleted   int            `json:"marked_deleted"`
	StatusPages     int            `json:"status_pages"`
	Likes           int            `json:"likes"`
	Bookmarks       int            `json:"bookmarks"`
	MediaDownloaded int            `json:"media_downloaded"`
	MediaFailed     []MediaFailure `json:"media_failed,omitempty"`
	// ServerPosts is the account's statuses_count as its server reports it.
	ServerPosts int `json:"server_posts"`
	// Warnings say what the archive may lack, in words for a person.
	Warnings []string `json:"warnings,omitempty"`

	tally visibilityTally
}

// MediaFailure is a media file that could not be downloaded; the next run
// tries again.
type MediaFailure struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// Run brings the archive in s up to date with the account behind
// o.Client: new posts (all posts on the first run; every post again with
// Refresh, marking those gone as deleted), the reply parents' URIs, the
// profile, favourites and bookmarks, and every media file not downloaded
// yet; then it regenerates the layout's JSON files (Write). The cursor is
// advanced only after the posts it covers are stored. Failed media
// downloads do not fail the run: they are listed in the Summary.
func Run(ctx context.Context, s *Store, o Options) (Summary, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sum := Summary{Account: o.Account, Dir: s.dir}
	api := apiOf(o)
	prof, err := api.OwnProfile(ctx)
	if err != nil {
		return sum, err
	}
	actor := prof.URI
	if actor == "" {
		actor = prof.URL
	}
	if prev, _ := s.Meta(ctx, "account_id"); prev != "" && prev != prof.ID+"@"+api.Host() {
		return sum, fmt.Errorf("archive %s belongs to another account; use a separate directory per account", s.dir)
	}
	if err := s.SetMeta(ctx, "account_id", prof.ID+"@"+api.Host()); err != nil {
		return sum, err
	}

	if err := fetchPosts(ctx, s, o, prof.ID, actor, &sum, log); err != nil {
		return sum, err
	}
	hidden := ""
	if !prof.CountsDeleted {
		hidden = sum.tally.hiddenPrivate(prof.StatusesCount)
	}
	if hidden != "" {
		log.Warn(hidden, "account", o.Account)
		sum.Warnings = append(sum.Warnings, hidden)
	}
	if err := resolveParents(ctx, s, api); err != nil {
		return sum, err
	}
	if err := archiveProfile(ctx, s, o, prof, actor); err != nil {
		return sum, err
	}
	for _, coll := range []struct{ name string }{{"likes"}, {"bookmarks"}} {
		n, err := archiveCollection(ctx, s, api, coll.name)
		if err != nil {
			return sum, err
		}
		if coll.name == "likes" {
			sum.Likes = n
		} else {
			sum.Bookmarks = n
		}
	}
	downloaded, failed, err := downloadMedia(ctx, s, o, log)
	sum.MediaDownloaded, sum.MediaFailed = downloaded, failed
	if err != nil {
		return sum, err
	}
	if err := Write(ctx, s); err != nil {
		return sum, err
	}
	sum.TotalPosts, sum.MarkedDeleted, err = s.Count(ctx)
	if err != nil {
		return sum, err
	}
	sum.ServerPosts = prof.StatusesCount
	// The count check says in general what hiddenPrivate said precisely:
	// one warning for one cause.
	// A count that includes deleted posts can only be compared one way.
	if live := sum.TotalPosts - sum.MarkedDeleted; (live > prof.StatusesCount || live != prof.StatusesCount && !prof.CountsDeleted) && hidden == "" {
		w := fmt.Sprintf("the server counts %d posts but listed %d: the archive may lack posts the server does not list "+
			"(some servers leave out followers-only and direct posts, or count differently)", prof.StatusesCount, live)
		sum.Warnings = append(sum.Warnings, w)
		log.Warn("post count disagrees with the server", "account", o.Account, "server", prof.StatusesCount, "archived", live)
	}
	return sum, nil
}

// cursorKey is the kv key of the account's cursor for this archive.
func cursorKey(account, dir string) string { return "archive/cursor/" + account + "|" + dir }

// idAfter reports whether status ID a sorts after b. Mastodon IDs are
// decimal numbers, GoToSocial's are fixed-length ULIDs: comparing length
// first, then bytes, orders both.
func idAfter(a, b string) bool {
	if len(a) != len(b) {
		return len(a) > len(b)
	}
	return a > b
}

// fetchPosts pages the account's posts newest first: down to the last
// run's cursor, or all of them on a first run and with Refresh. New and
// edited posts are stored; with Refresh, stored posts the listing left out
// are looked up one by one and marked deleted when gone. The cursor moves
// to the newest post once everything it covers is stored.
func fetchPosts(ctx context.Context, s *Store, o Options, accountID, actor string, sum *Summary, log *slog.Logger) error {
	key := cursorKey(o.Account, s.dir)
	cursor := ""
	if !o.Refresh {
		if c, err := o.Cursors.Get(ctx, key); err == nil && c != "" {
			if ok, err := s.Has(ctx, c); err != nil {
				return err
			} else if ok {
				cursor = c
			} else {
				log.Info("the archive does not hold the last run's newest post; fetching everything", "dir", s.dir)
			}
		}
	} else if err := s.StartRefresh(ctx); err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(pageLimit)}}
	// After a cursor, since_id asks for the newer posts only. A server
	// that keeps times to the second (snac2) may also sort IDs by a hash
	// within a second, so a post of the cursor's second can have a smaller
	// ID: there the walk reads newest first without since_id and stops at
	// the first post that is neither after the cursor by ID nor of its
	// second.
	var cursorAt time.Time
	if cursor != "" {
		at, ok, err := s.Published(ctx, cursor)
		if err != nil {
			return err
		}
		if ok && at.Equal(at.Truncate(time.Second)) {
			cursorAt = at
		} else {
			q.Set("since_id", cursor)
		}
	}
	newest := ""
	sum.tally.full = cursor == ""
	err := walkStatuses(ctx, apiOf(o), accountID, q, sum, func(st fedi.Status) (bool, error) {
		if cursor != "" && !idAfter(st.ID, cursor) && (cursorAt.IsZero() || st.CreatedAt.Before(cursorAt)) {
			return false, nil
		}
		sum.tally.see(st)
		if newest == "" || idAfter(st.ID, newest) {
			newest = st.ID
		}
		if o.Refresh {
			if err := s.Seen(ctx, st.ID); err != nil {
				return false, err
			}
		}
		// A server may change a post's ID on edit: the URI identifies it.
		if _, err := s.Adopt(ctx, st.URI, st.ID); err != nil {
			return false, err
		}
		edited, deleted, found, err := s.Stored(ctx, st.ID)
		if err != nil {
			return false, err
		}
		if found && edited == editedAt(st) && !deleted {
			if st.EditedAt != nil {
				return true, nil // unchanged
			}
			// Never edited, or a server that does not say (no edited_at):
			// compare what an edit changes.
			rec, _ := toRecord(st, actor)
			if same, err := s.SameContent(ctx, st.ID, rec); err != nil {
				return false, err
			} else if same {
				return true, nil
			}
		}
		if err := storeStatus(ctx, s, st, actor); err != nil {
			return false, err
		}
		if found {
			sum.UpdatedPosts++
		} else {
			sum.NewPosts++
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("archive the posts of %s: %w", o.Account, err)
	}
	log.Info("fetched posts", "account", o.Account, "new", sum.NewPosts, "updated", sum.UpdatedPosts, "pages", sum.StatusPages)
	if o.Refresh {
		if err := markDeleted(ctx, s, o, actor, sum, log); err != nil {
			return fmt.Errorf("refresh the posts of %s: %w", o.Account, err)
		}
	}
	if newest != "" {
		return o.Cursors.Set(ctx, key, newest)
	}
	return nil
}

// editedAt is a status's edit time as the store keeps it ("" if never
// edited).
func editedAt(st fedi.Status) string {
	if st.EditedAt == nil {
		return ""
	}
	return fmtTime(*st.EditedAt)
}

// walkStatuses pages an account's statuses (by Link header, else by
// max_id; see fedi.EachStatusPage); fn returns false to stop.
func walkStatuses(ctx context.Context, api API, accountID string, q url.Values, sum *Summary, fn func(fedi.Status) (bool, error)) error {
	return api.Statuses(ctx, accountID, q, func(sts []fedi.Status) (bool, error) {
		sum.StatusPages++
		for _, st := range sts {
			more, err := fn(st)
			if err != nil || !more {
				return false, err
			}
		}
		return true, nil
	})
}

// walkCollection pages a list of statuses whose cursors are not status
// IDs (favourites, bookmarks): by Link header only.
func walkCollection(ctx context.Context, c *fedi.Client, p string, q url.Values, fn func(fedi.Status)) error {
	for p != "" {
		sts, next, err := fedi.StatusPage(ctx, c, p, q)
		if err != nil {
			return err
		}
		for _, st := range sts {
			fn(st)
		}
		if len(sts) < pageLimit {
			return nil
		}
		p, q = linkPath(next), nil
	}
	return nil
}

// linkPath keeps the path and query of a Link target.
func linkPath(next string) string {
	if next == "" {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil {
		return ""
	}
	return u.RequestURI()
}

func storeStatus(ctx context.Context, s *Store, st fedi.Status, actor string) error {
	rec, jobs := toRecord(st, actor)
	if err := s.Put(ctx, rec); err != nil {
		return err
	}
	for _, j := range jobs {
		if err := s.QueueMedia(ctx, j.Path, j.URL, st.ID); err != nil {
			return err
		}
	}
	return nil
}

// markDeleted looks up every stored post the refresh's listing left out
// (lists leave some out, e.g. direct messages on some servers) and marks
// those gone from the server as deleted; the records are kept.
func markDeleted(ctx context.Context, s *Store, o Options, actor string, sum *Summary, log *slog.Logger) error {
	return s.EachUnseen(ctx, func(id string) error {
		st, err := apiOf(o).GetStatus(ctx, id)
		if fedi.IsNotFound(err) {
			sum.DeletedPosts++
			log.Info("post deleted on the server; kept in the archive and marked", "id", id)
			return s.MarkDeleted(ctx, id, time.Now())
		}
		if err != nil {
			return err
		}
		return storeStatus(ctx, s, st, actor)
	})
}

// resolveParents finds the URIs of the posts replied to: from the archive
// itself, else by asking the server once per parent.
func resolveParents(ctx context.Context, s *Store, api API) error {
	ids, err := s.ResolveParents(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		st, err := api.GetStatus(ctx, id)
		uri := st.URI
		if err != nil {
			if !fedi.IsNotFound(err) && !fedi.IsUnauthorized(err) {
				return err
			}
			uri = ""
		}
		if err := s.SetParentURI(ctx, id, uri); err != nil {
			return err
		}
	}
	return nil
}

// archiveProfile stores actor.json's content and downloads the avatar and
// header when they changed.
func archiveProfile(ctx context.Context, s *Store, o Options, p fedi.Profile, actor string) error {
	a := Actor{
		Context: []any{"https://www.w3.org/ns/activitystreams", map[string]string{
			"schema": "http://schema.org#", "PropertyValue": "schema:PropertyValue", "value": "schema:value",
			"manuallyApprovesFollowers": "as:manuallyApprovesFollowers"}},
		ID: actor, Type: "Person", Following: actor + "/following", Followers: actor + "/followers",
		Inbox: actor + "/inbox", Outbox: "outbox.json", Likes: "likes.json", Bookmarks: "bookmarks.json",
		PreferredUsername: p.Username, Name: p.DisplayName, Summary: p.Note, URL: p.URL,
		ManuallyApprovesFollowers: p.Locked, Attachment: []PropertyValue{},
	}
	if p.Bot {
		a.Type = "Service"
	}
	if !p.CreatedAt.IsZero() {
		t := p.CreatedAt.UTC()
		a.Published = &t
	}
	for _, f := range p.Fields {
		a.Attachment = append(a.Attachment, PropertyValue{Type: "PropertyValue", Name: f.Name, Value: f.Value})
	}
	for _, pic := range []struct {
		name, url string
		set       func(*Image)
	}{
		{"avatar", p.Avatar, func(i *Image) { a.Icon = i }},
		{"header", p.Header, func(i *Image) { a.Image = i }},
	} {
		if pic.url == "" || strings.Contains(pic.url, "missing.png") {
			continue
		}
		u, err := url.Parse(pic.url)
		if err != nil {
			continue
		}
		ext := strings.ToLower(path.Ext(u.Path))
		// An address without a usable extension (Misskey's default
		// avatar, /identicon/…, is a PNG): the file's content says.
		sniff := safeName(ext) != ext || len(ext) > 6 || ext == ""
		file := pic.name + ext
		if sniff {
			if file, err = s.Meta(ctx, pic.name+"_file"); err != nil {
				return err
			}
		}
		prev, err := s.Meta(ctx, pic.name+"_url")
		if err != nil {
			return err
		}
		if prev != pic.url || file == "" || !fileExists(s.dir, file) {
			if sniff {
				part := pic.name + ".part"
				if err := download(ctx, mediaClient(o), s.dir, part, pic.url, maxBytes(o)); err != nil {
					return fmt.Errorf("archive the %s: %w", pic.name, err)
				}
				file = pic.name + sniffExt(filepath.Join(s.dir, part))
				if err := os.Rename(filepath.Join(s.dir, part), filepath.Join(s.dir, file)); err != nil {
					return fmt.Errorf("archive the %s: %w", pic.name, err)
				}
				if err := s.SetMeta(ctx, pic.name+"_file", file); err != nil {
					return err
				}
			} else if err := download(ctx, mediaClient(o), s.dir, file, pic.url, maxBytes(o)); err != nil {
				return fmt.Errorf("archive the %s: %w", pic.name, err)
			}
			if err := s.SetMeta(ctx, pic.name+"_url", pic.url); err != nil {
				return err
			}
		}
		pic.set(&Image{Type: "Image", MediaType: mediaType(fedi.Attachment{Type: "image"}, file), URL: file})
	}
	data, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return fmt.Errorf("encode actor.json: %w", err)
	}
	return s.SetMeta(ctx, "actor", string(data))
}

// archiveCollection stores the URIs of the account's favourites or
// bookmarks.
func archiveCollection(ctx context.Context, s *Store, api API, name string) (int, error) {
	var uris []string
	err := api.Collection(ctx, name, func(st fedi.Status) {
		if st.URI != "" {
			uris = append(uris, st.URI)
		}
	})
	if err != nil {
		return 0, fmt.Errorf("archive %s: %w", name, err)
	}
	return len(uris), s.SetCollection(ctx, name, uris)
}

// sniffExt names the image file at p's type by its first bytes
// (http.DetectContentType): ".png", ".gif", ".webp", ".bmp", else ".jpg".
func sniffExt(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ".jpg"
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	switch http.DetectContentType(head[:n]) {
	case "image/png":
		return ".png"
	case "image/gif":
		return ".gif"
	case "image/webp":
		return ".webp"
	case "image/bmp":
		return ".bmp"
	}
	return ".jpg"
}
