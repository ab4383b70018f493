package sinks_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/sinks"
)

// The classification is platform-neutral: it reads the methods the
// platforms' errors carry. fedi's errors are the ones that exist today.
func TestErrorClassification(t *testing.T) {
	api := func(status int) error {
		return fmt.Errorf("publish: %w", &fedi.APIError{Method: "POST", URL: "https://x.example/api/v1/statuses", Status: status})
	}
	lost := &fedi.AmbiguousError{Method: "POST", URL: "https://x.example/api/v1/statuses", Err: io.ErrUnexpectedEOF}
	tests := []struct {
		name                            string
		err                             error
		permanent, ambiguous, transient bool
	}{
		{"nil", nil, false, false, false},
		{"422", api(422), true, false, false},
		{"404", api(404), true, false, false},
		{"408", api(408), false, false, true},
		{"429", api(429), false, false, true},
		{"502", api(502), false, false, true},
		{"rate limit", &fedi.RateLimitError{Host: "x.example"}, false, false, true},
		{"lost answer", fmt.Errorf("publish: %w", lost), false, true, true},
		{"marked permanent", &sinks.PermanentError{Err: errors.New("too large")}, true, false, false},
		{"cut off", io.ErrUnexpectedEOF, false, false, true},
		{"deadline", context.DeadlineExceeded, false, false, true},
		{"cancelled", context.Canceled, false, false, false},
		{"local", errors.New("open media file: no such file"), false, false, false},
	}
	for _, tt := range tests {
		if got := sinks.IsPermanent(tt.err); got != tt.permanent {
			t.Errorf("%s: IsPermanent = %v", tt.name, got)
		}
		if got := sinks.IsAmbiguous(tt.err); got != tt.ambiguous {
			t.Errorf("%s: IsAmbiguous = %v", tt.name, got)
		}
		if got := sinks.IsTransient(tt.err); got != tt.transient {
			t.Errorf("%s: IsTransient = %v", tt.name, got)
		}
	}
}
