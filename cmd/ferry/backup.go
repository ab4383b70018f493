package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/fedi-ferry/ferry/config"
	"github.com/fedi-ferry/ferry/sinks"
)

// runBackup runs a [[backup]] job: `ferry export` and/or `ferry archive`
// for its account, in this process through the same entry point as the
// command line, so it behaves exactly as those commands do (incremental,
// resumable). Their logs go to the daemon's. The daemon calls it on the
// job's schedule.
func runBackup(ctx context.Context, g *globalOptions, b config.BackupSpec) error {
	global := []string{"ferry", "--data-dir", g.DataDir, "--config", g.Config,
		"--log-level", g.LogLevel, "--log-format", g.LogFormat}
	if g.CAFile != "" {
		global = append(global, "--ca-file", g.CAFile)
	}
	var steps [][]string
	if b.Graph != "" {
		steps = append(steps, []string{"export", b.Account, "--out", b.Graph})
	}
	if b.Archive != "" {
		steps = append(steps, []string{"archive", b.Account, "--out", b.Archive})
	}
	var msgs []string
	for _, step := range steps {
		var tail tailBuffer
		code := run(ctx, append(append([]string(nil), global...), step...), strings.NewReader(""), io.Discard,
			io.MultiWriter(g.stderr, &tail))
		if code != exitOK {
			msgs = append(msgs, fmt.Sprintf("ferry %s exited %d: %s", step[0], code, tail.last()))
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	// An exit code says nothing about whether the failure will pass: keep
	// the interval back-off (a permanent outcome) rather than retrying
	// within seconds.
	return &sinks.PermanentError{Err: errors.New(strings.Join(msgs, "; "))}
}

// tailBuffer keeps the last line written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 4096 {
		t.buf = t.buf[len(t.buf)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	return strings.TrimPrefix(lines[len(lines)-1], "ferry: ")
}
