package pdsmove_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/api/bsky"

	"github.com/fedi-ferry/ferry/atproto"
	"github.com/fedi-ferry/ferry/internal/testenv"
	"github.com/fedi-ferry/ferry/migrate/pdsmove"
	"github.com/fedi-ferry/ferry/state"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// SeedAccount gives c a post with an image, a plain post, a follow, a
// block and a list, and returns the image's blob CID.
func seedAccount(t *testing.T, c *atproto.Client, other string) string {
	t.Helper()
	ctx := t.Context()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	img.Set(1, 1, color.RGBA{R: 255, A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	blob, err := c.UploadBlob(ctx, buf.Bytes(), "image/png")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	key := func(i int) string { return atproto.RecordKey("seed", c.DID(), now.Add(time.Duration(i)*time.Second)) }
	mk := func(i int, coll string, rec any) {
		t.Helper()
		var err error
		switch v := rec.(type) {
		case *bsky.FeedPost:
			_, _, err = c.CreateRecord(ctx, coll, key(i), v, true)
		case *bsky.GraphFollow:
			_, _, err = c.CreateRecord(ctx, coll, key(i), v, true)
		case *bsky.GraphBlock:
			_, _, err = c.CreateRecord(ctx, coll, key(i), v, true)
		case *bsky.GraphList:
			_, _, err = c.CreateRecord(ctx, coll, key(i), v, true)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	ts := now.Format(time.RFC3339)
	mk(0, "app.bsky.feed.post", &bsky.FeedPost{LexiconTypeID: "app.bsky.feed.post", Text: "a first post", CreatedAt: ts})
	mk(1, "app.bsky.feed.post", &bsky.FeedPost{LexiconTypeID: "app.bsky.feed.post", Text: "a post with an image", CreatedAt: ts,
		Embed: &bsky.FeedPost_Embed{EmbedImages: &bsky.EmbedImages{LexiconTypeID: "app.bsky.embed.images",
			Images: []*bsky.EmbedImages_Image{{Alt: "a red dot", Image: blob}}}}})
	mk(2, "app.bsky.graph.follow", &bsky.GraphFollow{LexiconTypeID: "app.bsky.graph.follow", Subject: other, CreatedAt: ts})
	mk(3, "app.bsky.graph.block", &bsky.GraphBlock{LexiconTypeID: "app.bsky.graph.block", Subject: other, CreatedAt: ts})
	purpose := "app.bsky.graph.defs#curatelist"
	mk(4, "app.bsky.graph.list", &bsky.GraphList{LexiconTypeID: "app.bsky.graph.list", Name: "friends", Purpose: &purpose, CreatedAt: ts})
	return blob.Ref.String()
}

// A move between two real PDSes sharing a PLC directory: the run stops
// for the emailed code, continues with it, and verify finds the DID
// document naming the new PDS, every record and the blob there, the new
// account active and the old one deactivated.
func TestE2EPDSMove(t *testing.T) {
	env := testenv.SharedPDS(t, 2)
	ctx := t.Context()
	oldPDS, newPDS := env.PDSes[0], env.PDSes[1]
	u, err := oldPDS.CreateAccount(ctx, "mover")
	if err != nil {
		t.Fatal(err)
	}
	other, err := oldPDS.CreateAccount(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	old, err := atproto.Login(ctx, oldPDS.URL, u.Handle, u.Password, atproto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cid := seedAccount(t, old, other.DID)
	pref := map[string]any{"preferences": []any{map[string]any{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": true}}}
	if err := old.LexDo(ctx, "POST", "application/json", "app.bsky.actor.putPreferences", nil, pref, nil); err != nil {
		t.Fatal(err)
	}
	store := state.TestStore(t)
	var out strings.Builder
	code := ""
	o := pdsmove.Options{Old: old, NewPDS: newPDS.URL, Journal: store, PLCURL: env.PLCURL, Out: &out,
		Password: func(context.Context) (string, error) { return "New-Password-123", nil },
		Code: func(context.Context) (string, error) {
			if code == "" {
				return "", pdsmove.ErrNoCode
			}
			return code, nil
		}}
	plan, err := pdsmove.Preflight(ctx, o)
	if err != nil || plan.Blocked() {
		t.Fatalf("preflight: %v %+v", err, plan)
	}
	_, err = pdsmove.Run(ctx, o)
	var se *pdsmove.StepError
	if !errors.As(err, &se) || se.Step != pdsmove.StepSignPLC || !strings.Contains(err.Error(), "--plc-token-file") ||
		!strings.Contains(err.Error(), "still lives on") {
		t.Fatalf("first run: %v\n%s", err, out.String())
	}
	// A wrong code: a clear message, nothing changed.
	code = "WRONG-CODE"
	_, err = pdsmove.Run(ctx, o)
	if !errors.As(err, &se) || se.Step != pdsmove.StepSignPLC || !strings.Contains(err.Error(), "did not accept the code") {
		t.Fatalf("wrong code: %v", err)
	}
	code, err = oldPDS.EmailToken(ctx, u.DID, "plc_operation")
	if err != nil {
		t.Fatal(err)
	}
	res, err := pdsmove.Run(ctx, o)
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
	if strings.Join(res.Done, ",") != "sign-plc,submit-plc,activate-new,deactivate-old" {
		t.Errorf("second run did %v", res.Done)
	}
	v, err := pdsmove.Verify(ctx, o)
	if err != nil || !v.OK() {
		t.Fatalf("verify: %v %+v", err, v)
	}
	if v.NewRecords != 5 || v.ImportedBlobs != 1 || v.OldActive {
		t.Errorf("verify: %+v", v)
	}
	// The blob is there, byte for byte the old one's.
	nc, err := atproto.Login(ctx, newPDS.URL, u.DID, "New-Password-123", atproto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := comatproto.SyncGetBlob(ctx, nc, cid, u.DID); err != nil || len(b) == 0 {
		t.Errorf("the blob on the new PDS: %v", err)
	}
	var prefs struct {
		Preferences []map[string]any `json:"preferences"`
	}
	if err := nc.LexDo(ctx, "GET", "", "app.bsky.actor.getPreferences", nil, nil, &prefs); err != nil ||
		len(prefs.Preferences) != 1 || prefs.Preferences[0]["enabled"] != true {
		t.Errorf("preferences on the new PDS: %+v, %v", prefs, err)
	}
	t.Log(out.String())
}
