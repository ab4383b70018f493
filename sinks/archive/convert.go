package archive

import (
	"net/url"
	"path"
	"strings"

	"github.com/fedi-ferry/ferry/fedi"
)

// addressing returns the to and cc lists Mastodon derives from a
// visibility (standard Mastodon addressing; protocols.md §1b).
func addressing(visibility, followers string, mentions []string) (to, cc []string) {
	switch visibility {
	case "public":
		return []string{Public}, append([]string{followers}, mentions...)
	case "unlisted":
		return []string{followers}, append([]string{Public}, mentions...)
	case "private":
		return []string{followers}, mentions
	default: // direct, and anything unknown: the narrowest reading
		return mentions, []string{}
	}
}

// toRecord turns a status of the archived account into a stored record and
// the media files it needs.
func toRecord(st fedi.Status, actor string) (Record, []MediaJob) {
	followers := actor + "/followers"
	var mentions []string
	for _, m := range st.Mentions {
		if m.URL != "" {
			mentions = append(mentions, m.URL)
		}
	}
	to, cc := addressing(st.Visibility, followers, mentions)
	if to == nil {
		to = []string{}
	}
	if cc == nil {
		cc = []string{}
	}
	r := Record{ID: st.ID, URI: st.URI, ParentID: st.InReplyToID}
	if st.EditedAt != nil {
		r.Edited = *st.EditedAt
	}
	if st.Reblog != nil {
		r.ParentID = ""
		r.Activity = Activity{
			ID: st.URI + "/activity", Type: "Announce", Actor: actor, Published: st.CreatedAt.UTC(),
			To: to, Cc: cc, Object: st.Reblog.URI,
		}
		return r, nil
	}
	n := &Note{
		ID: st.URI, Type: "Note", Published: st.CreatedAt.UTC(), URL: st.URL, AttributedTo: actor,
		To: to, Cc: cc, Sensitive: st.Sensitive, AtomURI: st.URI, Content: st.Content,
		Attachment: []Document{}, Tag: []Tag{},
	}
	if st.SpoilerText != "" {
		s := st.SpoilerText
		n.Summary = &s
	}
	if st.Language != "" {
		n.ContentMap = map[string]string{st.Language: st.Content}
	}
	if st.EditedAt != nil {
		t := st.EditedAt.UTC()
		n.Updated = &t
	}
	var jobs []MediaJob
	for _, a := range st.MediaAttachments {
		rel := mediaPath(a)
		d := Document{Type: "Document", MediaType: mediaType(a, rel), URL: rel, Blurhash: a.Blurhash, RemoteURL: a.URL}
		if a.Description != "" {
			alt := a.Description
			d.Name = &alt
		}
		if f := a.Meta.Focus; f != nil {
			d.FocalPoint = []float64{f.X, f.Y}
		}
		if o := a.Meta.Original; o != nil {
			d.Width, d.Height = o.Width, o.Height
		}
		n.Attachment = append(n.Attachment, d)
		if a.URL != "" {
			jobs = append(jobs, MediaJob{Path: rel, URL: a.URL})
		}
	}
	for _, m := range st.Mentions {
		n.Tag = append(n.Tag, Tag{Type: "Mention", Href: m.URL, Name: "@" + m.Acct})
	}
	for _, t := range st.Tags {
		n.Tag = append(n.Tag, Tag{Type: "Hashtag", Href: t.URL, Name: "#" + t.Name})
	}
	if p := st.Poll; p != nil {
		n.Type = "Question"
		opts := make([]PollOption, 0, len(p.Options))
		for _, o := range p.Options {
			po := PollOption{Type: "Note", Name: o.Title}
			po.Replies.Type = "Collection"
			if o.VotesCount != nil {
				po.Replies.TotalItems = *o.VotesCount
			}
			opts = append(opts, po)
		}
		if p.Multiple {
			n.AnyOf = opts
		} else {
			n.OneOf = opts
		}
		if p.ExpiresAt != nil {
			t := p.ExpiresAt.UTC()
			n.EndTime = &t
			if p.Expired {
				n.Closed = &t
			}
		}
		v := p.VotesCount
		n.VotersCount = &v
	}
	r.Activity = Activity{
		ID: st.URI + "/activity", Type: "Create", Actor: actor, Published: st.CreatedAt.UTC(),
		To: to, Cc: cc, Object: n,
	}
	return r, jobs
}

// mediaPath is where an attachment is stored in the archive: like
// Mastodon, the file's URL path after "/system/" when it has one (always
// media_attachments/…), else media_attachments/files/<id>/original/<name>
// (GoToSocial serves media from /fileserver/…). The result never leaves the
// media_attachments directory.
func mediaPath(a fedi.Attachment) string {
	p := ""
	if u, err := url.Parse(a.URL); err == nil {
		p = u.Path
	}
	if i := strings.Index(p, "/media_attachments/"); i >= 0 {
		rel := path.Clean(p[i+1:])
		if strings.HasPrefix(rel, "media_attachments/") && !strings.Contains(rel, "..") && safePath(rel) {
			return rel
		}
	}
	name := safeName(path.Base(p))
	if name == "" || name == "." {
		name = "file"
	}
	return "media_attachments/files/" + safeName(a.ID) + "/original/" + name
}

func safePath(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg != safeName(seg) {
			return false
		}
	}
	return true
}

// safeName keeps letters, digits, '.', '-' and '_' and replaces the rest.
func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := b.String()
	if strings.Trim(out, ".") == "" {
		return "_"
	}
	return out
}

// mediaType guesses an attachment's MIME type from its kind and extension.
func mediaType(a fedi.Attachment, rel string) string {
	switch strings.ToLower(path.Ext(rel)) {
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".png":
		return "image/png"
	case ".gif":
		return "image/gif"
	case ".webp":
		return "image/webp"
	case ".mp4":
		return "video/mp4"
	case ".webm":
		return "video/webm"
	case ".mp3":
		return "audio/mpeg"
	case ".ogg":
		return "audio/ogg"
	}
	switch a.Type {
	case "image":
		return "image/jpeg"
	case "video", "gifv":
		return "video/mp4"
	case "audio":
		return "audio/mpeg"
	}
	return ""
}
