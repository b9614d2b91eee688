package sftp

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiffhq/skiff/sftp/vfs"
)

// Metrics are the SSH server's Prometheus metrics (Config.Metrics); VFS
// are its sessions' (TenantBackend.Metrics). A nil *Metrics counts nothing.
// No label names a user, an account, a login or an address.
type Metrics struct {
	VFS *vfs.Metrics

	connections prometheus.Counter
	handshakes  *prometheus.CounterVec
	auths       map[[2]string]prometheus.Counter // by method and result
	limits      *prometheus.CounterVec

	server atomic.Pointer[Server] // the server the gauges read
}

// Label values of skiff_ssh_authentications_total.
var (
	AuthMethods = []string{"password", "keyboard-interactive", "publickey"}
	AuthResults = []string{
		"success",  // logged in
		"failure",  // unknown login, wrong password or key, module off, address not allowed…
		"error",    // the directory could not answer (database)
		"refused",  // a connection cap of the user or account was full
		"shutdown", // the server is shutting down
	}
)

// Label values of skiff_ssh_handshake_failures_total.
var HandshakeFailureReasons = []string{"auth_failed", "timeout", "proxy_refused", "client_left", "other"}

// Label values of skiff_sftp_limit_refusals_total: what was refused, and
// the level of the cap that was full (vfs.Level…, "address" for the
// per-address connection cap, "channel" for a channel's 1,024 handles).
var (
	LimitResources = []string{"connections", "sessions", "channels", "open_files"}
	LimitLevels    = []string{"channel", vfs.LevelConnection, "address", vfs.LevelUser, vfs.LevelAccount, vfs.LevelProcess}
)

// NewMetrics registers the SSH server's and its sessions' metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		connections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_ssh_connections_total",
			Help: "TCP connections accepted by the SFTP listeners, refused ones included.",
		}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_ssh_handshake_failures_total",
			Help: "SSH connections that ended before a login, by reason.",
		}, []string{"reason"}),
		limits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_sftp_limit_refusals_total",
			Help: "Connections, logins, channels and open files refused because a cap was full, by resource and the cap's level.",
		}, []string{"resource", "level"}),
		auths: map[[2]string]prometheus.Counter{},
	}
	auths := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skiff_ssh_authentications_total",
		Help: "SSH authentication attempts, by method and result (a client offering several keys makes one attempt per key).",
	}, []string{"method", "result"})
	for _, method := range AuthMethods {
		for _, result := range AuthResults {
			m.auths[[2]string{method, result}] = auths.WithLabelValues(method, result)
		}
	}
	gauge := func(name, help string, f func(s *Server) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			if s := m.server.Load(); s != nil {
				return float64(f(s))
			}
			return 0
		})
	}
	reg.MustRegister(m.connections, m.handshakes, m.limits, auths,
		gauge("skiff_ssh_open_connections", "Open SSH connections, those still in their handshake included.",
			func(s *Server) int { return s.ActiveConnections() }),
		gauge("skiff_sftp_active_sessions", "Logged-in SFTP connections (sessions).",
			func(s *Server) int { return s.sessions.Total() }),
		gauge("skiff_sftp_open_channels", "Open SSH session channels (SFTP subsystems and checksum commands).",
			func(s *Server) int { return s.channels.Total() }))
	m.VFS = vfs.NewMetrics(reg, m.limits)
	return m
}

// VFSMetrics returns m.VFS; nil for a nil m.
func (m *Metrics) VFSMetrics() *vfs.Metrics {
	if m == nil {
		return nil
	}
	return m.VFS
}

// watch makes the gauges read s.
func (m *Metrics) watch(s *Server) {
	if m != nil {
		m.server.Store(s)
	}
}

func (m *Metrics) accepted() {
	if m != nil {
		m.connections.Inc()
	}
}

func (m *Metrics) handshakeFailed(reason string) {
	if m != nil {
		m.handshakes.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) auth(method, result string) {
	if m == nil {
		return
	}
	if c, ok := m.auths[[2]string{method, result}]; ok {
		c.Inc()
	}
}

// refused counts a refusal by a cap: err's level if it is a
// *vfs.LimitError, else level.
func (m *Metrics) refused(resource, level string, err error) {
	if m == nil {
		return
	}
	var le *vfs.LimitError
	if errors.As(err, &le) {
		level = le.Level
	}
	m.limits.WithLabelValues(resource, level).Inc()
}
