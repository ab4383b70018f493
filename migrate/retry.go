package migrate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/fedi-ferry/ferry/journal"
)

// retryPrefix starts the reason of a row that failed for a reason that may
// go away (a server error, a timeout, a follow request not yet accepted).
// Running the same import again retries such rows; other failures (an
// unknown account, a refusal) stay until --fresh.
const retryPrefix = "failed for now, retried when the import runs again: "

// errRetryLater marks an apply error as worth retrying on the next run
// although it is not a transport-level transient error.
var errRetryLater = errors.New("not yet possible")

// retryable reports whether a failed item's reason marks it for a retry.
func retryable(it journal.Item) bool {
	return it.Status == journal.ItemFailed && strings.HasPrefix(it.Error, retryPrefix)
}

// retryableItems returns the failed items of a finished job that a plain
// re-run retries, in plan order.
func retryableItems(ctx context.Context, j Journal, jobID int64) ([]journal.Item, error) {
	var out []journal.Item
	err := eachItem(ctx, j, jobID, func(items []journal.Item) {
		for _, it := range items {
			if retryable(it) {
				out = append(out, it)
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("find rows to retry in import job %d: %w", jobID, err)
	}
	return out, nil
}

// retry applies the items again, runs of the same step together and steps
// in plan order (lists before their members). Each item's attempt count is
// above zero, so apply first checks the server for what the earlier run did.
func (a *applier) retry(ctx context.Context, items []journal.Item) error {
	a.m = newMeter(a.o.Progress, "applying")
	a.listIDs = map[string]string{}
	a.m.grow(len(items), 0)
	return a.applyRuns(ctx, items)
}
