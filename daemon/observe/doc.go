// Package observe lets people watch a running daemon: a health check for
// systemd or a container (/healthz), Prometheus metrics (/metrics) and a
// small status page (/). Metrics implements daemon.Observer and the
// engine's bridge.Options.Applied hook; Handler serves the three pages
// from it, a Prometheus registry and the store.
//
// Nothing here shows a token, a password or the text of a post: the page
// and the metrics carry route and account names, counts, times, rate
// budgets and last errors, which pass through Redact first.
package observe
