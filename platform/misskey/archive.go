package misskey

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fedi-ferry/ferry/fedi"
	mk "github.com/fedi-ferry/ferry/misskey"
	"github.com/fedi-ferry/ferry/platform"
	sinkarchive "github.com/fedi-ferry/ferry/sinks/archive"
	srcmk "github.com/fedi-ferry/ferry/sources/misskey"
)

// archiveAPI is Misskey's API in the archiver's terms (sinkarchive.API):
// the account's notes (users/notes, newest first) as Mastodon API statuses
// with their MFM rendered as HTML (sources/misskey.Render), files as
// attachments with their alt text, the profile from i, and favourites as
// bookmarks. Misskey has reactions, not likes: the archive's likes stay
// empty.
type archiveAPI struct {
	g     graphAPI
	fetch *http.Client
}

func (a archiveAPI) Host() string       { return a.g.Host() }
func (a archiveAPI) HTTP() *http.Client { return a.fetch }
func (a archiveAPI) base() *url.URL     { return a.g.c.Base() }

// profile is i's answer as far as the archive keeps it.
type profile struct {
	mk.User
	Description *string `json:"description"`
	AvatarURL   *string `json:"avatarUrl"`
	BannerURL   *string `json:"bannerUrl"`
	IsBot       bool    `json:"isBot"`
	IsLocked    bool    `json:"isLocked"`
	CreatedAt   string  `json:"createdAt"`
	NotesCount  int     `json:"notesCount"`
	Fields      []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"fields"`
}

func (a archiveAPI) OwnProfile(ctx context.Context) (fedi.Profile, error) {
	var p profile
	if err := a.g.call(ctx, "i", nil, &p, false); err != nil {
		return fedi.Profile{}, err
	}
	base := a.base()
	out := fedi.Profile{Account: fedi.Account{ID: p.ID, Username: p.Username, Acct: p.Username, DisplayName: p.Name,
		URL: base.JoinPath("@" + p.Username).String(), URI: base.JoinPath("users", p.ID).String(), Locked: p.IsLocked},
		Note: srcmk.Render(mk.Str(p.Description), base).HTML, Avatar: mk.Str(p.AvatarURL), Header: mk.Str(p.BannerURL),
		CreatedAt: mk.Time(p.CreatedAt), Bot: p.IsBot, StatusesCount: p.NotesCount,
		// notesCount is never decremented when a note is deleted (checked
		// against Misskey 2025.4.x, MisskeyIO fork, on loopback).
		CountsDeleted: true}
	for _, f := range p.Fields {
		out.Fields = append(out.Fields, fedi.Field{Name: f.Name, Value: srcmk.Render(f.Value, base).HTML})
	}
	return out, nil
}

// Statuses walks the notes newest first with untilId, whatever since_id
// says: Misskey versions order a sinceId page differently, and the
// archiver stops at its cursor itself.
func (a archiveAPI) Statuses(ctx context.Context, accountID string, q url.Values, fn func([]fedi.Status) (bool, error)) error {
	until := ""
	for {
		p := mk.UserNotesParams{UserID: accountID, Limit: 100, UntilID: until, WithReplies: true}
		notes, err := a.g.c.UserNotes(ctx, p)
		if err != nil {
			return fediErr(err)
		}
		if len(notes) == 0 {
			return nil
		}
		sts := make([]fedi.Status, 0, len(notes))
		for _, n := range notes {
			sts = append(sts, a.status(n))
			if until == "" || n.ID < until {
				until = n.ID
			}
		}
		if more, err := fn(sts); err != nil || !more {
			return err
		}
		if len(notes) < p.Limit {
			return nil
		}
	}
}

func (a archiveAPI) GetStatus(ctx context.Context, id string) (fedi.Status, error) {
	n, err := a.g.c.ShowNote(ctx, id)
	if err != nil {
		return fedi.Status{}, fediErr(err)
	}
	return a.status(n), nil
}

func (a archiveAPI) Collection(ctx context.Context, name string, fn func(fedi.Status)) error {
	if name != "bookmarks" {
		return nil
	}
	return a.g.Bookmarks(ctx, func(refs []fedi.StatusRef) error {
		for _, r := range refs {
			fn(fedi.Status{ID: r.ID, URI: r.URI, URL: r.URL})
		}
		return nil
	})
}

// mastodonVisibility is a note's visibility in the Mastodon API's words.
func mastodonVisibility(v string, localOnly bool) string {
	switch srcmk.Visibility(v, localOnly) {
	case "public":
		return "public"
	case "unlisted":
		return "unlisted"
	case "private":
		return "private"
	}
	return "direct"
}

func attachmentType(mime string) string {
	switch {
	case strings.HasPrefix(mime, "image/"):
		if mime == "image/gif" {
			return "gifv"
		}
		return "image"
	case strings.HasPrefix(mime, "video/"):
		return "video"
	case strings.HasPrefix(mime, "audio/"):
		return "audio"
	}
	return "unknown"
}

// status is a note as a Mastodon API status.
func (a archiveAPI) status(n mk.Note) fedi.Status {
	base := a.base()
	st := fedi.Status{ID: n.ID, URI: mk.Str(n.URI), URL: base.JoinPath("notes", n.ID).String(), CreatedAt: mk.Time(n.CreatedAt),
		Account: account(n.User), InReplyToID: mk.Str(n.ReplyID), SpoilerText: mk.Str(n.CW),
		Visibility: mastodonVisibility(n.Visibility, n.LocalOnly)}
	if st.URI == "" {
		st.URI = st.URL
	}
	if n.UpdatedAt != nil {
		t := mk.Time(*n.UpdatedAt)
		st.EditedAt = &t
	}
	if n.Reply != nil {
		st.InReplyToAccountID = n.Reply.UserID
	}
	text := mk.Str(n.Text)
	if rid := mk.Str(n.RenoteID); rid != "" {
		target := base.JoinPath("notes", rid).String()
		if n.Renote != nil && mk.Str(n.Renote.URI) != "" {
			target = mk.Str(n.Renote.URI)
		}
		if text == "" && len(n.Files) == 0 && n.Poll == nil {
			st.Reblog = &fedi.Status{ID: rid, URI: target}
			return st
		}
		text = strings.TrimSpace(text) + "\n\n" + target
	}
	r := srcmk.Render(text, base)
	st.Content, st.Text = r.HTML, text
	st.Sensitive = st.SpoilerText != ""
	for _, m := range r.Mentions {
		user, _, _ := strings.Cut(m, "@")
		st.Mentions = append(st.Mentions, fedi.Mention{Username: user, Acct: m, URL: srcmk.MentionURL(m, base)})
	}
	for _, t := range r.Tags {
		st.Tags = append(st.Tags, fedi.Tag{Name: t, URL: base.JoinPath("tags", t).String()})
	}
	for _, f := range n.Files {
		st.Sensitive = st.Sensitive || f.IsSensitive
		st.MediaAttachments = append(st.MediaAttachments, fedi.Attachment{ID: f.ID, Type: attachmentType(f.Type), URL: f.URL,
			Description: mk.Str(f.Comment), Blurhash: mk.Str(f.Blurhash)})
	}
	if p := n.Poll; p != nil {
		fp := &fedi.Poll{Multiple: p.Multiple}
		if e := mk.Str(p.ExpiresAt); e != "" {
			t := mk.Time(e)
			fp.ExpiresAt, fp.Expired = &t, t.Before(time.Now())
		}
		for _, c := range p.Choices {
			v := c.Votes
			fp.Options = append(fp.Options, struct {
				Title      string `json:"title"`
				VotesCount *int   `json:"votes_count"`
			}{c.Text, &v})
			fp.VotesCount += c.Votes
		}
		st.Poll = fp
	}
	return st
}

// Update brings an archive of the account up to date in ferry's archive
// layout (package sinks/archive through archiveAPI): notes, files, the
// profile and favourites.
func (s *Session) Update(ctx context.Context, o sinkarchive.UpdateOptions) (sinkarchive.UpdateResult, error) {
	o.API = s.archiveAPI()
	if o.Account == "" {
		o.Account = s.acct.Handle
	}
	return sinkarchive.Update(ctx, o)
}

func (s *Session) archiveAPI() archiveAPI { return archiveAPI{g: graphAPI{s.c}, fetch: s.fetch} }

var (
	_ sinkarchive.API   = archiveAPI{}
	_ platform.Archiver = (*Session)(nil)
)
