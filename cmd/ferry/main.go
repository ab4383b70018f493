// Command ferry carries a person's fediverse presence across servers: it
// logs in to accounts, exports and imports the social graph, keeps archives,
// mirrors posts and performs account migrations. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
