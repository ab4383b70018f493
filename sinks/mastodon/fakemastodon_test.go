package mastodon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/sinks/mastodon"
	"github.com/fedi-ferry/ferry/sinks/sinktest"
)

// fakeMastodon imitates the parts of Mastodon's client API that no server
// runnable here has (GoToSocial, the real-server test above, lacks them):
//
//   - Idempotency-Key on POST /api/v1/statuses: a repeated key returns the
//     status already created (docs: methods/statuses.md#create, "Idempotency-Key";
//     source: app/controllers/api/v1/statuses_controller.rb, kept about 1 h);
//   - POST /api/v2/media answering 202 with "url": null while processing, and
//     GET /api/v1/media/:id answering 206 until done, then 200
//     (docs: methods/media.md#v2 and #get);
//   - scheduled_at in the past rejected with 422 (docs: methods/statuses.md,
//     "scheduled_at … must be at least 5 minutes in the future").
//
// Everything else the contract suite touches is implemented just enough to
// read back what was posted.
type fakeMastodon struct {
	mu       sync.Mutex
	statuses map[string]*fedi.Status
	media    map[string]*fedi.Attachment
	polls    map[string]int // media id -> remaining 206 answers
	keys     map[string]string
	next     int
	creates  int
}

func newFakeMastodon(t *testing.T) *httptest.Server {
	f := &fakeMastodon{statuses: map[string]*fedi.Status{}, media: map[string]*fedi.Attachment{},
		polls: map[string]int{}, keys: map[string]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

func (f *fakeMastodon) id() string { f.next++; return strconv.Itoa(f.next) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeMastodon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := r.URL.Path
	switch {
	case p == "/.well-known/nodeinfo":
		writeJSON(w, 200, map[string]any{"links": []map[string]string{{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": "/nodeinfo/2.0"}}})
	case p == "/nodeinfo/2.0":
		writeJSON(w, 200, map[string]any{"software": map[string]string{"name": "mastodon", "version": "4.3.2"}})
	case p == "/api/v2/instance":
		writeJSON(w, 200, map[string]any{"configuration": map[string]any{"statuses": map[string]int{
			"max_characters": 500, "max_media_attachments": 4, "characters_reserved_per_url": 23}}})
	case p == "/api/v1/accounts/verify_credentials":
		writeJSON(w, 200, map[string]string{"id": "1", "username": "me"})
	case p == "/api/v1/accounts/1/statuses":
		var out []*fedi.Status
		for i := f.next; i > 0; i-- { // newest first
			if st := f.statuses[strconv.Itoa(i)]; st != nil {
				out = append(out, st)
			}
		}
		writeJSON(w, 200, out)
	case p == "/api/v2/media" && r.Method == http.MethodPost:
		if err := r.ParseMultipartForm(10 << 20); err != nil {
			writeJSON(w, 422, map[string]string{"error": err.Error()})
			return
		}
		a := &fedi.Attachment{ID: f.id(), Type: "image", Description: r.FormValue("description")}
		if fx, fy, ok := strings.Cut(r.FormValue("focus"), ","); ok {
			x, _ := strconv.ParseFloat(fx, 64)
			y, _ := strconv.ParseFloat(fy, 64)
			a.Meta.Focus = &struct {
				X float64 `json:"x"`
				Y float64 `json:"y"`
			}{x, y}
		}
		f.media[a.ID], f.polls[a.ID] = a, 2
		writeJSON(w, 202, a) // url is null until processed
	case strings.HasPrefix(p, "/api/v1/media/"):
		id := strings.TrimPrefix(p, "/api/v1/media/")
		a := f.media[id]
		if a == nil {
			writeJSON(w, 404, map[string]string{"error": "Record not found"})
			return
		}
		if f.polls[id] > 0 {
			f.polls[id]--
			writeJSON(w, 206, a)
			return
		}
		a.URL = "https://files.example/" + id + ".png"
		writeJSON(w, 200, a)
	case p == "/api/v1/statuses" && r.Method == http.MethodPost:
		f.create(w, r)
	case strings.HasPrefix(p, "/api/v1/statuses/"):
		id := strings.TrimPrefix(p, "/api/v1/statuses/")
		st := f.statuses[id]
		if st == nil {
			writeJSON(w, 404, map[string]string{"error": "Record not found"})
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, 200, st)
		case http.MethodDelete:
			delete(f.statuses, id)
			writeJSON(w, 200, st)
		case http.MethodPut:
			var req struct {
				Status      string   `json:"status"`
				SpoilerText string   `json:"spoiler_text"`
				MediaIDs    []string `json:"media_ids"`
			}
			_ = json.NewDecoder(r.Body).Decode(&req)
			st.Text, st.SpoilerText = req.Status, req.SpoilerText
			st.MediaAttachments = nil
			for _, m := range req.MediaIDs {
				st.MediaAttachments = append(st.MediaAttachments, *f.media[m])
			}
			writeJSON(w, 200, st)
		}
	default:
		writeJSON(w, 404, map[string]string{"error": "Record not found"})
	}
}

func (f *fakeMastodon) create(w http.ResponseWriter, r *http.Request) {
	if k := r.Header.Get("Idempotency-Key"); k != "" && f.keys[k] != "" {
		writeJSON(w, 200, f.statuses[f.keys[k]])
		return
	}
	var req struct {
		Status      string   `json:"status"`
		MediaIDs    []string `json:"media_ids"`
		InReplyToID string   `json:"in_reply_to_id"`
		Sensitive   bool     `json:"sensitive"`
		SpoilerText string   `json:"spoiler_text"`
		Visibility  string   `json:"visibility"`
		Language    string   `json:"language"`
		ScheduledAt string   `json:"scheduled_at"`
		Poll        *struct {
			Options []string `json:"options"`
		} `json:"poll"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, 422, map[string]string{"error": err.Error()})
		return
	}
	if req.ScheduledAt != "" {
		if at, err := time.Parse(time.RFC3339, req.ScheduledAt); err != nil || at.Before(time.Now().Add(5*time.Minute)) {
			writeJSON(w, 422, map[string]string{"error": "Validation failed: Scheduled at The scheduled date must be in the future"})
			return
		}
	}
	st := &fedi.Status{ID: f.id(), Text: req.Status, InReplyToID: req.InReplyToID, Sensitive: req.Sensitive,
		SpoilerText: req.SpoilerText, Visibility: req.Visibility, Language: req.Language, CreatedAt: time.Now().UTC()}
	st.URL = fmt.Sprintf("https://fake.example/@me/%s", st.ID)
	for _, m := range req.MediaIDs {
		a := f.media[m]
		if a == nil || f.polls[m] > 0 {
			writeJSON(w, 422, map[string]string{"error": "media not processed yet"})
			return
		}
		st.MediaAttachments = append(st.MediaAttachments, *a)
	}
	if req.Poll != nil {
		st.Poll = &fedi.Poll{}
		for _, o := range req.Poll.Options {
			st.Poll.Options = append(st.Poll.Options, struct {
				Title      string `json:"title"`
				VotesCount *int   `json:"votes_count"`
			}{Title: o})
		}
	}
	f.statuses[st.ID] = st
	f.creates++
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		f.keys[k] = st.ID
	}
	writeJSON(w, 200, st)
}

// The contract suite against Mastodon's documented behaviour: idempotency
// keys deduplicate, asynchronous media are waited for, backdating is
// refused as permanent.
func TestSinkContractFakeMastodon(t *testing.T) {
	srv := newFakeMastodon(t)
	base, _ := fedi.ParseServer(srv.URL)
	hc, _ := fedi.NewHTTPClient(fedi.HTTPOptions{})
	c := fedi.NewClient(base, "token", hc)
	sinktest.Run(t, mastodon.New(mastodon.Options{Client: c}), inspector{c}, sinktest.Options{Idempotent: true, Polls: true})
}
