package vfs

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the SFTP engine's Prometheus metrics, shared by every
// session of the process (Config.Metrics). A nil *Metrics counts nothing.
//
// The data path pays one atomic add per READ or WRITE for the bytes and
// one for the request's count: every label child is resolved once (the
// byte counters at NewMetrics, a request's operation and status the first
// time that pair is seen), never looked up by name per packet. No label
// names a user, an account or a path: operations are the protocol's
// request types and the server's extensions, statuses SFTP's status codes.
type Metrics struct {
	ops      *prometheus.CounterVec
	opCache  [numOps][numStatuses]atomic.Pointer[prometheus.Counter]
	bytes    [2]prometheus.Counter     // by direction: upload, download
	duration [2][2]prometheus.Observer // by direction, then result: ok, error
	quota    prometheus.Counter
	limits   *prometheus.CounterVec
}

// Directions of a transfer, as labels.
const (
	upload = iota
	download
)

var directions = [2]string{"upload", "download"}

// resourceOpenFiles is the resource label of open handles refused.
const resourceOpenFiles = "open_files"

// Operations: a packet type (0–255), an extension (256 + its index in
// extensions), or an unknown extension.
// maxExtensions bounds the extensions table (checked below at compile
// time); the table itself cannot size Metrics, which it refers to.
const (
	maxExtensions = 24
	opExtensions  = 256
	opUnknownExt  = opExtensions + maxExtensions
	numOps        = opUnknownExt + 1
	statusOther   = 9
	numStatuses   = statusOther + 1
	opUnsupported = "unsupported"
)

var _ [maxExtensions - len(extensions)]struct{} // fails to compile when the table outgrows maxExtensions

// statusNames are SFTP version 3's status codes, as labels.
var statusNames = [numStatuses]string{"ok", "eof", "no_such_file", "permission_denied", "failure",
	"bad_message", "no_connection", "connection_lost", "op_unsupported", "other"}

// packetNames name the request types the server serves.
var packetNames = map[byte]string{
	fxpOpen: "open", fxpClose: "close", fxpRead: "read", fxpWrite: "write", fxpLstat: "lstat",
	fxpFstat: "fstat", fxpSetstat: "setstat", fxpFsetstat: "fsetstat", fxpOpendir: "opendir",
	fxpReaddir: "readdir", fxpRemove: "remove", fxpMkdir: "mkdir", fxpRmdir: "rmdir",
	fxpRealpath: "realpath", fxpStat: "stat", fxpRename: "rename", fxpReadlink: "readlink",
	fxpSymlink: "symlink", fxpExtended: "extended",
}

// opName is the operation label of op.
func opName(op int) string {
	switch {
	case op == opUnknownExt:
		return "extended_unsupported"
	case op >= opExtensions && op-opExtensions < len(extensions):
		return extensions[op-opExtensions].name
	case op >= opExtensions:
		return opUnsupported
	}
	if n, ok := packetNames[byte(op)]; ok {
		return n
	}
	return opUnsupported
}

// OperationLabels are every value the operation label can take.
func OperationLabels() []string {
	seen := map[string]bool{}
	var out []string
	for op := range numOps {
		if n := opName(op); !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// StatusLabels are every value the status label can take.
func StatusLabels() []string { return statusNames[:] }

// NewMetrics registers the engine's metrics with reg. limits is the
// counter of refusals by resource and level that the SSH server shares
// (labels "resource", "level"); the engine counts open files refused in it.
func NewMetrics(reg prometheus.Registerer, limits *prometheus.CounterVec) *Metrics {
	m := &Metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_sftp_operations_total",
			Help: "SFTP requests served, by operation (request type or extension) and the status answered.",
		}, []string{"operation", "status"}),
		quota: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_sftp_quota_refusals_total",
			Help: "SFTP writes, copies and moves refused because a storage quota had no room.",
		}),
		limits: limits,
	}
	transferred := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skiff_sftp_transferred_bytes_total",
		Help: "Bytes of file data uploaded (written) and downloaded (read) over SFTP.",
	}, []string{"direction"})
	durations := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "skiff_sftp_transfer_duration_seconds",
		Help: "Time from opening a file to closing it over SFTP, by direction and result (error: the upload was discarded or a read or write failed).",
		// From a small file over a LAN to a large one over a slow link.
		Buckets: []float64{0.005, 0.025, 0.1, 0.5, 1, 5, 15, 60, 300, 1800, 7200},
	}, []string{"direction", "result"})
	for d, dir := range directions {
		m.bytes[d] = transferred.WithLabelValues(dir)
		m.duration[d][0] = durations.WithLabelValues(dir, "ok")
		m.duration[d][1] = durations.WithLabelValues(dir, "error")
	}
	reg.MustRegister(m.ops, m.quota, transferred, durations)
	return m
}

// request counts one request by its operation and the status answered.
func (m *Metrics) request(op int, code uint32, err error) {
	if m == nil {
		return
	}
	st := statusOther
	if code < statusOther {
		st = int(code)
	}
	p := m.opCache[op][st].Load()
	if p == nil {
		c := m.ops.WithLabelValues(opName(op), statusNames[st])
		p = &c
		m.opCache[op][st].Store(p)
	}
	(*p).Inc()
	if err == errQuotaExceeded {
		m.quota.Inc()
	}
}

// moved counts n bytes of file data in one direction.
func (m *Metrics) moved(dir, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.bytes[dir].Add(float64(n))
}

// transferDone records how long a file was open and whether its transfer
// went well.
func (m *Metrics) transferDone(dir int, took time.Duration, ok bool) {
	if m == nil {
		return
	}
	r := 0
	if !ok {
		r = 1
	}
	m.duration[dir][r].Observe(took.Seconds())
}

// refused counts a resource refused at a level (LimitError's fields).
func (m *Metrics) refused(resource, level string) {
	if m == nil || m.limits == nil {
		return
	}
	m.limits.WithLabelValues(resource, level).Inc()
}
