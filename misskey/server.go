package misskey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/fedi-ferry/ferry/post"
)

// Software names nodeinfo gives for servers that speak Misskey's API:
// Misskey and its forks. (Iceshrimp.NET, the rewrite, speaks Mastodon's
// API and names itself "iceshrimp.net".)
var Software = []string{"misskey", "sharkey", "firefish", "iceshrimp", "cherrypick", "foundkey", "calckey",
	"meisskey", "catodon", "magnetar", "cutiekey", "goblin"}

// ErrOtherSoftware is wrapped by Detect for a server whose nodeinfo names
// software that does not speak Misskey's API.
var ErrOtherSoftware = errors.New("the server does not run Misskey or a fork of it")

// Defaults of Misskey's API used where meta says nothing
// (endpoints/notes/create.ts, drive/files/create.ts, const.ts).
const (
	DefaultMaxNoteTextLength = 3000
	MaxFilesPerNote          = 16  // notes/create: fileIds maxItems
	MaxPollChoices           = 10  // notes/create: poll.choices maxItems
	MaxPollChoiceChars       = 50  // notes/create: poll.choices items maxLength
	MaxCWChars               = 100 // notes/create: cw maxLength
	MaxAltChars              = 512 // drive/files/create: comment maxLength (DB_MAX_IMAGE_COMMENT_LENGTH)
)

// Server is what a Misskey server runs and allows.
type Server struct {
	Software, Version string // from nodeinfo
	Name              string // meta's name
	// MaxNoteTextLength is meta's maxNoteTextLength.
	MaxNoteTextLength int
	// MaxFileSize is the largest file the drive takes, in bytes (meta's
	// maxFileSize, the configuration's cap, or the role policy
	// maxFileSizeMb where that is lower); 0 when unknown.
	MaxFileSize int64
	// DriveCapacity is the account's drive size in bytes (policies.
	// driveCapacityMb, or driveCapacityPerLocalUserMb); 0 when unknown.
	DriveCapacity int64
	// FileTypes are the MIME type patterns the drive takes
	// (policies.uploadableFileTypes); nil when unknown.
	FileTypes []string
	// MiAuth reports that the server offers MiAuth (meta features.miauth).
	MiAuth bool
	// Captchas names the captchas the server asks for at sign-in and
	// sign-up (meta's enableHcaptcha, enableMcaptcha, enableRecaptcha,
	// enableTurnstile, enableTestcaptcha): "hcaptcha", "mcaptcha",
	// "recaptcha", "turnstile", "testcaptcha". A password sign-in of an
	// account without two-factor authentication must answer them.
	Captchas []string
}

// CanEdit reports whether the server's software can edit notes
// (notes/edit: Sharkey and the Firefish line).
func (s Server) CanEdit() bool {
	switch s.Software {
	case "sharkey", "firefish", "iceshrimp", "catodon", "magnetar", "cutiekey":
		return true
	}
	return false
}

// CountsUTF16 reports whether the server measures a note's text in
// UTF-16 code units (JavaScript's length, an emoji counting two) rather
// than code points. Misskey itself checks only the paramDef's maxLength,
// which Ajv counts in code points (checked against Misskey 2025.4.x,
// MisskeyIO fork, on loopback: 3000 emoji were taken); Sharkey adds a
// "text.length > maxNoteLength" check. Forks not checked are assumed to
// count like Sharkey, the safe side.
func (s Server) CountsUTF16() bool { return s.Software != "misskey" }

// Limits are the server's posting limits in ferry's terms.
func (s Server) Limits() post.Limits {
	l := post.Limits{MaxChars: s.MaxNoteTextLength, MaxMedia: MaxFilesPerNote, MaxPollOptions: MaxPollChoices,
		MaxPollOptChars: MaxPollChoiceChars, MaxAltChars: MaxAltChars, MaxImageBytes: s.MaxFileSize, MaxVideoBytes: s.MaxFileSize}
	if l.MaxChars <= 0 {
		l.MaxChars = DefaultMaxNoteTextLength
	}
	return l
}

// NodeInfo reads /.well-known/nodeinfo and the document it links to, and
// returns the software's name (lower case) and version.
func NodeInfo(ctx context.Context, c *Client) (name, version string, err error) {
	var wk struct {
		Links []struct{ Rel, Href string }
	}
	if err := c.getJSON(ctx, c.base.JoinPath(".well-known", "nodeinfo").String(), &wk); err != nil {
		return "", "", err
	}
	href, best := "", ""
	for _, l := range wk.Links {
		v, ok := strings.CutPrefix(l.Rel, "http://nodeinfo.diaspora.software/ns/schema/")
		if ok && l.Href != "" && v > best {
			href, best = l.Href, v
		}
	}
	if href == "" {
		return "", "", fmt.Errorf("%s: nodeinfo links to no document", c.base)
	}
	// The document must come from the server itself: a link elsewhere is
	// followed by its path only, so a hostile index cannot send ferry
	// off-site.
	ref, err := url.Parse(href)
	if err != nil {
		return "", "", fmt.Errorf("%s: nodeinfo link %q: %w", c.base, href, err)
	}
	doc := c.base.JoinPath(ref.Path)
	doc.RawQuery = ref.RawQuery
	href = doc.String()
	var ni struct {
		Software struct{ Name, Version string }
	}
	if err := c.getJSON(ctx, href, &ni); err != nil {
		return "", "", err
	}
	return strings.ToLower(ni.Software.Name), ni.Software.Version, nil
}

func (c *Client) getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", c.ua)
	req.Header.Set("Accept", "application/json")
	c.requests.Add(1)
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: not a nodeinfo document: %w", u, err)
	}
	return nil
}

// Detect asks the server what it runs (nodeinfo) and, when that is Misskey
// or a fork, its limits (POST /api/meta). A server running something else
// is an error wrapping ErrOtherSoftware; one that names Misskey but does
// not answer the API with JSON, a *NotAPIError.
func Detect(ctx context.Context, c *Client) (Server, error) {
	name, version, err := NodeInfo(ctx, c)
	if err != nil {
		// No usable nodeinfo: not a server of this family; another
		// platform's detection says what it is, or that it is none.
		return Server{}, fmt.Errorf("%w: %w", ErrOtherSoftware, err)
	}
	if !slices.Contains(Software, name) {
		return Server{}, fmt.Errorf("%s runs %q: %w", c.base, name, ErrOtherSoftware)
	}
	srv, err := Meta(ctx, c)
	if err != nil {
		return Server{}, fmt.Errorf("%s says it runs %s, but: %w", c.base, name, err)
	}
	srv.Software, srv.Version = name, version
	return srv, nil
}

// Meta reads POST /api/meta (endpoints/meta.ts).
func Meta(ctx context.Context, c *Client) (Server, error) {
	var m struct {
		Name                        string `json:"name"`
		Version                     string `json:"version"`
		MaxNoteTextLength           int    `json:"maxNoteTextLength"`
		MaxFileSize                 int64  `json:"maxFileSize"`
		DriveCapacityPerLocalUserMb int64  `json:"driveCapacityPerLocalUserMb"`
		Features                    struct {
			MiAuth bool `json:"miauth"`
		} `json:"features"`
		EnableHcaptcha    bool `json:"enableHcaptcha"`
		EnableMcaptcha    bool `json:"enableMcaptcha"`
		EnableRecaptcha   bool `json:"enableRecaptcha"`
		EnableTurnstile   bool `json:"enableTurnstile"`
		EnableTestcaptcha bool `json:"enableTestcaptcha"`
		Policies          struct {
			DriveCapacityMb     int64    `json:"driveCapacityMb"`
			MaxFileSizeMb       int64    `json:"maxFileSizeMb"`
			UploadableFileTypes []string `json:"uploadableFileTypes"`
		} `json:"policies"`
	}
	if err := c.Call(ctx, "meta", map[string]any{"detail": true}, &m, false); err != nil {
		return Server{}, err
	}
	srv := Server{Name: m.Name, Version: m.Version, MaxNoteTextLength: m.MaxNoteTextLength, MiAuth: m.Features.MiAuth,
		MaxFileSize: m.MaxFileSize, DriveCapacity: m.DriveCapacityPerLocalUserMb << 20, FileTypes: m.Policies.UploadableFileTypes}
	// The configuration's maxFileSize caps every upload; the role policy
	// maxFileSizeMb (Misskey 2025) may lower it for the account. Both
	// policies are MiB: ApiCallService checks "maxFileSizeMb * 1024 *
	// 1024", DriveService "1024 * 1024 * driveCapacityMb" (checked
	// against Misskey 2025.4.x, MisskeyIO fork, on loopback).
	if p := m.Policies.MaxFileSizeMb << 20; p > 0 && (srv.MaxFileSize <= 0 || p < srv.MaxFileSize) {
		srv.MaxFileSize = p
	}
	if m.Policies.DriveCapacityMb > 0 {
		srv.DriveCapacity = m.Policies.DriveCapacityMb << 20
	}
	if srv.MaxNoteTextLength <= 0 {
		srv.MaxNoteTextLength = DefaultMaxNoteTextLength
	}
	for _, c := range []struct {
		on   bool
		name string
	}{{m.EnableHcaptcha, "hcaptcha"}, {m.EnableMcaptcha, "mcaptcha"}, {m.EnableRecaptcha, "recaptcha"},
		{m.EnableTurnstile, "turnstile"}, {m.EnableTestcaptcha, "testcaptcha"}} {
		if c.on {
			srv.Captchas = append(srv.Captchas, c.name)
		}
	}
	return srv, nil
}
