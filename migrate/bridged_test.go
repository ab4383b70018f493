package migrate

import (
	"strings"
	"testing"
)

// A Bluesky export reads back with handles and DIDs; a fediverse file is
// read as before; broken Bluesky rows are reported with their line.
func TestParseBlueskyExport(t *testing.T) {
	in := "Account address,DID\n" +
		"alice.bsky.social,did:plc:abc123\n" +
		",did:plc:nohandle\n" +
		"bob.test,\n" +
		"carol@example.social,\n" +
		"dave.test,not-a-did\n" +
		",\n" +
		"with space.test,did:plc:x\n"
	p, err := ParseFile(strings.NewReader(in), "following_accounts.csv", "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != Following {
		t.Fatalf("type %s", p.Type)
	}
	want := []Row{
		{Account: "alice.bsky.social", DID: "did:plc:abc123"},
		{Account: "did:plc:nohandle", DID: "did:plc:nohandle"},
		{Account: "bob.test"},
		{Account: "carol@example.social"},
	}
	if len(p.Rows) != len(want) {
		t.Fatalf("rows %+v", p.Rows)
	}
	for i, w := range want {
		if p.Rows[i].Account != w.Account || p.Rows[i].DID != w.DID {
			t.Errorf("row %d = %+v, want %+v", i, p.Rows[i], w)
		}
	}
	lines := map[int]string{6: "not a DID", 7: "empty", 8: "not a Bluesky handle"}
	if len(p.Errors) != len(lines) {
		t.Fatalf("errors %v", p.Errors)
	}
	for _, e := range p.Errors {
		if !strings.Contains(e.Reason, lines[e.Pos.Line]) {
			t.Errorf("line %d: %s", e.Pos.Line, e.Reason)
		}
	}

	lists, err := ParseFile(strings.NewReader("List name,Account address,DID\n\"close, friends\",alice.bsky.social,did:plc:abc123\n"), "lists.csv", "")
	if err != nil || len(lists.Rows) != 1 || lists.Rows[0].List != "close, friends" || lists.Rows[0].DID != "did:plc:abc123" {
		t.Fatalf("lists: %+v %v", lists, err)
	}

	// A fediverse file without a DID column: a bare name is still an error.
	fedi, _ := ParseFile(strings.NewReader("alice.bsky.social\n"), "following_accounts.csv", "")
	if len(fedi.Rows) != 0 || len(fedi.Errors) != 1 || !strings.Contains(fedi.Errors[0].Reason, "has no server") {
		t.Errorf("fediverse file: %+v", fedi)
	}
}

// Bluesky rows imported into a fediverse account go to their Bridgy Fed
// addresses; a row Bridgy Fed has no name for is reported; the failure
// of one that did not resolve says it is not bridged.
func TestBridgeRows(t *testing.T) {
	p, _ := ParseFile(strings.NewReader("Account address,DID\nalice.bsky.social,did:plc:a\nhandle.invalid,did:plc:b\ncarol@example.social,\n"), "following_accounts.csv", "")
	out, n := bridgeRows([]Parsed{p})
	if n != 1 || len(out[0].Rows) != 2 || out[0].Rows[0].Account != "alice.bsky.social@bsky.brid.gy" || out[0].Rows[1].Account != "carol@example.social" {
		t.Fatalf("mapped %d: %+v", n, out[0].Rows)
	}
	if len(out[0].Errors) != 1 || out[0].Errors[0].Pos.Line != 3 || !strings.Contains(out[0].Errors[0].Reason, "Bridgy Fed") {
		t.Errorf("errors: %+v", out[0].Errors)
	}
	if p.Rows[0].Account != "alice.bsky.social" {
		t.Error("bridgeRows changed its input")
	}
	rep := &Report{Failures: []Failure{
		{Entry: "alice.bsky.social@bsky.brid.gy", Reason: "webfinger: no such host"},
		{Entry: "friends: bob.test@bsky.brid.gy", Reason: "timeout"},
		{Entry: "carol@example.social", Reason: "gone"},
	}}
	explainBridged(rep, 2)
	if !strings.HasPrefix(rep.Failures[0].Reason, "not bridged: the Bluesky account alice.bsky.social would be @alice.bsky.social@bsky.brid.gy") ||
		!strings.HasSuffix(rep.Failures[0].Reason, "webfinger: no such host") ||
		!strings.Contains(rep.Failures[1].Reason, "bob.test") || rep.Failures[2].Reason != "gone" || len(rep.Notes) != 1 {
		t.Errorf("%+v", rep)
	}
}
