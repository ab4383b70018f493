package misskey

import (
	"net/url"
	"strings"

	mk "github.com/fedi-ferry/ferry/misskey"
	"github.com/fedi-ferry/ferry/post"
)

// Visibility is ferry's visibility of a note: public → public, home →
// unlisted, followers → followers-only, specified → direct. A local-only
// note is kept off other servers by its author, so it is at most
// followers-only elsewhere.
func Visibility(v string, localOnly bool) post.Visibility {
	var out post.Visibility
	switch v {
	case "public":
		out = post.Public
	case "home":
		out = post.Unlisted
	case "followers":
		out = post.Private
	default:
		out = post.Direct
	}
	if localOnly && out.Rank() < post.Private.Rank() {
		out = post.Private
	}
	return out
}

// uri is a note's ActivityPub ID: its uri when it came from elsewhere,
// else https://host/notes/<id>, as Misskey renders its own notes.
func uri(n *mk.Note, base *url.URL) string {
	if u := mk.Str(n.URI); u != "" {
		return u
	}
	return noteURL(base, n.ID)
}

// convert turns a note of the account into a post; ok is false for a note
// left out (a quote under QuoteSkip).
func (s *Source) convert(n mk.Note, me mk.User) (post.Post, bool) {
	base := s.c.Base()
	p := post.Post{
		OriginID: n.ID, URI: uri(&n, base), URL: noteURL(base, n.ID), CreatedAt: mk.Time(n.CreatedAt),
		Author:     post.Author{Acct: me.Username + "@" + base.Host, DisplayName: me.Name, URI: base.JoinPath("users", me.ID).String()},
		Summary:    mk.Str(n.CW),
		Visibility: Visibility(n.Visibility, n.LocalOnly),
	}
	if n.UpdatedAt != nil {
		p.EditedAt = mk.Time(*n.UpdatedAt)
	}
	text := mk.Str(n.Text)
	isRenote := mk.Str(n.RenoteID) != ""
	if isRenote && text == "" && len(n.Files) == 0 && n.Poll == nil {
		// A pure renote: a boost.
		target := noteURL(base, mk.Str(n.RenoteID))
		if n.Renote != nil {
			target = uri(n.Renote, base)
		}
		p.BoostOf = target
		return p, true
	}
	if isRenote {
		if s.quotes == QuoteSkip {
			return post.Post{}, false
		}
		quoted := noteURL(base, mk.Str(n.RenoteID))
		if n.Renote != nil {
			quoted = mk.Str(n.Renote.URL)
			if quoted == "" {
				quoted = uri(n.Renote, base)
			}
		}
		text = strings.TrimSpace(text) + "\n\n" + quoted
	}
	r := Render(text, base)
	p.Text, p.HTML, p.Tags = r.Text, r.HTML, r.Tags
	if len(n.Tags) > 0 {
		p.Tags = n.Tags
	}
	for _, m := range r.Mentions {
		acct := m
		if !strings.Contains(m, "@") {
			acct = m + "@" + base.Host
		}
		p.Mentions = append(p.Mentions, post.Mention{Acct: acct, URL: MentionURL(m, base)})
	}
	p.Sensitive = p.Summary != ""
	for _, f := range n.Files {
		p.Sensitive = p.Sensitive || f.IsSensitive
		p.Media = append(p.Media, post.Media{URL: f.URL, MIMEType: f.Type, Description: mk.Str(f.Comment), Blurhash: mk.Str(f.Blurhash)})
	}
	if rid := mk.Str(n.ReplyID); rid != "" {
		if n.Reply != nil && n.Reply.UserID == me.ID {
			p.InReplyTo = rid
		} else if n.Reply != nil {
			p.ReplyToURI = uri(n.Reply, base)
		} else {
			// The parent is not visible to the account (deleted, or a
			// note it cannot see): not a thread of its own.
			p.ReplyToURI = noteURL(base, rid)
		}
	}
	if n.Poll != nil {
		pl := &post.Poll{Multiple: n.Poll.Multiple}
		for _, c := range n.Poll.Choices {
			pl.Options = append(pl.Options, c.Text)
			pl.Votes = append(pl.Votes, c.Votes)
		}
		if e := mk.Str(n.Poll.ExpiresAt); e != "" {
			pl.ExpiresAt = mk.Time(e)
		}
		p.Poll = pl
	}
	return p, true
}
