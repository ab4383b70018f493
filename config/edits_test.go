package config

import (
	"errors"
	"testing"
	"time"

	"github.com/fedi-ferry/ferry/bridge"
)

// TestSinkEdits checks edits and repost_within: decoded into the sink's
// policy, and each mistake reported on its own line.
func TestSinkEdits(t *testing.T) {
	cfg, err := Parse("ferry.toml", good+"edits = \"repost\"\nrepost_within = \"30m\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Routes[0].Route.Sinks[0].Policy; p.Edits != bridge.PolicyRepost || p.RepostWithin != 30*time.Minute {
		t.Fatalf("policy: %+v", p)
	}
	cfg, err = Parse("ferry.toml", good+"edits = \"ignore\"\n")
	if err != nil || cfg.Routes[0].Route.Sinks[0].Policy.Edits != bridge.PolicyIgnore {
		t.Fatalf("edits = ignore: %v", err)
	}

	tests := []struct{ name, src, want string }{
		{"bad edits", good + "edits = \"rewrite\"\n",
			`ferry.toml:8: route "blog", sink me@social.example: edits = "rewrite": use ignore, repost`},
		{"edits typo", good + "edit = \"repost\"\n", `ferry.toml:8: unknown key "route.sink.edit"; did you mean "edits"?`},
		{"repost_within typo", good + "edits = \"repost\"\nrepost_witin = \"1h\"\n",
			`ferry.toml:9: unknown key "route.sink.repost_witin"; did you mean "repost_within"?`},
		{"bad repost_within", good + "edits = \"repost\"\nrepost_within = \"an hour\"\n",
			`ferry.toml:9: route "blog", sink me@social.example: repost_within "an hour": use a duration such as "1h"`},
		{"negative repost_within", good + "edits = \"repost\"\nrepost_within = \"-1h\"\n",
			`ferry.toml:9: route "blog", sink me@social.example: repost_within "-1h": use a duration such as "1h"`},
		{"repost_within without repost", good + "repost_within = \"1h\"\n",
			`ferry.toml:8: route "blog", sink me@social.example: repost_within only applies with edits = "repost"`},
		{"repost_within not a string", good + "edits = \"repost\"\nrepost_within = 60\n",
			`ferry.toml:9: route "blog", sink me@social.example: repost_within: want a string, not an integer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("ferry.toml", tt.src)
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.Mistakes) != 1 || err.Error() != tt.want {
				t.Fatalf("error =\n%v\nwant only\n%s", err, tt.want)
			}
		})
	}
}
