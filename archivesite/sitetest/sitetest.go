// Package sitetest checks, in a real headless Chromium, a site that
// archivesite built: every post of the archive on its month page, content
// warnings collapsed, alt text on every image, nothing loaded from
// elsewhere, and searches from the address narrowing the list to the
// matching posts. Screenshots are kept as test artefacts
// (browser.ArtifactDir).
package sitetest

import (
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/fedi-ferry/ferry/internal/browser"
	"github.com/fedi-ferry/ferry/post"
	srcarchive "github.com/fedi-ferry/ferry/sources/archive"
)

// Search is one search made through the address: index.html?<Query>
// must list exactly the posts for which Want is true.
type Search struct {
	Query string // encoded, e.g. url.Values{"q": {"cat"}}.Encode()
	Want  func(post.Post) bool
}

// Check loads the site in siteDir (built from the archive in archiveDir)
// in Chromium (bin, from browser.Require) and fails t where it does not
// show the archive.
func Check(t *testing.T, bin, archiveDir, siteDir string, searches ...Search) {
	t.Helper()
	var posts []post.Post
	if err := srcarchive.EachPost(t.Context(), archiveDir, func(p post.Post) error {
		posts = append(posts, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	index := browser.FileURL(t, filepath.Join(siteDir, "index.html"), "")
	doc := browser.DOM(t, bin, index)
	checkPage(t, "index.html", doc)
	var months []string
	for _, a := range browser.All(doc, func(n *html.Node) bool { return n.Data == "a" && inMonths(n) }) {
		href, _ := browser.Attr(a, "href")
		months = append(months, href)
	}
	if len(months) == 0 {
		t.Fatal("index.html lists no month")
	}

	// Every post once, on the month pages.
	articles := map[string]*html.Node{} // OriginID → article
	anchors := map[string]string{}      // article id → OriginID
	for _, m := range months {
		if strings.ContainsAny(m, "/:?#") {
			t.Errorf("month link %q is not a page of the site", m)
			continue
		}
		page := browser.DOM(t, bin, browser.FileURL(t, filepath.Join(siteDir, m), ""))
		checkPage(t, m, page)
		for _, a := range browser.All(page, func(n *html.Node) bool { return n.Data == "article" }) {
			origin, _ := browser.Attr(a, "data-origin")
			id, _ := browser.Attr(a, "id")
			if _, dup := articles[origin]; dup {
				t.Errorf("post %s is shown twice", origin)
			}
			articles[origin], anchors[id] = a, origin
		}
	}
	if len(articles) != len(posts) {
		t.Errorf("the month pages show %d posts, the archive has %d", len(articles), len(posts))
	}
	for _, p := range posts {
		a := articles[p.OriginID]
		if a == nil {
			t.Errorf("post %s (%q) is on no month page", p.OriginID, short(p.Text))
			continue
		}
		checkPost(t, p, a)
	}

	for _, s := range searches {
		address := browser.FileURL(t, filepath.Join(siteDir, "index.html"), s.Query)
		res := browser.DOM(t, bin, address)
		var got, want []string
		for _, li := range browser.All(res, func(n *html.Node) bool { _, ok := browser.Attr(n, "data-post"); return ok && n.Data == "li" }) {
			id, _ := browser.Attr(li, "data-post")
			got = append(got, anchors[id])
		}
		for _, p := range posts {
			if s.Want(p) {
				want = append(want, p.OriginID)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if len(want) == 0 || len(want) == len(posts) {
			t.Errorf("search %q: the test wants %d of %d posts; pick a query that narrows", s.Query, len(want), len(posts))
		}
		if !slices.Equal(got, want) {
			t.Errorf("search %q lists %d posts %v, want %d %v", s.Query, len(got), got, len(want), want)
		}
		if tl := byID(res, "timeline"); tl == nil || !hasAttr(tl, "hidden") {
			t.Errorf("search %q: the timeline is still shown beside the results", s.Query)
		}
	}

	browser.Screenshot(t, bin, index, "index-light-1200.png", 1200, 1600, false)
	browser.Screenshot(t, bin, index, "index-phone-390.png", 390, 844, false)
	browser.Screenshot(t, bin, browser.FileURL(t, filepath.Join(siteDir, months[0]), ""), "month-dark-1200.png", 1200, 1600, true)
	browser.Screenshot(t, bin, browser.FileURL(t, filepath.Join(siteDir, months[len(months)-1]), ""), "oldest-month-phone-390.png", 390, 844, false)
	if len(searches) > 0 {
		browser.Screenshot(t, bin, browser.FileURL(t, filepath.Join(siteDir, "index.html"), searches[0].Query), "search-phone-390.png", 390, 844, false)
	}
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func inMonths(n *html.Node) bool {
	for p := n.Parent; p != nil; p = p.Parent {
		if p.Data == "details" && browser.HasClass(p, "months") {
			return true
		}
	}
	return false
}

func byID(doc *html.Node, id string) *html.Node {
	for _, n := range browser.All(doc, func(n *html.Node) bool { v, _ := browser.Attr(n, "id"); return v == id }) {
		return n
	}
	return nil
}

func hasAttr(n *html.Node, key string) bool {
	_, ok := browser.Attr(n, key)
	return ok
}

// checkPage: landmarks and a language, and no resource from elsewhere.
func checkPage(t *testing.T, name string, doc *html.Node) {
	t.Helper()
	for _, tag := range []string{"header", "nav", "main"} {
		if len(browser.All(doc, func(n *html.Node) bool { return n.Data == tag })) == 0 {
			t.Errorf("%s has no <%s>", name, tag)
		}
	}
	if h := browser.All(doc, func(n *html.Node) bool { return n.Data == "html" }); len(h) == 0 || !hasAttr(h[0], "lang") {
		t.Errorf("%s: <html> has no lang", name)
	}
	for _, n := range browser.All(doc, func(n *html.Node) bool { return hasAttr(n, "src") || n.Data == "link" }) {
		v, ok := browser.Attr(n, "src")
		if !ok {
			v, _ = browser.Attr(n, "href")
		}
		if u, err := url.Parse(v); err != nil || u.Scheme != "" || u.Host != "" || strings.HasPrefix(v, "/") || strings.Contains(v, "..") {
			t.Errorf("%s: <%s> loads %q, which is not inside the site", name, n.Data, v)
		}
	}
	for _, img := range browser.All(doc, func(n *html.Node) bool { return n.Data == "img" }) {
		if alt, ok := browser.Attr(img, "alt"); !ok || (alt == "" && !browser.HasClass(img, "banner")) {
			t.Errorf("%s: an image without alt text: %v", name, img.Attr)
		}
	}
}

// checkPost compares one article with the post it shows.
func checkPost(t *testing.T, p post.Post, a *html.Node) {
	t.Helper()
	find := func(match func(*html.Node) bool) []*html.Node { return browser.All(a, match) }
	if p.IsBoost() {
		if !browser.HasClass(a, "boost") || !strings.Contains(browser.Text(a), p.BoostOf) {
			t.Errorf("boost %s is not shown as a boost of %s", p.OriginID, p.BoostOf)
		}
		return
	}
	if p.Deleted && (!browser.HasClass(a, "deleted") || !strings.Contains(browser.Text(a), "Deleted")) {
		t.Errorf("deleted post %s is not marked", p.OriginID)
	}
	if strings.TrimSpace(p.Summary) != "" {
		cw := find(func(n *html.Node) bool { return n.Data == "details" && browser.HasClass(n, "cw") })
		switch {
		case len(cw) != 1:
			t.Errorf("post %s with the content warning %q has %d collapsible warnings", p.OriginID, p.Summary, len(cw))
		case hasAttr(cw[0], "open"):
			t.Errorf("post %s: the content warning is open", p.OriginID)
		case !strings.Contains(summaryText(cw[0]), p.Summary):
			t.Errorf("post %s: the warning does not say %q", p.OriginID, p.Summary)
		}
	}
	for _, m := range p.Media {
		if m.Path == "" || m.Description == "" {
			continue
		}
		var ok bool
		for _, n := range find(func(n *html.Node) bool { return n.Data == "img" || n.Data == "video" || n.Data == "audio" }) {
			alt, _ := browser.Attr(n, "alt")
			label, _ := browser.Attr(n, "aria-label")
			ok = ok || alt == m.Description || label == m.Description
		}
		visible := false
		for _, d := range find(func(n *html.Node) bool { return n.Data == "details" && browser.HasClass(n, "alt") }) {
			visible = visible || strings.Contains(browser.Text(d), m.Description)
		}
		if !ok || !visible {
			t.Errorf("post %s: alt text %q missing (attribute %v, shown on demand %v)", p.OriginID, m.Description, ok, visible)
		}
	}
	if p.Poll != nil {
		polls := find(func(n *html.Node) bool { return browser.HasClass(n, "poll") })
		if len(polls) != 1 || len(browser.All(polls[0], func(n *html.Node) bool { return n.Data == "meter" })) != len(p.Poll.Options) {
			t.Errorf("post %s: the poll's results are not shown", p.OriginID)
		}
	}
}

func summaryText(d *html.Node) string {
	for _, s := range browser.All(d, func(n *html.Node) bool { return n.Data == "summary" }) {
		return browser.Text(s)
	}
	return ""
}
