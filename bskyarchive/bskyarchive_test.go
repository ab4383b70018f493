package bskyarchive

import "testing"

func TestPostLink(t *testing.T) {
	for in, want := range map[string]string{
		"at://did:plc:abc/app.bsky.feed.post/3kabc": "https://bsky.app/profile/did:plc:abc/post/3kabc",
		"at://did:plc:abc/app.bsky.feed.like/3kabc": "at://did:plc:abc/app.bsky.feed.like/3kabc",
		"not a uri": "not a uri",
		"at://alice.test/app.bsky.feed.post/3k2a4b5c": "https://bsky.app/profile/alice.test/post/3k2a4b5c",
	} {
		if got := postLink(in); got != want {
			t.Errorf("postLink(%q) = %q, want %q", in, got, want)
		}
	}
}

// A blob's CID names a file; nothing else a PDS might answer does.
func TestCIDName(t *testing.T) {
	for s, ok := range map[string]bool{
		"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku": true,
		"../../etc/passwd": false,
		"bafkrei/../x":     false,
		"":                 false,
		"BAFKREIHDWDCEFGH4DQKJV67UZCMW7OJEE6XEDZDETOJUZJEVTENXQUVYKU": false,
	} {
		if cidName.MatchString(s) != ok {
			t.Errorf("cidName(%q) = %v", s, !ok)
		}
	}
}
