package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/internal/testenv"
)

// End-to-end tests of `ferry archive` and `ferry archive publish` against
// real GoToSocial servers.

type arcStatus struct {
	ID          string    `json:"id"`
	URI         string    `json:"uri"`
	CreatedAt   time.Time `json:"created_at"`
	InReplyToID string    `json:"in_reply_to_id"`
	SpoilerText string    `json:"spoiler_text"`
	Sensitive   bool      `json:"sensitive"`
	Visibility  string    `json:"visibility"`
	Content     string    `json:"content"`
	Text        string    `json:"text"`
	Media       []struct {
		Description string `json:"description"`
	} `json:"media_attachments"`
	Reblog *json.RawMessage `json:"reblog"`
}

func arcPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range 8 {
		img.Set(i, i, color.RGBA{255, 0, 0, 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// uploadMedia uploads a PNG with alt text and focus as u and returns its ID.
func arcUpload(t *testing.T, ctx context.Context, u *testenv.User, alt string) string {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fw, _ := w.CreateFormFile("file", "pic.png")
	fw.Write(arcPNG(t))
	w.WriteField("description", alt)
	w.WriteField("focus", "0.5,-0.25")
	w.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u.Instance.BaseURL+"/api/v2/media", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+u.Token)
	resp, err := u.Instance.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.ID == "" {
		t.Fatalf("upload: %d %v", resp.StatusCode, err)
	}
	return out.ID
}

func arcPost(t *testing.T, ctx context.Context, u *testenv.User, params url.Values) arcStatus {
	t.Helper()
	var st arcStatus
	if err := u.API(ctx, http.MethodPost, "/api/v1/statuses", params, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func arcStatuses(t *testing.T, ctx context.Context, u *testenv.User) []arcStatus {
	t.Helper()
	var all []arcStatus
	maxID := ""
	for {
		q := url.Values{"limit": {"40"}}
		if maxID != "" {
			q.Set("max_id", maxID)
		}
		var page []arcStatus
		if err := u.API(ctx, http.MethodGet, "/api/v1/accounts/"+u.ID+"/statuses", q, &page); err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		maxID = page[len(page)-1].ID
	}
}

type arcSummary struct {
	NewPosts        int   `json:"new_posts"`
	DeletedPosts    int   `json:"newly_deleted_posts"`
	TotalPosts      int   `json:"total_posts"`
	MarkedDeleted   int   `json:"marked_deleted"`
	StatusPages     int   `json:"status_pages"`
	MediaDownloaded int   `json:"media_downloaded"`
	Likes           int   `json:"likes"`
	Bookmarks       int   `json:"bookmarks"`
	Requests        int64 `json:"requests"`
	Indexed         int   `json:"indexed"`
}

func TestE2EArchiveAndPublish(t *testing.T) {
	testenv.Require(t)
	env := testenv.Shared(t, 2)
	a, b := env.Instances[0], env.Instances[1]
	ctx := t.Context()
	alice, err := a.CreateUser(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	carol, err := b.CreateUser(ctx, "", true) // mentioned; must never be notified by a publish
	if err != nil {
		t.Fatal(err)
	}

	// ≥ 200 posts: a self-thread, CWs, media with alt text, a poll, a boost,
	// every visibility, a mention.
	start := time.Now()
	root := arcPost(t, ctx, alice, url.Values{"status": {"thread root #ferrytest"}, "visibility": {"public"}})
	parent := root
	for i := 1; i <= 3; i++ {
		parent = arcPost(t, ctx, alice, url.Values{"status": {fmt.Sprintf("thread part %d", i)}, "in_reply_to_id": {parent.ID}, "visibility": {"unlisted"}})
	}
	arcPost(t, ctx, alice, url.Values{"status": {"behind a warning"}, "spoiler_text": {"spoilers"}, "sensitive": {"true"}})
	mid := arcUpload(t, ctx, alice, "a red diagonal line")
	withMedia := arcPost(t, ctx, alice, url.Values{"status": {"a picture"}, "media_ids[]": {mid}})
	arcPost(t, ctx, alice, url.Values{"status": {"which one?"}, "poll[options][]": {"tea", "coffee"}, "poll[expires_in]": {"3600"}})
	arcPost(t, ctx, alice, url.Values{"status": {"followers only"}, "visibility": {"private"}})
	arcPost(t, ctx, alice, url.Values{"status": {"hello @" + carol.Acct + " how are you"}, "visibility": {"public"}})
	if err := alice.API(ctx, http.MethodPost, "/api/v1/statuses/"+withMedia.ID+"/reblog", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := alice.API(ctx, http.MethodPost, "/api/v1/statuses/"+root.ID+"/favourite", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := alice.API(ctx, http.MethodPost, "/api/v1/statuses/"+root.ID+"/bookmark", nil, nil); err != nil {
		t.Fatal(err)
	}
	for i := len(arcStatuses(t, ctx, alice)); i < 205; i++ {
		arcPost(t, ctx, alice, url.Values{"status": {fmt.Sprintf("filler post number %d", i)}, "visibility": {"public"}})
	}
	arcSetPictures(t, ctx, alice)
	t.Logf("created the fixture posts in %s", time.Since(start).Round(time.Millisecond))

	c := newCLI(t, env.CAFile)
	c.run("login", a.BaseURL, "--token-file", writeTokenFile(t, alice.Token), "--name", "old").mustSucceed(t)
	dir := filepath.Join(t.TempDir(), "archive")
	zipFile := filepath.Join(t.TempDir(), "archive.zip")

	run1 := c.run("--json", "archive", "old", "--out", dir, "--zip", zipFile).mustSucceed(t)
	assertNoToken(t, alice.Token, run1)
	var s1 arcSummary
	if err := json.Unmarshal([]byte(run1.stdout), &s1); err != nil {
		t.Fatalf("%v\n%s", err, run1.stdout)
	}
	t.Logf("first run: %+v", s1)
	if s1.NewPosts < 205 || s1.MediaDownloaded < 1 || s1.Likes != 1 || s1.Bookmarks != 1 || s1.Indexed != s1.TotalPosts {
		t.Errorf("first run summary %+v", s1)
	}
	if max := (s1.NewPosts+39)/40 + 1; s1.StatusPages > max {
		t.Errorf("first run read %d status pages for %d posts, want ≤ %d", s1.StatusPages, s1.NewPosts, max)
	}
	arcCheckOutbox(t, dir, s1.TotalPosts)
	arcCheckPictures(t, dir, zipFile)

	// Five new posts: the second run fetches only those.
	for i := range 5 {
		arcPost(t, ctx, alice, url.Values{"status": {fmt.Sprintf("new post %d", i)}})
	}
	var s2 arcSummary
	run2 := c.run("--json", "archive", "old", "--out", dir).mustSucceed(t)
	json.Unmarshal([]byte(run2.stdout), &s2)
	t.Logf("second run: %+v", s2)
	if s2.NewPosts != 5 || s2.StatusPages != 1 || s2.MediaDownloaded != 0 {
		t.Errorf("second run summary %+v, want 5 new posts from 1 page and no media", s2)
	}
	// The profile, one page of posts, favourites, bookmarks: the unchanged
	// avatar and header are not downloaded again.
	if s2.Requests > 4 {
		t.Errorf("second run made %d requests, want ≤ 4", s2.Requests)
	}

	// A deleted post is marked, not lost.
	victim := arcPost(t, ctx, alice, url.Values{"status": {"soon deleted"}})
	c.run("archive", "old", "--out", dir).mustSucceed(t)
	if err := alice.API(ctx, http.MethodDelete, "/api/v1/statuses/"+victim.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	// GoToSocial completes a delete in the background.
	waitFor(t, "the delete to take effect", func() bool {
		return alice.API(ctx, http.MethodGet, "/api/v1/statuses/"+victim.ID, nil, nil) != nil
	})
	var s3 arcSummary
	run3 := c.run("--json", "archive", "old", "--out", dir, "--refresh").mustSucceed(t)
	json.Unmarshal([]byte(run3.stdout), &s3)
	if s3.DeletedPosts != 1 || s3.MarkedDeleted != 1 || s3.TotalPosts != s2.TotalPosts+1 {
		t.Errorf("refresh summary %+v", s3)
	}
	outbox, _ := os.ReadFile(filepath.Join(dir, "outbox.json"))
	if !bytes.Contains(outbox, []byte(`"ferry:deleted"`)) || !bytes.Contains(outbox, []byte("soon deleted")) {
		t.Error("the deleted post is not kept and marked in outbox.json")
	}

	// Search.
	srch := c.run("archive", "search", dir, `"thread part"`).mustSucceed(t)
	if strings.Count(srch.stdout, "thread part") != 3 {
		t.Errorf("search output:\n%s", srch.stdout)
	}
	srch = c.run("--json", "archive", "search", dir, "picture", "--has-media").mustSucceed(t)
	if !strings.Contains(srch.stdout, "[picture]") {
		t.Errorf("search --has-media output:\n%s", srch.stdout)
	}

	notifBefore := arcNotifications(t, ctx, carol)

	// Publish, backdated, to B.
	bob, err := b.CreateUser(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	c.run("login", b.BaseURL, "--token-file", writeTokenFile(t, bob.Token), "--name", "new").mustSucceed(t)
	dry := c.run("--json", "archive", "publish", dir, "--to", "new", "--mode", "backdate", "--dry-run").mustSucceed(t)
	if !strings.Contains(dry.stdout, "dry_run") || len(arcStatuses(t, ctx, bob)) != 0 {
		t.Fatalf("dry run published or said nothing:\n%s", dry.stdout)
	}
	pub := c.run("archive", "publish", dir, "--to", "new", "--mode", "backdate").mustSucceed(t)
	t.Log(pub.stdout)
	arcVerify(t, ctx, alice, bob, false)

	// Rerun: nothing more.
	before := len(arcStatuses(t, ctx, bob))
	c.run("archive", "publish", dir, "--to", "new", "--mode", "backdate").mustSucceed(t)
	if after := len(arcStatuses(t, ctx, bob)); after != before {
		t.Errorf("a rerun published %d more posts", after-before)
	}

	// Repost mode to another account on B.
	dave, err := b.CreateUser(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	c.run("login", b.BaseURL, "--token-file", writeTokenFile(t, dave.Token), "--name", "repost").mustSucceed(t)
	c.run("archive", "publish", dir, "--to", "repost", "--mode", "repost").mustSucceed(t)
	arcVerify(t, ctx, alice, dave, true)

	time.Sleep(2 * time.Second) // let any notification be processed
	if after := arcNotifications(t, ctx, carol); after != notifBefore {
		t.Errorf("the mentioned account got %d new notifications from the publishes", after-notifBefore)
	}
}

func arcNotifications(t *testing.T, ctx context.Context, u *testenv.User) int {
	t.Helper()
	var ns []json.RawMessage
	if err := u.API(ctx, http.MethodGet, "/api/v1/notifications", url.Values{"limit": {"80"}}, &ns); err != nil {
		t.Fatal(err)
	}
	return len(ns)
}

// verifyPublished compares the target's posts with the origin's.
func arcVerify(t *testing.T, ctx context.Context, from, to *testenv.User, repost bool) {
	t.Helper()
	orig := arcStatuses(t, ctx, from)
	got := arcStatuses(t, ctx, to)
	byText := map[string]arcStatus{}
	for _, s := range got {
		txt := s.Text
		if txt == "" {
			txt = s.Content
		}
		if prev, dup := byText[txt]; dup {
			t.Errorf("duplicate post on the target: %q (%s and %s)", txt, prev.ID, s.ID)
		}
		byText[txt] = s
	}
	want := 0
	for _, o := range orig {
		if o.Visibility != "direct" && o.Reblog == nil { // boosts are skipped
			want++
		}
	}
	if len(got) != want {
		t.Errorf("target has %d posts, want %d", len(got), want)
	}
	find := func(sub string) arcStatus {
		for txt, s := range byText {
			if strings.Contains(txt, sub) {
				return s
			}
		}
		t.Errorf("no post containing %q on the target", sub)
		return arcStatus{}
	}
	root := find("thread root")
	p1 := find("thread part 1")
	p3 := find("thread part 3")
	p2 := find("thread part 2")
	if p1.InReplyToID != root.ID || p2.InReplyToID != p1.ID || p3.InReplyToID != p2.ID {
		t.Errorf("thread not kept: root %s, 1→%s, 2→%s, 3→%s", root.ID, p1.InReplyToID, p2.InReplyToID, p3.InReplyToID)
	}
	cw := find("behind a warning")
	if cw.SpoilerText != "spoilers" || !cw.Sensitive {
		t.Errorf("CW not kept: %+v", cw)
	}
	pic := find("a picture")
	if len(pic.Media) != 1 || pic.Media[0].Description != "a red diagonal line" {
		t.Errorf("media/alt not kept: %+v", pic.Media)
	}
	poll := find("which one?")
	if !strings.Contains(poll.Text+poll.Content, "coffee") {
		t.Errorf("poll not turned into text: %q", poll.Text)
	}
	mention := find("how are you")
	if strings.Contains(mention.Content, "mention") {
		t.Errorf("mention still live: %s", mention.Content)
	}
	if !repost {
		for _, o := range orig {
			if strings.Contains(o.Content, "thread root") && !root.CreatedAt.Equal(o.CreatedAt.Truncate(time.Second)) {
				t.Errorf("backdated root at %s, original %s", root.CreatedAt, o.CreatedAt)
			}
		}
	} else {
		if !strings.Contains(root.Text+root.Content, "Originally posted on") || root.Visibility != "unlisted" {
			t.Errorf("repost note/visibility: %q %s", root.Text, root.Visibility)
		}
		if priv := find("followers only"); priv.Visibility != "private" {
			t.Errorf("a private post was reposted as %s", priv.Visibility)
		}
	}
}

// checkOutbox validates the JSON shapes of the archive (protocols.md §1b).
func arcCheckOutbox(t *testing.T, dir string, total int) {
	t.Helper()
	var ob struct {
		Type         string `json:"type"`
		ID           string `json:"id"`
		TotalItems   int    `json:"totalItems"`
		OrderedItems []struct {
			ID        string          `json:"id"`
			Type      string          `json:"type"`
			Actor     string          `json:"actor"`
			Published time.Time       `json:"published"`
			To        []string        `json:"to"`
			Object    json.RawMessage `json:"object"`
		} `json:"orderedItems"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "outbox.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &ob); err != nil {
		t.Fatal(err)
	}
	if ob.Type != "OrderedCollection" || ob.ID != "outbox.json" || ob.TotalItems != total || len(ob.OrderedItems) != total {
		t.Errorf("outbox: type %s id %s total %d items %d, want %d", ob.Type, ob.ID, ob.TotalItems, len(ob.OrderedItems), total)
	}
	kinds := map[string]int{}
	// Oldest first, and so every reply after the post it replies to.
	type noteRef struct {
		ID        string  `json:"id"`
		InReplyTo *string `json:"inReplyTo"`
	}
	notes := make([]noteRef, len(ob.OrderedItems))
	own := map[string]bool{}
	for i, it := range ob.OrderedItems {
		if json.Unmarshal(it.Object, &notes[i]) == nil && notes[i].ID != "" {
			own[notes[i].ID] = true
		}
	}
	listed := map[string]bool{}
	for i, it := range ob.OrderedItems {
		if i > 0 && it.Published.Before(ob.OrderedItems[i-1].Published) {
			t.Errorf("outbox item %d (%s, %s) is older than the one before it (%s)", i, it.ID, it.Published, ob.OrderedItems[i-1].Published)
		}
		if p := notes[i].InReplyTo; p != nil && own[*p] && !listed[*p] {
			t.Errorf("outbox item %d (%s) comes before the post it replies to (%s)", i, notes[i].ID, *p)
		}
		listed[notes[i].ID] = true
	}
	for _, it := range ob.OrderedItems {
		switch it.Type {
		case "Announce":
			var s string
			if json.Unmarshal(it.Object, &s) != nil || s == "" {
				t.Errorf("Announce %s object %s", it.ID, it.Object)
			}
			kinds["Announce"]++
		case "Create":
			var n struct {
				Type       string `json:"type"`
				ID         string `json:"id"`
				InReplyTo  *string
				Summary    *string
				Attachment []struct {
					Type, MediaType, URL string
					Name                 *string
					FocalPoint           []float64
				}
				OneOf []struct{ Name string }
			}
			if err := json.Unmarshal(it.Object, &n); err != nil {
				t.Fatal(err)
			}
			kinds[n.Type]++
			if n.InReplyTo != nil {
				kinds["reply"]++
			}
			if n.Summary != nil {
				kinds["cw"]++
			}
			for _, a := range n.Attachment {
				if !strings.HasPrefix(a.URL, "media_attachments/") || a.Name == nil || *a.Name == "" || a.Type != "Document" || a.MediaType == "" {
					t.Errorf("attachment %+v", a)
				}
				if _, err := os.Stat(filepath.Join(dir, a.URL)); err != nil {
					t.Errorf("media file: %v", err)
				}
				kinds["media"]++
			}
		default:
			t.Errorf("activity type %q", it.Type)
		}
	}
	if kinds["Announce"] != 1 || kinds["Question"] != 1 || kinds["reply"] != 3 || kinds["cw"] < 1 || kinds["media"] < 1 {
		t.Errorf("activity kinds %v", kinds)
	}
	for _, f := range []string{"actor.json", "likes.json", "bookmarks.json"} {
		var v struct {
			Type         string `json:"type"`
			OrderedItems []string
		}
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || json.Unmarshal(data, &v) != nil {
			t.Errorf("%s: %v", f, err)
		}
		if f != "actor.json" && len(v.OrderedItems) != 1 {
			t.Errorf("%s items %v", f, v.OrderedItems)
		}
	}
}

// arcSetPictures gives u an avatar and a header.
func arcSetPictures(t *testing.T, ctx context.Context, u *testenv.User) {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, name := range []string{"avatar", "header"} {
		fw, _ := w.CreateFormFile(name, name+".png")
		fw.Write(arcPNG(t))
	}
	w.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, u.Instance.BaseURL+"/api/v1/accounts/update_credentials", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+u.Token)
	resp, err := u.Instance.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("update_credentials: %s", resp.Status)
	}
}

// arcCheckPictures checks that actor.json names the downloaded avatar and
// header, and that the zip holds them.
func arcCheckPictures(t *testing.T, dir, zipFile string) {
	t.Helper()
	var actor struct {
		Icon, Image *struct{ Type, MediaType, URL string }
	}
	data, err := os.ReadFile(filepath.Join(dir, "actor.json"))
	if err != nil || json.Unmarshal(data, &actor) != nil {
		t.Fatalf("actor.json: %v", err)
	}
	zr, err := zip.OpenReader(zipFile)
	if err != nil {
		t.Fatalf("zip: %v", err)
	}
	defer zr.Close()
	inZip := map[string]bool{}
	for _, f := range zr.File {
		inZip[f.Name] = true
	}
	for name, img := range map[string]*struct{ Type, MediaType, URL string }{"avatar": actor.Icon, "header": actor.Image} {
		if img == nil || img.URL != name+".png" || img.MediaType != "image/png" {
			t.Errorf("actor.json %s: %+v", name, img)
			continue
		}
		got, err := os.ReadFile(filepath.Join(dir, img.URL))
		if err != nil || len(got) == 0 {
			t.Errorf("%s file: %v", name, err)
		}
		if !inZip[img.URL] {
			t.Errorf("the zip has no %s", img.URL)
		}
	}
	if !inZip["outbox.json"] || !inZip["actor.json"] {
		t.Errorf("zip members: %v", inZip)
	}
}
