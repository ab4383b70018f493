package observe

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fedi-ferry/ferry/daemon"
)

// Options configure Handler. Store, Routes, Metrics and Gatherer are
// required.
type Options struct {
	Store Store
	// Routes reports every route as `ferry status` does (daemon.Status
	// on the store and the config file), with lags measured to now.
	Routes  func(ctx context.Context, now time.Time) ([]daemon.RouteStatus, error)
	Metrics *Metrics
	// Gatherer is the registry Metrics was registered on (with anything
	// else to expose, e.g. the Go runtime's collectors).
	Gatherer prometheus.Gatherer
	// Stale is how old the loop's last heartbeat may be before /healthz
	// fails: a few ticks. Default one minute.
	Stale time.Duration
	// CheckTimeout bounds the health check's write; default 5s.
	CheckTimeout time.Duration
	// Refresh is how often the status page reloads itself; default 30s.
	Refresh time.Duration
	Clock   clockwork.Clock // nil = the real clock
	Logger  *slog.Logger    // nil discards
}

// Handler serves /healthz, /metrics and the status page at /.
func Handler(o Options) (http.Handler, error) {
	if o.Store == nil || o.Routes == nil || o.Metrics == nil || o.Gatherer == nil {
		return nil, errors.New("observe: Store, Routes, Metrics and Gatherer are required")
	}
	if o.Stale <= 0 {
		o.Stale = time.Minute
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 5 * time.Second
	}
	if o.Refresh <= 0 {
		o.Refresh = 30 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	tmpl, err := parsePage()
	if err != nil {
		return nil, err
	}
	s := &server{o: o, db: &dbCheck{st: o.Store}, tmpl: tmpl}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{ErrorLog: slogErrors{o.Logger}}))
	mux.HandleFunc("GET /{$}", s.page)
	return mux, nil
}

// server holds the handlers' shared state.
type server struct {
	o    Options
	db   *dbCheck
	tmpl *template.Template // the status page
}

// health reports why the daemon is unhealthy, or nil: the loop's
// heartbeat must be recent and the database must take a write.
func (s *server) health(ctx context.Context) error {
	now := s.o.Clock.Now()
	beat := s.o.Metrics.LastHeartbeat()
	switch {
	case beat.IsZero():
		return errors.New("the scheduler has not ticked yet")
	case now.Sub(beat) > s.o.Stale:
		return fmt.Errorf("the scheduler last ticked %s ago (more than %s)", now.Sub(beat).Round(time.Second), s.o.Stale)
	}
	return s.db.check(ctx, now, s.o.CheckTimeout)
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.health(r.Context()); err != nil {
		s.o.Logger.Warn("health check failed", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "unhealthy: %s\n", Redact(err.Error()))
		return
	}
	fmt.Fprintln(w, "ok")
}

// slogErrors is promhttp's error log on slog.
type slogErrors struct{ log *slog.Logger }

func (l slogErrors) Println(v ...any) { l.log.Warn("metrics: " + fmt.Sprint(v...)) }

// Serve serves h on ln until ctx ends, then shuts the server down,
// letting requests in progress finish for up to five seconds.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("stop serving %s: %w", ln.Addr(), err)
	}
	return nil
}
