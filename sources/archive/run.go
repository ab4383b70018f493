package archive

import "context"

// ImportResult is what ImportIndexed did: the copy's summary and how many
// posts the new archive's search index holds.
type ImportResult struct {
	ImportSummary
	Posts int `json:"posts"`
}

// ImportIndexed copies the archive at src into the directory into, as
// Import does, and builds its search index (Reindex), so that the new
// archive can be searched and published at once.
func ImportIndexed(ctx context.Context, src, into string, l Limits) (ImportResult, error) {
	sum, err := Import(ctx, src, into, l)
	if err != nil {
		return ImportResult{ImportSummary: sum}, err
	}
	n, err := Reindex(ctx, into)
	return ImportResult{ImportSummary: sum, Posts: n}, err
}
