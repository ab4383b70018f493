package publish

import (
	"fmt"
	"strings"

	"github.com/fedi-ferry/ferry/post"
)

// pollText renders a poll as text, with the original results.
func pollText(p *post.Poll) string {
	var b strings.Builder
	b.WriteString("\n\n")
	for i, o := range p.Options {
		votes := ""
		if i < len(p.Votes) {
			votes = fmt.Sprintf(" (%d)", p.Votes[i])
		}
		fmt.Fprintf(&b, "☐ %s%s\n", o, votes)
	}
	if !p.ExpiresAt.IsZero() {
		fmt.Fprintf(&b, "(poll, closed %s)", p.ExpiresAt.UTC().Format("2006-01-02"))
	} else {
		b.WriteString("(poll)")
	}
	return b.String()
}
