// Package bskyarchive keeps a Bluesky account's archive: the repository
// as a CAR file (com.atproto.sync.getRepo), its blobs
// (com.atproto.sync.listBlobs, getBlob) and its posts in ferry's archive
// layout (package sinks/archive: outbox.json, likes.json, actor.json,
// media files), so
// that `ferry archive search` and `ferry archive publish` work on it as on
// a fediverse account's archive.
//
// A re-run is incremental: when the repository's revision changed
// (sync.getLatestCommit), only the blocks written since the last run's
// revision are fetched (getRepo with since) and merged into the CAR file
// (which then also keeps the blocks of records deleted since); a blob already on
// disk is not fetched again, and posts are read from the record key the
// last run stopped at. With Refresh, every post is read again and those
// gone from the repository are marked deleted in the archive (and kept).
package bskyarchive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/post"
	"github.com/fedi-ferry/ferry/sinks"
	sinkarchive "github.com/fedi-ferry/ferry/sinks/archive"
	srcbsky "github.com/fedi-ferry/ferry/sources/bluesky"
)

// Files of the archive directory besides sinks/archive's layout.
const (
	// CARFile is the repository as getRepo returns it.
	CARFile = "repo.car"
	// BlobDir holds one file per blob, named by its CID.
	BlobDir = "blobs"
)

// Meta keys in the archive's store.
const (
	metaRev    = "bluesky/rev"
	metaCursor = "bluesky/cursor"
	metaIDs    = "bluesky/id/"  // + at:// URI → the archive's post ID
	metaURIs   = "bluesky/uri/" // + the archive's post ID → at:// URI
)

// firstKey is below every TID: reading "after" it reads from the oldest
// record.
const firstKey = "2222222222222"

// Options describe one run.
type Options struct {
	sinkarchive.UpdateOptions
	// Client is the account's client.
	Client *atproto.Client
}

// Update brings the archive in o.Dir up to date with the account: the CAR
// file, the blobs, the posts (appended to outbox.json, each with its
// original date and its images from the blobs), then the search index
// (o.Index) and the zip file (o.Zip).
func Update(ctx context.Context, o Options) (sinkarchive.UpdateResult, error) {
	var res sinkarchive.UpdateResult
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return res, fmt.Errorf("archive directory %q: %w", o.Dir, err)
	}
	res.Dir, res.Account = dir, o.Account
	if err := os.MkdirAll(filepath.Join(dir, BlobDir), 0o700); err != nil {
		return res, fmt.Errorf("archive: %w", err)
	}
	store, err := sinkarchive.OpenStore(ctx, dir)
	if err != nil {
		return res, err
	}
	defer store.Close()
	c := o.Client
	did := c.DID()

	// The repository, when it changed.
	latest, err := comatproto.SyncGetLatestCommit(ctx, c, did)
	if err != nil {
		return res, atproto.Wrap("com.atproto.sync.getLatestCommit", err)
	}
	rev, err := store.Meta(ctx, metaRev)
	if err != nil {
		return res, err
	}
	carPath := filepath.Join(dir, CARFile)
	_, serr := os.Stat(carPath)
	switch {
	case serr == nil && rev == latest.Rev:
		// Unchanged since the last run.
	case serr == nil && rev != "":
		// Only what changed since the last run's revision, merged in.
		diff, err := comatproto.SyncGetRepo(ctx, c, did, rev)
		if err != nil {
			return res, atproto.Wrap("com.atproto.sync.getRepo", err)
		}
		if err := updateCAR(carPath, diff); err != nil {
			return res, fmt.Errorf("archive: update %s: %w", CARFile, err)
		}
		if err := store.SetMeta(ctx, metaRev, latest.Rev); err != nil {
			return res, err
		}
		logInfo(o, "merged the repository's changes", "since", rev, "rev", latest.Rev, "bytes", len(diff))
	default:
		car, err := comatproto.SyncGetRepo(ctx, c, did, "")
		if err != nil {
			return res, atproto.Wrap("com.atproto.sync.getRepo", err)
		}
		if err := writeAtomic(carPath, car); err != nil {
			return res, err
		}
		if err := store.SetMeta(ctx, metaRev, latest.Rev); err != nil {
			return res, err
		}
		logInfo(o, "saved the repository", "rev", latest.Rev, "file", carPath, "bytes", len(car))
	}

	// The blobs not on disk yet.
	cursor := ""
	for {
		out, err := comatproto.SyncListBlobs(ctx, c, cursor, did, 500, "")
		if err != nil {
			return res, atproto.Wrap("com.atproto.sync.listBlobs", err)
		}
		for _, cid := range out.Cids {
			if !cidName.MatchString(cid) {
				continue
			}
			p := filepath.Join(dir, BlobDir, cid)
			if _, err := os.Stat(p); err == nil {
				continue
			}
			data, err := comatproto.SyncGetBlob(ctx, c, cid, did)
			if err != nil {
				res.MediaFailed = append(res.MediaFailed, sinkarchive.MediaFailure{Path: filepath.Join(BlobDir, cid),
					Error: atproto.Wrap("com.atproto.sync.getBlob", err).Error()})
				continue
			}
			if err := writeAtomic(p, data); err != nil {
				return res, err
			}
			res.MediaDownloaded++
		}
		if out.Cursor == nil || *out.Cursor == "" || len(out.Cids) == 0 {
			break
		}
		cursor = *out.Cursor
	}

	// The posts after the last run's; with Refresh, every post, and those
	// gone from the repository are marked deleted (and kept).
	sink, err := sinkarchive.NewSink(store, sinkarchive.SinkOptions{Actor: "https://bsky.app/profile/" + did})
	if err != nil {
		return res, err
	}
	src := srcbsky.New(c, srcbsky.Options{Logger: o.Logger, PageSize: 100})
	pc, err := store.Meta(ctx, metaCursor)
	if err != nil {
		return res, err
	}
	stored := pc
	if pc == "" || o.Refresh {
		pc = firstKey
	}
	if o.Refresh {
		if err := store.StartRefresh(ctx); err != nil {
			return res, err
		}
	}
	for {
		page, err := src.Fetch(ctx, pc)
		if err != nil {
			return res, err
		}
		for _, p := range page.Posts {
			id, err := store.Meta(ctx, metaIDs+p.OriginID)
			if err != nil {
				return res, err
			}
			if id == "" {
				if id, err = archivePost(ctx, store, sink, dir, p); err != nil {
					return res, fmt.Errorf("archive %s: %w", p.OriginID, err)
				}
				res.NewPosts++
			}
			if o.Refresh {
				if err := store.Seen(ctx, id); err != nil {
					return res, err
				}
			}
		}
		if page.Next != "" && page.Next != pc {
			// The page's posts are stored: move the cursor past them (a
			// refresh, which starts from the oldest, never moves it back).
			if page.Next > stored {
				if err := store.SetMeta(ctx, metaCursor, page.Next); err != nil {
					return res, err
				}
				stored = page.Next
			}
			pc = page.Next
		}
		if !page.More {
			break
		}
	}
	if o.Refresh {
		err := store.EachUnseen(ctx, func(id string) error {
			uri, err := store.Meta(ctx, metaURIs+id)
			if err != nil || uri == "" {
				return err
			}
			exists, err := src.Exists(ctx, uri)
			if err != nil || exists {
				return err
			}
			res.DeletedPosts++
			return store.MarkDeleted(ctx, id, time.Now())
		})
		if err != nil {
			return res, err
		}
	}
	if err := archiveProfile(ctx, store, c, dir); err != nil {
		return res, err
	}

	// The likes, as links to the liked posts (likes.json).
	var likes []string
	lc := ""
	for {
		recs, next, err := c.ListRecords(ctx, "app.bsky.feed.like", lc, 100, true)
		if err != nil {
			return res, err
		}
		for _, r := range recs {
			if l, ok := r.Value.(*bsky.FeedLike); ok && l.Subject != nil {
				likes = append(likes, postLink(l.Subject.Uri))
			}
		}
		if next == "" || len(recs) == 0 {
			break
		}
		lc = next
	}
	if err := store.SetCollection(ctx, "likes", likes); err != nil {
		return res, err
	}
	res.Likes = len(likes)
	if err := sinkarchive.Write(ctx, store); err != nil {
		return res, err
	}
	total, deleted, err := store.Count(ctx)
	if err != nil {
		return res, err
	}
	res.TotalPosts, res.MarkedDeleted = total, deleted
	if o.Index != nil {
		if res.Indexed, err = o.Index(ctx, dir); err != nil {
			return res, err
		}
	}
	if o.Zip != "" {
		if err := sinkarchive.Zip(ctx, dir, o.Zip); err != nil {
			return res, err
		}
		res.Zip = o.Zip
	}
	return res, nil
}

// archiveProfile writes actor.json from the account's profile record
// (app.bsky.actor.profile/self): handle, display name, description, and
// the avatar and banner copied from the blob files (avatar.<ext>,
// header.<ext>). An account without a profile record gets its handle.
func archiveProfile(ctx context.Context, store *sinkarchive.Store, c *atproto.Client, dir string) error {
	sess := c.Session()
	actor := "https://bsky.app/profile/" + sess.DID
	a := sinkarchive.Actor{
		Context: "https://www.w3.org/ns/activitystreams", ID: actor, Type: "Person",
		Outbox: "outbox.json", Likes: "likes.json", Bookmarks: "bookmarks.json",
		PreferredUsername: sess.Handle, Name: sess.Handle, URL: "https://bsky.app/profile/" + sess.Handle,
		Attachment: []sinkarchive.PropertyValue{},
	}
	rec, err := c.GetRecord(ctx, "app.bsky.actor.profile", "self")
	switch {
	case errors.Is(err, atproto.ErrNotFound):
	case err != nil:
		return err
	default:
		if p, ok := rec.Value.(*bsky.ActorProfile); ok {
			if p.DisplayName != nil && *p.DisplayName != "" {
				a.Name = *p.DisplayName
			}
			if p.Description != nil {
				a.Summary = "<p>" + strings.ReplaceAll(html.EscapeString(*p.Description), "\n", "<br>") + "</p>"
			}
			for _, pic := range []struct {
				name string
				blob *lexutil.LexBlob
				set  func(*sinkarchive.Image)
			}{
				{"avatar", p.Avatar, func(i *sinkarchive.Image) { a.Icon = i }},
				{"header", p.Banner, func(i *sinkarchive.Image) { a.Image = i }},
			} {
				if pic.blob == nil {
					continue
				}
				src := filepath.Join(dir, BlobDir, pic.blob.Ref.String())
				data, err := os.ReadFile(src)
				if err != nil {
					continue // not fetched (yet): the next run tries again
				}
				ext := ".jpg"
				if pic.blob.MimeType == "image/png" {
					ext = ".png"
				} else if pic.blob.MimeType == "image/webp" {
					ext = ".webp"
				}
				if err := writeAtomic(filepath.Join(dir, pic.name+ext), data); err != nil {
					return err
				}
				pic.set(&sinkarchive.Image{Type: "Image", MediaType: pic.blob.MimeType, URL: pic.name + ext})
			}
		}
	}
	data, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return fmt.Errorf("encode actor.json: %w", err)
	}
	return store.SetMeta(ctx, "actor", string(data))
}

func logInfo(o Options, msg string, args ...any) {
	if o.Logger != nil {
		o.Logger.Info(msg, args...)
	}
}

// postLink is the bsky.app address of the post at:// URI u, or u itself
// when it is not a post's.
func postLink(u string) string {
	at, err := syntax.ParseATURI(u)
	if err != nil || at.Collection().String() != "app.bsky.feed.post" {
		return u
	}
	return "https://bsky.app/profile/" + at.Authority().String() + "/post/" + at.RecordKey().String()
}

// cidName is what a blob's CID looks like (base32 CIDv1): it names a file.
var cidName = regexp.MustCompile(`^[a-z2-7]{20,120}$`)

// archivePost writes one post with its original date, its images taken
// from the blob files, and its place in a thread of the account's own.
func archivePost(ctx context.Context, store *sinkarchive.Store, sink *sinkarchive.Sink, dir string, p post.Post) (string, error) {
	for i, m := range p.Media {
		if u, err := url.Parse(m.URL); err == nil {
			if cid := u.Query().Get("cid"); cidName.MatchString(cid) {
				if _, err := os.Stat(filepath.Join(dir, BlobDir, cid)); err == nil {
					p.Media[i].Path = filepath.Join(dir, BlobDir, cid)
				}
			}
		}
	}
	d := sinks.Draft{Post: p, Key: p.OriginID, PublishedAt: p.CreatedAt}
	if p.InReplyTo != "" {
		if id, err := store.Meta(ctx, metaIDs+p.InReplyTo); err == nil && id != "" {
			d.ReplyTo = id
		}
	}
	ref, err := sink.Publish(ctx, d)
	if err != nil {
		return "", err
	}
	if err := store.SetMeta(ctx, metaURIs+ref.ID, p.OriginID); err != nil {
		return "", err
	}
	return ref.ID, store.SetMeta(ctx, metaIDs+p.OriginID, ref.ID)
}

// writeAtomic writes data to path through a temporary file (0600) renamed
// into place.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}
