package fedi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Status is the Mastodon API Status entity, as far as ferry reads it. It is
// shared by every package that reads or writes posts through the API (the
// archive, the bridge's account source, the account sink); each converts it
// to its own model next to where it is used.
type Status struct {
	ID                 string       `json:"id"`
	URI                string       `json:"uri"`
	URL                string       `json:"url"`
	CreatedAt          time.Time    `json:"created_at"`
	EditedAt           *time.Time   `json:"edited_at"`
	Account            Account      `json:"account"`
	InReplyToID        string       `json:"in_reply_to_id"`
	InReplyToAccountID string       `json:"in_reply_to_account_id"`
	Reblog             *Status      `json:"reblog"`
	Content            string       `json:"content"` // HTML
	Text               string       `json:"text"`    // the source text, where the server returns it
	SpoilerText        string       `json:"spoiler_text"`
	Sensitive          bool         `json:"sensitive"`
	Visibility         string       `json:"visibility"`
	Language           string       `json:"language"`
	MediaAttachments   []Attachment `json:"media_attachments"`
	Mentions           []Mention    `json:"mentions"`
	Tags               []Tag        `json:"tags"`
	Poll               *Poll        `json:"poll"`
	Favourited         bool         `json:"favourited"`
	Bookmarked         bool         `json:"bookmarked"`
}

// Attachment is a media attachment of a Status.
type Attachment struct {
	ID          string `json:"id"`
	Type        string `json:"type"` // image, gifv, video, audio, unknown
	URL         string `json:"url"`
	RemoteURL   string `json:"remote_url"`
	PreviewURL  string `json:"preview_url"`
	Description string `json:"description"`
	Blurhash    string `json:"blurhash"`
	Meta        struct {
		Focus *struct {
			X float64 `json:"x"`
			Y float64 `json:"y"`
		} `json:"focus"`
		Original *struct {
			Width  int `json:"width"`
			Height int `json:"height"`
		} `json:"original"`
	} `json:"meta"`
}

// Mention is an account mentioned in a Status.
type Mention struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Acct     string `json:"acct"`
	URL      string `json:"url"`
}

// Tag is a hashtag used in a Status.
type Tag struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// Poll is a poll attached to a Status.
type Poll struct {
	ID         string     `json:"id"`
	ExpiresAt  *time.Time `json:"expires_at"`
	Expired    bool       `json:"expired"`
	Multiple   bool       `json:"multiple"`
	VotesCount int        `json:"votes_count"`
	Options    []struct {
		Title      string `json:"title"`
		VotesCount *int   `json:"votes_count"`
	} `json:"options"`
}

// StatusPage reads one page of statuses from path (an API path such as
// /api/v1/accounts/ID/statuses, or a "next" link from a previous page) with
// query, and returns the statuses and the next page's link ("" at the end).
func StatusPage(ctx context.Context, c *Client, path string, query url.Values) ([]Status, string, error) {
	var out []Status
	resp, err := c.Do(ctx, http.MethodGet, path, query, nil, &out)
	if err != nil {
		return nil, "", fmt.Errorf("read statuses: %w", err)
	}
	return out, NextLink(resp.Header), nil
}

// EachStatusPage reads a statuses list newest first (an account's statuses,
// a timeline) and hands each page to fn until fn returns false or a page
// comes back empty. It follows the Link header's next page; a server that
// sends no Link header but honours max_id (snac2) is paged on with max_id
// set to the last status of the page; there only an empty page ends the
// walk (such a server may answer fewer than limit before the end). With a
// Link header, a page shorter than the query's limit is the last, as on
// Mastodon and GoToSocial. Lists whose cursors are not status IDs
// (bookmarks, favourites) must use EachPage instead.
func EachStatusPage(ctx context.Context, c *Client, path string, query url.Values, fn func([]Status) (bool, error)) error {
	p, q := path, query
	asked := map[string]bool{}
	for {
		sts, next, err := StatusPage(ctx, c, p, q)
		if err != nil {
			return err
		}
		if len(sts) == 0 {
			return nil
		}
		more, err := fn(sts)
		if err != nil || !more {
			return err
		}
		if next != "" {
			if n, err := strconv.Atoi(query.Get("limit")); err == nil && len(sts) < n {
				return nil
			}
			u, err := url.Parse(next)
			if err != nil {
				return fmt.Errorf("read statuses: bad Link header: %w", err)
			}
			p, q = u.RequestURI(), nil
			continue
		}
		last := sts[len(sts)-1].ID
		if last == "" || asked[last] {
			return nil // a server that ignores max_id would repeat its page forever
		}
		asked[last] = true
		q = url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Del("min_id")
		q.Set("max_id", last)
		p = path
	}
}
