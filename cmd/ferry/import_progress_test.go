package main

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fedi-ferry/ferry/migrate"
)

func TestProgressLine(t *testing.T) {
	for _, tc := range []struct {
		pr   migrate.Progress
		want string
	}{
		{migrate.Progress{Phase: "resolving", Done: 0, Total: 0}, "resolving [                    ] 0/0"},
		{migrate.Progress{Phase: "applying", Done: 50, Total: 100, ETA: 90 * time.Second}, "applying [==========          ] 50/100 ETA 1m30s"},
		// More done than planned (never expected) must not panic nor overflow the bar.
		{migrate.Progress{Phase: "applying", Done: 7, Total: 5}, "applying [====================] 7/5"},
	} {
		if got := progressLine(tc.pr); got != tc.want {
			t.Errorf("progressLine(%+v) = %q, want %q", tc.pr, got, tc.want)
		}
	}
	long := progressLine(migrate.Progress{Phase: "applying", Done: 1, Total: 1000, ETA: 30 * time.Hour,
		Waiting: "follow limit reached; resuming at Nov 22 15:04 " + strings.Repeat("x", 100)})
	if n := utf8.RuneCountInString(long); n > progressWidth || !strings.HasSuffix(long, "…") {
		t.Errorf("long line not cut to %d characters (%d): %q", progressWidth, n, long)
	}
}
