package observe

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"time"

	"github.com/fedi-ferry/ferry/daemon"
)

//go:embed status.html
var pageSource string

// parsePage parses the status page's template (Handler does, once).
func parsePage() (*template.Template, error) {
	t, err := template.New("status").Parse(pageSource)
	if err != nil {
		return nil, fmt.Errorf("observe: the status page's template: %w", err)
	}
	return t, nil
}

// pageData is what the status page shows.
type pageData struct {
	Refresh  int // seconds
	Now      string
	Health   string // "ok" or why not
	Healthy  bool
	Routes   []routeRow
	Accounts []accountRow
	Err      string // the store could not be read
}

// routeRow is one route, as `ferry status` shows it.
type routeRow struct {
	Name, Schedule           string
	Paused, Configured       bool
	LastRun, LastOK, NextRun string
	Lag                      string
	Mirrored, Failed         int
	Failures                 int
	LastError, ErrorKind     string
}

// accountRow is one account's rate budgets.
type accountRow struct {
	Account     string
	Budgets     []string
	RateLimited int64
	Updated     string
}

func (s *server) page(w http.ResponseWriter, r *http.Request) {
	now := s.o.Clock.Now()
	d := pageData{Refresh: int(s.o.Refresh.Seconds()), Now: now.UTC().Format(time.RFC3339), Health: "ok", Healthy: true}
	if err := s.health(r.Context()); err != nil {
		d.Health, d.Healthy = Redact(err.Error()), false
	}
	routes, err := s.o.Routes(r.Context(), now)
	if err != nil {
		d.Err = Redact(err.Error())
	}
	for _, rt := range routes {
		d.Routes = append(d.Routes, newRouteRow(rt, now))
	}
	for _, ab := range s.o.Metrics.Budgets() {
		row := accountRow{Account: ab.Account, RateLimited: ab.RateLimited, Updated: ago(now, &ab.Updated)}
		for _, b := range ab.Budgets {
			row.Budgets = append(row.Budgets, fmt.Sprintf("%s %d/%d", BudgetName(b.Key), b.Remaining, b.Limit))
		}
		d.Accounts = append(d.Accounts, row)
	}
	var buf bytes.Buffer
	if err := s.tmpl.Execute(&buf, d); err != nil {
		s.o.Logger.Error("status page", "err", err)
		http.Error(w, "the status page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = buf.WriteTo(w)
}

// maxErrorLen bounds a last error on the page: errors quote servers'
// answers, which should not fill the page.
const maxErrorLen = 300

func newRouteRow(rt daemon.RouteStatus, now time.Time) routeRow {
	row := routeRow{Name: rt.Route, Schedule: rt.Schedule, Paused: rt.Paused, Configured: rt.Configured,
		LastRun: ago(now, rt.LastRun), LastOK: ago(now, rt.LastOK), NextRun: ago(now, rt.NextRun),
		Lag: "-", Mirrored: rt.Mirrored, Failed: rt.Failed, Failures: rt.Failures}
	if rt.LagSeconds != nil {
		row.Lag = short(time.Duration(*rt.LagSeconds)*time.Second) + " ago"
	}
	if rt.LastError != "" {
		row.LastError = Redact(rt.LastError)
		if r := []rune(row.LastError); len(r) > maxErrorLen {
			row.LastError = string(r[:maxErrorLen]) + "…"
		}
		row.ErrorKind = "permanent"
		if rt.Transient {
			row.ErrorKind = "transient"
		}
	}
	return row
}

// ago says when t is relative to now, for people: "3m ago", "in 20s";
// "-" for none.
func ago(now time.Time, t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	d := now.Sub(*t)
	if d < 0 {
		return "in " + short(-d)
	}
	return short(d) + " ago"
}

func short(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// secretPattern matches what looks like a credential in an error text: a
// bearer token, a token, secret, password or OAuth code in a query string
// or form, a JSON field of those names.
var secretPattern = regexp.MustCompile(`(?i)(bearer\s+|\b(?:access_token|refresh_token|token|client_secret|password|code)=|"(?:access_token|refresh_token|token|client_secret|password)"\s*:\s*")[A-Za-z0-9._~+/=-]+`)

// Redact hides what looks like a credential in s (errors are redacted
// where they are made; this is the last line, for an error text that
// quotes a server's answer or a URL).
func Redact(s string) string {
	return secretPattern.ReplaceAllStringFunc(s, func(m string) string {
		loc := secretPattern.FindStringSubmatchIndex(m)
		return m[:loc[3]] + "[redacted]"
	})
}
