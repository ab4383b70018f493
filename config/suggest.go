package config

import (
	"fmt"
	"strings"
)

// suggest returns the valid word nearest to got, for "did you mean"; ""
// when none is near enough to be a likely typo. Near enough is at most two
// edits (insert, delete, substitute, swap two neighbours) for words of six
// letters or more and one for shorter ones, so that "ttl" does not
// suggest "url".
func suggest(got string, valid []string) string {
	g := strings.ToLower(got)
	limit := max(1, min(2, len([]rune(g))/3))
	best, bestD := "", limit+1
	for _, v := range valid {
		if d := editDistance(g, strings.ToLower(v)); d < bestD {
			best, bestD = v, d
		}
	}
	return best
}

// didYouMean returns `; did you mean "x"?` for got among valid, or "".
func didYouMean(got string, valid []string) string {
	if s := suggest(got, valid); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}

// editDistance is the optimal-string-alignment distance between a and b:
// the Levenshtein distance with swaps of two neighbouring letters counted
// as one edit, the commonest typo.
func editDistance(a, b string) int {
	s, t := []rune(a), []rune(b)
	// d[i][j] is the distance between s[:i] and t[:j]; three rows suffice.
	prev2 := make([]int, len(t)+1)
	prev := make([]int, len(t)+1)
	cur := make([]int, len(t)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(s); i++ {
		cur[0] = i
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(t)]
}
