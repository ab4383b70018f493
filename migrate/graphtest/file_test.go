package graphtest

import "testing"

// The suite's own comparison: it must reject what Mastodon's format does
// not allow, or the contract checks could not fail.
func TestGraphFileDiff(t *testing.T) {
	f := file{header: "Account address,Hide notifications", rows: []string{"a@x.example,false", "b@y.example,true"}}
	for _, c := range []struct {
		name, got string
		same      bool
	}{
		{"as written", f.bytes(), true},
		{"rows in another order", "Account address,Hide notifications\nb@y.example,true\na@x.example,false\n", true},
		{"no header", "a@x.example,false\nb@y.example,true\n", false},
		{"another header", "account address,hide notifications\na@x.example,false\nb@y.example,true\n", false},
		{"CRLF line ends", "Account address,Hide notifications\r\na@x.example,false\r\nb@y.example,true\r\n", false},
		{"no final line end", "Account address,Hide notifications\na@x.example,false\nb@y.example,true", false},
		{"a row missing", "Account address,Hide notifications\na@x.example,false\n", false},
		{"a row repeated", f.bytes() + "b@y.example,true\n", false},
		{"a cell quoted needlessly", "Account address,Hide notifications\n\"a@x.example\",false\nb@y.example,true\n", false},
		{"empty", "", false},
	} {
		if d := f.diff(c.got); (d == "") != c.same {
			t.Errorf("%s: diff = %q", c.name, d)
		}
	}
	empty := file{}
	if d := empty.diff(""); d != "" {
		t.Errorf("an empty headerless file: %q", d)
	}
	if d := empty.diff("x\n"); d == "" {
		t.Error("a row in a file that should be empty went unnoticed")
	}
}
