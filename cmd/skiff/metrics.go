package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/skiffhq/skiff/graph"
	"github.com/skiffhq/skiff/internal/pglisten"
	"github.com/skiffhq/skiff/notify"
	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/sftp"
	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/storage/s3"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// MetricsFlags configure the Prometheus metrics endpoint.
type MetricsFlags struct {
	Addr string `name:"metrics-addr" env:"SKIFF_METRICS_ADDR" help:"Serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9464 (off when empty). Never the API's address: keep it on loopback or a private network."`
}

// probeEvery is how often serve notifies the policy and dedicated IP
// channels with a probe, to measure their notification lag. The first
// probes go out sooner (1 s, then doubling), since one sent before the
// listeners listen is lost (and forgotten once they listen). A probe
// unanswered for probeGrace counts as lag.
const (
	probeEvery = 15 * time.Second
	probeGrace = 5 * time.Second
)

// metrics are serve's Prometheus metrics; all nil when --metrics-addr is
// not set, so that nothing is counted.
type metrics struct {
	reg    *prometheus.Registry
	sftp   *sftp.Metrics
	graph  *graph.Metrics
	notify *notify.Metrics
	lag    *notificationLag
}

// newMetrics makes the registry and the transports' metrics, with the Go
// runtime's and the process's.
func (f MetricsFlags) newMetrics() *metrics {
	if f.Addr == "" {
		return &metrics{}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &metrics{reg: reg, sftp: sftp.NewMetrics(reg), graph: graph.NewMetrics(reg), notify: notify.NewMetrics(reg),
		lag: newNotificationLag(reg, policy.Channel, sftplogin.DedicatedIPChannel)}
	return m
}

// watchDatabase adds what is read from the database at each scrape: the
// pool's use, whether the database answers, and the outbox's backlog.
func (m *metrics) watchDatabase(db *tenant.DB) {
	if m.reg == nil {
		return
	}
	m.reg.MustRegister(collectors.NewDBStatsCollector(db.X.DB, "skiff"), &databaseCollector{db: db})
}

// watchSFTPResources adds gauges of the open handles and queued reply
// memory, process-wide.
func (m *metrics) watchSFTPResources(handles *vfs.Counter, replies *vfs.ReplyBudget) {
	if m.reg == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "skiff_sftp_open_files", Help: "Open SFTP file and directory handles."},
			func() float64 { return float64(handles.Total()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "skiff_sftp_reply_memory_bytes", Help: "Bytes of SFTP replies queued for clients or being written."},
			func() float64 { return float64(replies.Used()) }))
}

// watchStore adds the memory budget of S3 storage's transfers: what they
// hold, the limit, and how often it was short.
func (m *metrics) watchStore(store fileStore) {
	s3store, ok := store.(*s3.Store)
	if m.reg == nil || !ok {
		return
	}
	use := func(f func(s3.MemoryUse) int64) func() float64 {
		return func() float64 { return float64(f(s3store.MemoryUse())) }
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "skiff_s3_transfer_memory_bytes", Help: "Bytes of S3 storage's upload parts and download read-ahead held (the storage URL's memory budget)."},
			use(func(u s3.MemoryUse) int64 { return u.InUse })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "skiff_s3_transfer_memory_limit_bytes", Help: "The storage URL's memory budget for S3 transfers on this node."},
			use(func(u s3.MemoryUse) int64 { return u.Limit })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "skiff_s3_uploads_refused_busy_total", Help: "Upload writes that found no memory in the budget in time and failed (\"try again later\")."},
			use(func(u s3.MemoryUse) int64 { return u.UploadsRefused })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "skiff_s3_reads_over_budget_total", Help: "Download reads served without read-ahead, for want of memory in the budget."},
			use(func(u s3.MemoryUse) int64 { return u.ReadsOverBudget })))
}

// serve listens on addr and serves /metrics until ctx ends; it returns once
// listening, or the error of listening.
func (m *metrics) serve(ctx context.Context, addr string, log *slog.Logger) error {
	if m.reg == nil {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return listenError("--metrics-addr", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn), Timeout: 10 * time.Second,
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 15 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	log.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return nil
}

// databaseCollector asks the database at each scrape whether it answers,
// and for the outbox's backlog.
type databaseCollector struct{ db *tenant.DB }

var (
	databaseUpDesc = prometheus.NewDesc("skiff_database_up",
		"1 when the database answered the scrape's query within 5 s, 0 otherwise.", nil, nil)
	outboxBacklogDesc = prometheus.NewDesc("skiff_outbox_backlog",
		"Emails in the outbox waiting to be sent (pending or being sent).", nil, nil)
	outboxOldestDesc = prometheus.NewDesc("skiff_outbox_oldest_age_seconds",
		"Age of the oldest email waiting to be sent; 0 when none waits.", nil, nil)
)

func (c *databaseCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- databaseUpDesc
	ch <- outboxBacklogDesc
	ch <- outboxOldestDesc
}

func (c *databaseCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int
	var oldest time.Time
	var dbNow time.Time
	err := c.db.CrossTenant(ctx, tenant.ScopeOutbox, func(tx *sqlx.Tx) (err error) {
		if err := tx.GetContext(ctx, &dbNow, `SELECT now()`); err != nil {
			return err
		}
		n, oldest, err = outbox.Backlog(ctx, tx)
		return err
	})
	if err != nil {
		ch <- prometheus.MustNewConstMetric(databaseUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(databaseUpDesc, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(outboxBacklogDesc, prometheus.GaugeValue, float64(n))
	age := 0.0
	if !oldest.IsZero() {
		age = max(dbNow.Sub(oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(outboxOldestDesc, prometheus.GaugeValue, age)
}

// notificationLag measures, per channel, how late this node hears of a
// change: serve sends a probe every probeEvery (pglisten.ProbePayload) and
// pglisten reports when it comes back. The gauge is the last probe's lag,
// or the age of a probe unanswered for over probeGrace when that is
// longer, so a node that stopped hearing notifications shows a growing
// lag.
type notificationLag struct {
	mu       sync.Mutex
	channels map[string]*probeState
}

type probeState struct {
	pending time.Time     // when the oldest unanswered probe was sent
	last    time.Duration // the last answered probe's lag
}

func newNotificationLag(reg prometheus.Registerer, channels ...string) *notificationLag {
	l := &notificationLag{channels: map[string]*probeState{}}
	for _, ch := range channels {
		l.channels[ch] = &probeState{}
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "skiff_notification_lag_seconds",
			Help:        "How late this node hears of a change committed by any node, by channel (skiff_policy: permissions; skiff_dedicated_ips: dedicated IPs), measured with a probe every 15 s.",
			ConstLabels: prometheus.Labels{"channel": ch},
		}, func() float64 { return l.lag(ch, time.Now()).Seconds() }))
	}
	pglisten.ObserveProbes(l.received, l.listening)
	return l
}

func (l *notificationLag) sent(channel string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.channels[channel]; s != nil && s.pending.IsZero() {
		s.pending = at
	}
}

func (l *notificationLag) received(channel string, sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.channels[channel]
	if s == nil {
		return
	}
	s.last = time.Since(sent)
	if !sent.Before(s.pending) {
		s.pending = time.Time{}
	}
}

// listening forgets the probe pending on channel when it was sent before
// the channel listened (at start-up, or after a lost connection): it may
// never come back, and the resync that follows LISTEN stands for it. The
// lag is the last answered probe's until the next one comes back.
func (l *notificationLag) listening(channel string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.channels[channel]; s != nil && s.pending.Before(at) {
		s.pending = time.Time{}
	}
}

func (l *notificationLag) lag(channel string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.channels[channel]
	if age := now.Sub(s.pending); !s.pending.IsZero() && age > probeGrace && age > s.last {
		return age
	}
	return s.last
}

// probe notifies every channel with a probe every probeEvery (sooner at
// first) until ctx ends. A probe that cannot be sent (the database is
// down) is counted as unanswered from when it was due.
func (l *notificationLag) probe(ctx context.Context, db *tenant.DB) error {
	if l == nil {
		return nil
	}
	wait := time.Second
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, probeEvery)
		t.Reset(wait)
		for ch := range l.channels {
			now := time.Now()
			l.sent(ch, now)
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, _ = db.X.ExecContext(pctx, `SELECT pg_notify($1, $2)`, ch, pglisten.ProbePayload(now))
			cancel()
		}
	}
}
