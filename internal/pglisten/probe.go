package pglisten

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Probes measure how late notifications arrive: a probe notifies a channel
// with this process's ID and the time (ProbePayload), and Run hands the process's
// own probes to the function set with ObserveProbes, never to its
// Handler's Notify. Probes of other processes are dropped (their clocks may
// differ). A probe's lag is the whole path a change takes to reach this
// node: the commit, PostgreSQL's delivery, and Run's loop.
const probePrefix = "skiff-probe "

var (
	probeID       = newProbeID()
	probeObserver atomic.Pointer[func(channel string, sent time.Time)]
)

func newProbeID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ObserveProbes sets the function told of each probe this process sent
// when it comes back on a channel, with the time it was sent.
func ObserveProbes(fn func(channel string, sent time.Time)) {
	probeObserver.Store(&fn)
}

// ProbePayload is the payload of a probe sent at t: the caller runs
// pg_notify(channel, payload).
func ProbePayload(t time.Time) string {
	return probePrefix + probeID + " " + strconv.FormatInt(t.UnixNano(), 10)
}

// probe reports whether payload is a probe, and passes this process's own
// to the observer.
func probe(channel, payload string) bool {
	rest, ok := strings.CutPrefix(payload, probePrefix)
	if !ok {
		return false
	}
	id, nanos, _ := strings.Cut(rest, " ")
	fn := probeObserver.Load()
	if id != probeID || fn == nil {
		return true
	}
	if n, err := strconv.ParseInt(nanos, 10, 64); err == nil {
		(*fn)(channel, time.Unix(0, n))
	}
	return true
}
