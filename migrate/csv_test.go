package migrate

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// Fixtures written from Mastodon's documented formats (protocols.md §1a):
// exact headers, header-less variants, BOM, CRLF, quoted fields.
func TestParseFileMastodonFormats(t *testing.T) {
	tests := []struct {
		name, file, content string
		typ                 Type // given; "" = detect
		wantType            Type
		wantRows            int
		wantErrs            int
		check               func(t *testing.T, p Parsed)
	}{
		{
			name: "following with header", file: "following_accounts.csv",
			content:  "Account address,Show boosts,Notify on new posts,Languages\nalice@example.social,true,false,\nbob@Other.EXAMPLE,false,true,\"en, de\"\n",
			wantType: Following, wantRows: 2,
			check: func(t *testing.T, p Parsed) {
				b := p.Rows[1]
				if b.Account != "bob@other.example" || *b.ShowBoosts || !*b.Notify || strings.Join(b.Languages, "|") != "en|de" {
					t.Errorf("row = %+v", b)
				}
				if p.Rows[0].Languages != nil || p.Rows[0].Pos.Line != 2 {
					t.Errorf("row 0 = %+v", p.Rows[0])
				}
			},
		},
		{
			name: "following detected by header under another name, BOM and CRLF", file: "export (1).csv",
			content:  "\uFEFFAccount address,Show boosts,Notify on new posts,Languages\r\n@alice@example.social,TRUE,f,\r\n\r\n",
			wantType: Following, wantRows: 1,
			check: func(t *testing.T, p Parsed) {
				if r := p.Rows[0]; r.Account != "alice@example.social" || !*r.ShowBoosts || *r.Notify {
					t.Errorf("row = %+v", r)
				}
			},
		},
		{
			name: "header-less following (Mastodon re-reads as one column)", file: "following_accounts.csv",
			content: "alice@example.social,true,false,\nbob@example.social\n", wantType: Following, wantRows: 2,
		},
		{
			name: "header with reordered columns", file: "x.csv",
			content:  "Account address,Languages,Show boosts\nalice@example.social,fr,false\n",
			wantType: Following, wantRows: 1,
			check: func(t *testing.T, p Parsed) {
				if r := p.Rows[0]; *r.ShowBoosts || r.Languages[0] != "fr" || r.Notify != nil {
					t.Errorf("row = %+v", r)
				}
			},
		},
		{
			name: "mutes", file: "muted_accounts.csv",
			content: "Account address,Hide notifications\nalice@example.social,false\nbob@example.social,true\n", wantType: Mutes, wantRows: 2,
			check: func(t *testing.T, p Parsed) {
				if *p.Rows[0].HideNotifications || !*p.Rows[1].HideNotifications {
					t.Errorf("rows = %+v", p.Rows)
				}
			},
		},
		{name: "blocks (no header)", file: "blocked_accounts.csv", content: "alice@example.social\nbob@example.social\n", wantType: Blocks, wantRows: 2},
		{name: "GoToSocial blocks name", file: "blocks.csv", content: "alice@example.social\n", wantType: Blocks, wantRows: 1},
		{name: "domain blocks", file: "blocked_domains.csv", content: "Spam.example\nbad.example\n", wantType: DomainBlocks, wantRows: 2,
			check: func(t *testing.T, p Parsed) {
				if p.Rows[0].Domain != "spam.example" {
					t.Errorf("domain %q", p.Rows[0].Domain)
				}
			}},
		{name: "domain blocks with #domain header", file: "x.csv", content: "#domain\nspam.example\n", wantType: DomainBlocks, wantRows: 1},
		{name: "bookmarks", file: "bookmarks.csv", content: "https://example.social/users/a/statuses/1\n", wantType: Bookmarks, wantRows: 1},
		{name: "bookmarks by content", file: "x.csv", content: "https://example.social/users/a/statuses/1\n", wantType: Bookmarks, wantRows: 1},
		{
			name: "lists with quoted title", file: "lists.csv",
			content:  "\"Friends, close\",alice@example.social\nWork,bob@example.social\n",
			wantType: Lists, wantRows: 2,
			check: func(t *testing.T, p Parsed) {
				if p.Rows[0].List != "Friends, close" || p.Rows[0].Account != "alice@example.social" {
					t.Errorf("row = %+v", p.Rows[0])
				}
			},
		},
		{name: "lists with header", file: "x.csv", content: "List name,Account address\nWork,bob@example.social\n", wantType: Lists, wantRows: 1},
		{name: "lists by content", file: "x.csv", content: "Work,bob@example.social\n", wantType: Lists, wantRows: 1},
		{
			name: "plain handle list with comments and spaces", file: "friends.txt",
			content:  "# my friends\n  @alice@example.social  \n\nbob@example.social\nhttps://example.social/@carol\n",
			wantType: Following, wantRows: 3,
			check: func(t *testing.T, p Parsed) {
				if p.Rows[2].Account != "carol@example.social" {
					t.Errorf("profile URL → %q", p.Rows[2].Account)
				}
			},
		},
		{
			name: "Misskey/Akkoma: first field is the handle", file: "follows.csv",
			content: "@alice@example.social,whatever,else\n", wantType: Following, wantRows: 1,
		},
		{
			name: "bad rows are reported with their line and skipped", file: "following_accounts.csv",
			content:  "Account address,Show boosts,Notify on new posts,Languages\nalice\n\"unterminated@x.y,true\nbob@example.social,true,false,\nnot an address@@\n",
			wantType: Following, wantRows: 1, wantErrs: 3,
			check: func(t *testing.T, p Parsed) {
				if p.Errors[0].Pos.String() != "following_accounts.csv:2" || !strings.Contains(p.Errors[0].Reason, "no server") {
					t.Errorf("first error = %v", p.Errors[0])
				}
				if p.Rows[0].Pos.Line != 4 {
					t.Errorf("row line %d", p.Rows[0].Pos.Line)
				}
			},
		},
		{name: "--type overrides", file: "following_accounts.csv", typ: Blocks, content: "alice@example.social\n", wantType: Blocks, wantRows: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseFile(strings.NewReader(tt.content), tt.file, tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			if p.Type != tt.wantType || len(p.Rows) != tt.wantRows || len(p.Errors) != tt.wantErrs {
				t.Fatalf("type %s (%s), %d rows, %d errors %v; want %s, %d, %d", p.Type, p.Guess, len(p.Rows), len(p.Errors), p.Errors,
					tt.wantType, tt.wantRows, tt.wantErrs)
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func TestParseFileUndetectable(t *testing.T) {
	if _, err := ParseFile(strings.NewReader("hello world\n"), "notes.txt", ""); err == nil {
		t.Fatal("want an error asking for --type")
	}
}

func TestParseFileLongLine(t *testing.T) {
	in := "alice@example.social\n" + strings.Repeat("x", maxLine+10) + "\nbob@example.social\n"
	p, err := ParseFile(strings.NewReader(in), "blocks.csv", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rows) != 2 || len(p.Errors) != 1 || p.Errors[0].Pos.Line != 2 {
		t.Fatalf("rows %v errors %v", p.Rows, p.Errors)
	}
}

// Writing is byte-compatible with Mastodon's exports, and what ferry writes
// it reads back unchanged.
func TestWriterMastodonBytes(t *testing.T) {
	tr, f := true, false
	tests := []struct {
		typ  Type
		rows []Row
		want string
	}{
		{Following, []Row{{Account: "a@x.example", ShowBoosts: &tr, Notify: &f}, {Account: "b@y.example", ShowBoosts: &f, Notify: &tr, Languages: []string{"en", "de"}}},
			"Account address,Show boosts,Notify on new posts,Languages\na@x.example,true,false,\nb@y.example,false,true,\"en, de\"\n"},
		{Mutes, []Row{{Account: "a@x.example", HideNotifications: &f}}, "Account address,Hide notifications\na@x.example,false\n"},
		{Blocks, []Row{{Account: "a@x.example"}}, "a@x.example\n"},
		{DomainBlocks, []Row{{Domain: "spam.example"}}, "spam.example\n"},
		{Bookmarks, []Row{{URI: "https://x.example/s/1"}}, "https://x.example/s/1\n"},
		{Lists, []Row{{List: `Say "hi", all`, Account: "a@x.example"}}, "\"Say \"\"hi\"\", all\",a@x.example\n"},
		{Followers, []Row{{Account: "a@x.example"}}, "Account address\na@x.example\n"},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			var b bytes.Buffer
			w := NewWriter(&b, tt.typ)
			for _, r := range tt.rows {
				w.Write(r)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Fatalf("got\n%q\nwant\n%q", b.String(), tt.want)
			}
			p, err := ParseFile(bytes.NewReader(b.Bytes()), tt.typ.FileName(), "")
			if err != nil || p.Type != tt.typ || len(p.Rows) != len(tt.rows) || len(p.Errors) > 0 {
				t.Fatalf("read back: %v type %s rows %d errors %v", err, p.Type, len(p.Rows), p.Errors)
			}
		})
	}
}

func TestFailureWriter(t *testing.T) {
	var b bytes.Buffer
	fw := NewFailureWriter(&b, Following)
	fw.Write(Row{Account: "ghost@x.example", Pos: Pos{File: "f.csv:3"}}, "account not found")
	fw.WriteRaw(&RowError{Pos: Pos{File: "f.csv", Line: 4}, Raw: "junk,row", Reason: "no server"})
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "Account address,Show boosts,Notify on new posts,Languages,Source,Reason\n" +
		"ghost@x.example,true,false,,f.csv:3,account not found\n\"junk,row\",,,,f.csv:4,no server\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestSplitCSVLine(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"a,b,c", []string{"a", "b", "c"}, false},
		{`"a,b",c`, []string{"a,b", "c"}, false},
		{`a, "b ""q""" ,c`, []string{"a", `b "q"`, "c"}, false},
		{`a,`, []string{"a", ""}, false},
		{`"open`, nil, true},
		{`"a"b`, nil, true},
		{`a"b,c`, []string{`a"b`, "c"}, false},
	}
	for _, tt := range tests {
		got, err := splitCSVLine(tt.in)
		if (err != nil) != tt.err || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("splitCSVLine(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func TestParseType(t *testing.T) {
	for in, want := range map[string]Type{"follows": Following, "blocking": Blocks, "domain-blocks": DomainBlocks, "Muting": Mutes} {
		if got, err := ParseType(in); err != nil || got != want {
			t.Errorf("ParseType(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseType("posts"); err == nil {
		t.Error("ParseType(posts) succeeded")
	}
}

// FuzzParseFile checks that no input makes the reader panic, and that every
// row it returns is well-formed.
func FuzzParseFile(f *testing.F) {
	f.Add("Account address,Show boosts,Notify on new posts,Languages\nalice@example.social,true,false,\"en, de\"\n", "following_accounts.csv")
	f.Add("\uFEFF\"Friends\",a@b.c\r\n", "lists.csv")
	f.Add("\"\n\",\"", "x.csv")
	f.Add("https://h/@u@v\n@@\n", "follows.txt")
	f.Fuzz(func(t *testing.T, content, name string) {
		for _, typ := range []Type{"", Following, Lists, Bookmarks, DomainBlocks} {
			p, err := ParseFile(strings.NewReader(content), name, typ)
			if err != nil {
				continue
			}
			for _, r := range p.Rows {
				switch r.Type {
				case Following, Blocks, Mutes, Followers, Lists:
					if strings.Count(r.Account, "@") != 1 {
						t.Fatalf("bad account %q", r.Account)
					}
				}
			}
		}
	})
}

func BenchmarkParseFollowing(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("Account address,Show boosts,Notify on new posts,Languages\n")
	for i := range 10000 {
		fmt.Fprintf(&sb, "user%d@server%d.example,true,false,\"en, de\"\n", i, i%50)
	}
	data := sb.String()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseFile(strings.NewReader(data), "following_accounts.csv", ""); err != nil {
			b.Fatal(err)
		}
	}
}
