package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	at := time.Date(2026, 3, 2, 10, 7, 30, 0, time.UTC) // a Monday
	for _, tc := range []struct {
		spec string
		next time.Time
	}{
		{"5m", at.Add(5 * time.Minute)},
		{"1h30m", at.Add(90 * time.Minute)},
		{"10s", at.Add(10 * time.Second)},
		{"*/10 * * * *", time.Date(2026, 3, 2, 10, 10, 0, 0, time.UTC)},
		{"@hourly", time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)},
		{"0 6 * * 1-5", time.Date(2026, 3, 3, 6, 0, 0, 0, time.UTC)},
	} {
		s, err := Parse(tc.spec)
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		if got := s.Next(at); !got.Equal(tc.next) {
			t.Errorf("%q: Next(%s) = %s, want %s", tc.spec, at, got, tc.next)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ spec, want string }{
		{"1s", `"1s": at least 10s between runs`},
		{"9s", "at least 10s"},
		{"-5m", "at least 10s"},
		{"often", `"often": neither an interval ("15m") nor a cron expression`},
		{"", "neither an interval"},
		{"* * * *", "neither an interval"},
		{"61 * * * *", "neither an interval"},
	} {
		if _, err := Parse(tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.spec, err, tc.want)
		}
	}
}
