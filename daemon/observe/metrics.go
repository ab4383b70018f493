package observe

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fedi-ferry/ferry/bridge"
	"github.com/fedi-ferry/ferry/fedi"
	"github.com/fedi-ferry/ferry/journal"
	"github.com/fedi-ferry/ferry/schedule"
)

// Store is what the metrics read from the database, and the write the
// health check makes. state.Store implements it.
type Store interface {
	// Jobs returns the journal's jobs of kind ("" = all).
	Jobs(ctx context.Context, kind string) ([]journal.Job, error)
	// ItemCounts returns how many items of a job are in each status, per step.
	ItemCounts(ctx context.Context, jobID int64) (map[string]map[journal.ItemStatus]int, error)
	// Set stores a small value under key in its own write transaction.
	Set(ctx context.Context, key, value string) error
}

// AccountBudget is an account's rate-limit budgets as its server last
// announced them to this process.
type AccountBudget struct {
	Account     string
	Updated     time.Time
	RateLimited int64 // 429 answers received
	Budgets     []fedi.Budget
}

// Metrics counts what the daemon and its engine do and exposes it to a
// Prometheus registry. It implements daemon.Observer; Applied is the
// engine's bridge.Options.Applied hook; SetBudgets takes the accounts'
// rate-limit budgets after each run. All methods are safe for concurrent
// use.
type Metrics struct {
	clk clockwork.Clock

	runs       *prometheus.CounterVec
	failures   *prometheus.CounterVec
	posts      *prometheus.CounterVec
	edits      *prometheus.CounterVec
	deletes    *prometheus.CounterVec
	lag        *prometheus.HistogramVec
	streams    *prometheus.GaugeVec
	reconnects *prometheus.CounterVec
	beatGauge  prometheus.Gauge

	mu      sync.Mutex
	beat    time.Time
	budgets map[string]AccountBudget // by lower-cased account
}

// NewMetrics registers ferry's series on reg and returns the Metrics that
// feed them. st answers the series read from the database (journal items
// pending); clk nil is the real clock.
func NewMetrics(reg prometheus.Registerer, st Store, clk clockwork.Clock) (*Metrics, error) {
	if clk == nil {
		clk = clockwork.NewRealClock()
	}
	m := &Metrics{clk: clk, budgets: map[string]AccountBudget{}}
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_runs_total",
		Help: "Runs of a route or job, by how they ended: ok, transient or permanent."}, []string{"route", "outcome"})
	m.failures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_failures_total",
		Help: "Failures by kind (transient or permanent): failed runs, failed streamed posts, and steps a sink refused for good."},
		[]string{"route", "kind"})
	m.posts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_posts_mirrored_total",
		Help: "Copies published, by route and sink account (each part of a split post counts)."}, []string{"route", "sink"})
	m.edits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_edits_total",
		Help: "Copies edited after their origin was, by route and sink account."}, []string{"route", "sink"})
	m.deletes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_deletes_total",
		Help: "Copies deleted after their origin was, by route and sink account."}, []string{"route", "sink"})
	m.lag = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ferry_copy_lag_seconds",
		Help:    "Seconds from an origin post's creation to its copy being published.",
		Buckets: []float64{1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}}, []string{"route"})
	m.streams = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ferry_stream_connections",
		Help: "Stream connections open, by route."}, []string{"route"})
	m.reconnects = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_stream_reconnects_total",
		Help: "Stream connections made again after one ended, by route."}, []string{"route"})
	m.beatGauge = prometheus.NewGauge(prometheus.GaugeOpts{Name: "ferry_scheduler_heartbeat_timestamp_seconds",
		Help: "When the daemon's loop last looked for due work (Unix time)."})
	pending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ferry_journal_items_pending",
		Help: "Journal items planned and not applied yet, across jobs (NaN if the database did not answer)."},
		func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			n, err := pendingItems(ctx, st)
			if err != nil {
				return math.NaN()
			}
			return float64(n)
		})
	budgets := budgetCollector{m: m,
		remaining: prometheus.NewDesc("ferry_rate_budget_remaining",
			"Requests left in an account's rate-limit budget, as its server last announced (the limit once the window has reset).",
			[]string{"account", "budget"}, nil),
		limit: prometheus.NewDesc("ferry_rate_budget_limit",
			"The size of an account's rate-limit budget.", []string{"account", "budget"}, nil),
		limited: prometheus.NewDesc("ferry_rate_limited_responses",
			"429 answers an account's server gave this process.", []string{"account"}, nil)}
	for _, c := range []prometheus.Collector{m.runs, m.failures, m.posts, m.edits, m.deletes, m.lag,
		m.streams, m.reconnects, m.beatGauge, pending, budgets} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register ferry's metrics: %w", err)
		}
	}
	return m, nil
}

// pendingItems counts the journal items still pending, across jobs.
func pendingItems(ctx context.Context, st Store) (int, error) {
	jobs, err := st.Jobs(ctx, "")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, j := range jobs {
		counts, err := st.ItemCounts(ctx, j.ID)
		if err != nil {
			return 0, err
		}
		for _, byStatus := range counts {
			n += byStatus[journal.ItemPending]
		}
	}
	return n, nil
}

// Heartbeat records that the daemon's loop is alive (daemon.Observer).
func (m *Metrics) Heartbeat(at time.Time) {
	m.mu.Lock()
	m.beat = at
	m.mu.Unlock()
	m.beatGauge.Set(float64(at.UnixNano()) / 1e9)
}

// LastHeartbeat returns when the daemon's loop last ticked; zero before
// its first tick.
func (m *Metrics) LastHeartbeat() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.beat
}

// Ran counts a run of a route or job (daemon.Observer).
func (m *Metrics) Ran(name string, outcome schedule.Outcome) {
	m.runs.WithLabelValues(name, outcome.String()).Inc()
	if outcome != schedule.OK {
		m.failures.WithLabelValues(name, outcome.String()).Inc()
	}
}

// EventFailed counts a streamed post that could not be mirrored
// (daemon.Observer).
func (m *Metrics) EventFailed(route string, outcome schedule.Outcome) {
	m.failures.WithLabelValues(route, outcome.String()).Inc()
}

// StreamOpened counts a stream connection (daemon.Observer).
func (m *Metrics) StreamOpened(route string, reconnect bool) {
	m.streams.WithLabelValues(route).Inc()
	if reconnect {
		m.reconnects.WithLabelValues(route).Inc()
	}
}

// StreamClosed counts the end of a stream connection (daemon.Observer).
func (m *Metrics) StreamClosed(route string) {
	m.streams.WithLabelValues(route).Dec()
}

// Applied counts a step a sink carried out or refused: the engine's
// bridge.Options.Applied hook.
func (m *Metrics) Applied(a bridge.Applied) {
	if a.Refused {
		m.failures.WithLabelValues(a.Route, schedule.Permanent.String()).Inc()
		return
	}
	switch a.Kind {
	case bridge.StepPublish:
		m.posts.WithLabelValues(a.Route, a.Sink).Inc()
		if !a.OriginAt.IsZero() && !a.At.Before(a.OriginAt) {
			m.lag.WithLabelValues(a.Route).Observe(a.At.Sub(a.OriginAt).Seconds())
		}
	case bridge.StepEdit:
		m.edits.WithLabelValues(a.Route, a.Sink).Inc()
	case bridge.StepDelete:
		m.deletes.WithLabelValues(a.Route, a.Sink).Inc()
	}
}

// SetBudgets records an account's rate-limit budgets as its server last
// announced them, and the 429 answers it gave.
func (m *Metrics) SetBudgets(account string, budgets []fedi.Budget, rateLimited int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.budgets[strings.ToLower(account)] = AccountBudget{Account: account, Updated: m.clk.Now(),
		RateLimited: rateLimited, Budgets: slices.Clone(budgets)}
}

// Budgets returns every account's budgets, sorted by account, with a
// budget whose window has reset since shown full again.
func (m *Metrics) Budgets() []AccountBudget {
	now := m.clk.Now()
	m.mu.Lock()
	out := make([]AccountBudget, 0, len(m.budgets))
	for _, ab := range m.budgets {
		ab.Budgets = slices.Clone(ab.Budgets)
		for i, b := range ab.Budgets {
			if !b.Reset.IsZero() && b.Reset.Before(now) {
				ab.Budgets[i].Remaining = b.Limit
			}
		}
		out = append(out, ab)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b AccountBudget) int { return strings.Compare(a.Account, b.Account) })
	return out
}

// BudgetName shortens a transport budget key ("host/api#statuses") to
// what people read: "api statuses".
func BudgetName(key string) string {
	_, rest, ok := strings.Cut(key, "/")
	if !ok {
		return key
	}
	return strings.ReplaceAll(rest, "#", " ")
}

// budgetCollector exposes the budgets when scraped, so that a window
// that reset since the last run shows as full.
type budgetCollector struct {
	m                         *Metrics
	remaining, limit, limited *prometheus.Desc
}

func (c budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.remaining
	ch <- c.limit
	ch <- c.limited
}

func (c budgetCollector) Collect(ch chan<- prometheus.Metric) {
	for _, ab := range c.m.Budgets() {
		send(ch, c.limited, ab.RateLimited, ab.Account)
		seen := map[string]bool{}
		for _, b := range ab.Budgets {
			name := BudgetName(b.Key)
			if seen[name] {
				continue // two hosts' "api" for one account: keep the first
			}
			seen[name] = true
			send(ch, c.remaining, int64(b.Remaining), ab.Account, name)
			send(ch, c.limit, int64(b.Limit), ab.Account, name)
		}
	}
}

// send emits one gauge; a label a server made invalid (not UTF-8) drops
// the series rather than the scrape.
func send(ch chan<- prometheus.Metric, d *prometheus.Desc, v int64, labels ...string) {
	if m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, float64(v), labels...); err == nil {
		ch <- m
	}
}
