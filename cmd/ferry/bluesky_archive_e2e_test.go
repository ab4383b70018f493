package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	pngenc "image/png"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/api/bsky"
	atrepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/internal/testenv"
)

// `ferry archive` of a Bluesky account on a real PDS: the repository as a
// CAR file, the image's blob, the posts in outbox.json with their image,
// searchable; a re-run fetches nothing it has, a new post comes in on the
// next; then `archive publish` both ways: the Bluesky archive onto a
// GoToSocial account (backdated), and a GoToSocial account's archive onto
// a Bluesky account, each record keeping the original date as createdAt.
func TestE2EBlueskyArchive(t *testing.T) {
	penv := testenv.SharedPDS(t, 1)
	t.Setenv("FERRY_PLC_URL", penv.PLCURL)
	env := testenv.Shared(t, 1)
	in := env.Instances[0]
	ctx := t.Context()
	c := newCLI(t, env.CAFile)
	u, pw := bskyAccount(t, "arch")
	other, _ := bskyAccount(t, "peer")
	records := seedBsky(t, u, other.DID)
	c.run("login", u.PDS.URL, "--handle", u.Handle, "--password-file", pw, "--name", "sky").mustSucceed(t)
	bc, err := atproto.Login(ctx, u.PDS.URL, u.Handle, u.Password, atproto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A post from 2021, as an import of an older archive would have made.
	old := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	if _, _, err := bc.CreateRecord(ctx, "app.bsky.feed.post", atproto.RecordKey("seed", u.DID, old),
		&bsky.FeedPost{LexiconTypeID: "app.bsky.feed.post", Text: "an old thought from 2021", CreatedAt: old.Format(time.RFC3339)}, true); err != nil {
		t.Fatal(err)
	}

	// A thread of the account's own: a post and its answer.
	now := time.Now()
	parent, _, err := bc.CreateRecord(ctx, "app.bsky.feed.post", atproto.RecordKey("seed", u.DID, now.Add(-time.Hour)),
		&bsky.FeedPost{LexiconTypeID: "app.bsky.feed.post", Text: "a thread begins", CreatedAt: now.Add(-time.Hour).UTC().Format(time.RFC3339)}, true)
	if err != nil {
		t.Fatal(err)
	}
	ref := &comatproto.RepoStrongRef{Uri: parent.URI, Cid: parent.CID}
	if _, _, err := bc.CreateRecord(ctx, "app.bsky.feed.post", atproto.RecordKey("seed", u.DID, now.Add(-time.Hour+time.Second)),
		&bsky.FeedPost{LexiconTypeID: "app.bsky.feed.post", Text: "and goes on", CreatedAt: now.Add(-time.Hour + time.Second).UTC().Format(time.RFC3339),
			Reply: &bsky.FeedPost_ReplyRef{Root: ref, Parent: ref}}, true); err != nil {
		t.Fatal(err)
	}

	// A like, of the thread's first post.
	if _, _, err := bc.CreateRecord(ctx, "app.bsky.feed.like", atproto.RecordKey("like", u.DID, now),
		&bsky.FeedLike{LexiconTypeID: "app.bsky.feed.like", Subject: ref, CreatedAt: now.UTC().Format(time.RFC3339)}, true); err != nil {
		t.Fatal(err)
	}
	likedAt := "https://bsky.app/profile/" + u.DID + "/post/" + parent.RKey
	// A profile with an avatar.
	var png bytes.Buffer
	pimg := image.NewRGBA(image.Rect(0, 0, 3, 3))
	pimg.Set(1, 1, color.RGBA{G: 255, A: 255})
	if err := pngenc.Encode(&png, pimg); err != nil {
		t.Fatal(err)
	}
	avatar, err := bc.UploadBlob(ctx, png.Bytes(), "image/png")
	if err != nil {
		t.Fatal(err)
	}
	name, desc := "Arch Ive", "keeps <everything>\nforever"
	if _, _, err := bc.CreateRecord(ctx, "app.bsky.actor.profile", "self",
		&bsky.ActorProfile{LexiconTypeID: "app.bsky.actor.profile", DisplayName: &name, Description: &desc, Avatar: avatar}, true); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "sky-archive")
	var s1 arcSummary
	r := c.run("--json", "archive", "sky", "--out", dir).mustSucceed(t)
	if err := json.Unmarshal([]byte(r.stdout), &s1); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if s1.NewPosts != 5 || s1.MediaDownloaded != 2 || s1.TotalPosts != 5 {
		t.Errorf("first run: %+v", s1)
	}
	car, err := os.ReadFile(filepath.Join(dir, "repo.car"))
	if err != nil || len(car) < 200 {
		t.Fatalf("repo.car: %d bytes, %v", len(car), err)
	}
	blobs, _ := os.ReadDir(filepath.Join(dir, "blobs"))
	if len(blobs) != 2 { // the picture and the avatar
		t.Errorf("blobs: %v", blobs)
	}
	outbox := readFile(t, filepath.Join(dir, "outbox.json"))
	for _, w := range []string{"hello from the old PDS", "a picture", "an old thought from 2021", "2021-05-06T07:08:09Z", "pixels", "media_attachments/files/"} {
		if !strings.Contains(outbox, w) {
			t.Errorf("outbox.json lacks %q", w)
		}
	}
	actor := readFile(t, filepath.Join(dir, "actor.json"))
	for _, w := range []string{`"name": "Arch Ive"`, `keeps \u0026lt;everything\u0026gt;\u003cbr\u003eforever`, `"url": "avatar.png"`, u.Handle} {
		if !strings.Contains(actor, w) {
			t.Errorf("actor.json lacks %q:\n%s", w, actor)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "avatar.png")); err != nil || !bytes.Equal(b, png.Bytes()) {
		t.Errorf("avatar.png: %v", err)
	}
	if likes := readFile(t, filepath.Join(dir, "likes.json")); !strings.Contains(likes, likedAt) {
		t.Errorf("likes.json lacks %s:\n%s", likedAt, likes)
	}
	media, _ := filepath.Glob(filepath.Join(dir, "media_attachments", "files", "*", "original", "*"))
	if len(media) != 1 {
		t.Errorf("media files: %v", media)
	}
	if s := c.run("archive", "search", dir, "picture").mustSucceed(t); !strings.Contains(s.stdout, "[picture]") || !strings.Contains(s.stdout, "pixels") {
		t.Errorf("search:\n%s", s.stdout)
	}
	_ = records

	// Again: nothing new, nothing fetched again.
	carInfo, _ := os.Stat(filepath.Join(dir, "repo.car"))
	var s2 arcSummary
	json.Unmarshal([]byte(c.run("--json", "archive", "sky", "--out", dir).mustSucceed(t).stdout), &s2)
	if s2.NewPosts != 0 || s2.MediaDownloaded != 0 || s2.TotalPosts != 5 {
		t.Errorf("second run: %+v", s2)
	}
	if after, _ := os.Stat(filepath.Join(dir, "repo.car")); !after.ModTime().Equal(carInfo.ModTime()) {
		t.Error("an unchanged repository was fetched again")
	}
	// A new post: the next run brings it, and the repository's changes are
	// merged into the CAR file.
	newer, _, err := bc.CreateRecord(ctx, "app.bsky.feed.post", atproto.RecordKey("seed", u.DID, time.Now().Add(time.Minute)),
		&bsky.FeedPost{LexiconTypeID: "app.bsky.feed.post", Text: "written after the archive", CreatedAt: time.Now().UTC().Format(time.RFC3339)}, true)
	if err != nil {
		t.Fatal(err)
	}
	var s3 arcSummary
	r3 := c.run("--json", "archive", "sky", "--out", dir).mustSucceed(t)
	json.Unmarshal([]byte(r3.stdout), &s3)
	if !strings.Contains(r3.stderr, "merged the repository's changes") {
		t.Errorf("the third run did not fetch only the changes:\n%s", r3.stderr)
	}
	if s3.NewPosts != 1 || s3.TotalPosts != 6 || s3.MediaDownloaded != 0 {
		t.Errorf("third run: %+v", s3)
	}
	if after, _ := os.Stat(filepath.Join(dir, "repo.car")); after.ModTime().Equal(carInfo.ModTime()) {
		t.Error("the changed repository was not fetched")
	}
	// The merged CAR file is the repository at its latest revision, with
	// the old records and the new one.
	latest, err := comatproto.SyncGetLatestCommit(ctx, bc, u.DID)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := os.Open(filepath.Join(dir, "repo.car"))
	if err != nil {
		t.Fatal(err)
	}
	commit, repo, err := atrepo.LoadRepoFromCAR(ctx, cf)
	cf.Close()
	if err != nil || commit.Rev != latest.Rev {
		t.Fatalf("repo.car: %v (rev %v, want %s)", err, commit, latest.Rev)
	}
	for _, rk := range []string{newer.RKey, parent.RKey, atproto.RecordKey("seed", u.DID, old)} {
		if _, err := repo.GetRecordCID(ctx, syntax.NSID("app.bsky.feed.post"), syntax.RecordKey(rk)); err != nil {
			t.Errorf("repo.car lacks the post %s: %v", rk, err)
		}
	}

	// A post deleted on Bluesky: --refresh marks it, the archive keeps it.
	late, _, err := bc.CreateRecord(ctx, "app.bsky.feed.post", atproto.RecordKey("seed", u.DID, time.Now().Add(2*time.Minute)),
		&bsky.FeedPost{LexiconTypeID: "app.bsky.feed.post", Text: "soon deleted on Bluesky", CreatedAt: time.Now().UTC().Format(time.RFC3339)}, true)
	if err != nil {
		t.Fatal(err)
	}
	c.run("archive", "sky", "--out", dir).mustSucceed(t)
	if err := bc.DeleteRecord(ctx, "app.bsky.feed.post", late.RKey); err != nil {
		t.Fatal(err)
	}
	var s4 arcSummary
	json.Unmarshal([]byte(c.run("--json", "archive", "sky", "--out", dir, "--refresh").mustSucceed(t).stdout), &s4)
	if s4.DeletedPosts != 1 || s4.MarkedDeleted != 1 || s4.TotalPosts != 7 || s4.NewPosts != 0 {
		t.Errorf("refresh: %+v", s4)
	}
	if ob := readFile(t, filepath.Join(dir, "outbox.json")); !strings.Contains(ob, "ferry:deleted") || !strings.Contains(ob, "soon deleted on Bluesky") {
		t.Error("the deleted post is not kept and marked in outbox.json")
	}

	// The Bluesky archive onto a GoToSocial account, backdated.
	gts := mirUser(t, in)
	c.run("login", in.BaseURL, "--token-file", writeTokenFile(t, gts.Token), "--name", "gts").mustSucceed(t)
	c.run("archive", "publish", dir, "--to", "gts", "--mode", "backdate").mustSucceed(t)
	got := arcStatuses(t, ctx, gts)
	if len(got) != 6 { // the deleted post is not published
		t.Fatalf("published %d statuses, want 6", len(got))
	}
	threaded := false
	found := false
	for _, s := range got {
		if strings.Contains(s.Content, "an old thought from 2021") {
			found = true
			if !s.CreatedAt.Equal(old) {
				t.Errorf("the 2021 post was published at %v", s.CreatedAt)
			}
		}
		if strings.Contains(s.Content, "and goes on") {
			threaded = s.InReplyToID != ""
		}
		if strings.Contains(s.Content, "a picture") && len(s.Media) != 1 {
			t.Errorf("the picture post has %d media", len(s.Media))
		}
	}
	if !found {
		t.Error("the 2021 post was not published")
	}
	if !threaded {
		t.Error("the answer was not published as an answer: the thread was not kept")
	}

	// A GoToSocial account's archive onto Bluesky: createdAt is the
	// original date.
	author := mirUser(t, in)
	st := arcPost(t, ctx, author, url.Values{"status": {"from the fediverse, kept in an archive"}, "visibility": {"public"}})
	gdir := filepath.Join(t.TempDir(), "gts-archive")
	authorName := mirLogin(t, c, in, author)
	c.run("archive", authorName, "--out", gdir).mustSucceed(t)
	time.Sleep(1100 * time.Millisecond) // so that "now" cannot pass for the original date
	dst, dpw := bskyAccount(t, "pubdst")
	c.run("login", dst.PDS.URL, "--handle", dst.Handle, "--password-file", dpw, "--name", "sky2").mustSucceed(t)
	c.run("archive", "publish", gdir, "--to", "sky2", "--mode", "backdate").mustSucceed(t)
	dc, err := atproto.Login(ctx, dst.PDS.URL, dst.Handle, dst.Password, atproto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := dc.ListRecords(ctx, "app.bsky.feed.post", "", 10, false)
	if err != nil || len(recs) != 1 {
		t.Fatalf("posts on Bluesky: %d, %v", len(recs), err)
	}
	fp := recs[0].Value.(*bsky.FeedPost)
	created, err := time.Parse(time.RFC3339, fp.CreatedAt)
	if err != nil || !created.Equal(st.CreatedAt) || !strings.Contains(fp.Text, "from the fediverse") {
		t.Errorf("the Bluesky record: %q created %q, want %v", fp.Text, fp.CreatedAt, st.CreatedAt)
	}
	// Again: nothing more.
	c.run("archive", "publish", gdir, "--to", "sky2", "--mode", "backdate").mustSucceed(t)
	if recs, _, _ := dc.ListRecords(ctx, "app.bsky.feed.post", "", 10, false); len(recs) != 1 {
		t.Errorf("a second publish made %d posts", len(recs))
	}
}
