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
	probeObserver atomic.Pointer[probeObservers]
)

type probeObservers struct {
	received, listening func(channel string, at time.Time)
}

func newProbeID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ObserveProbes sets the functions told of each probe this process sent
// when it comes back on a channel (received, with the time it was sent),
// and of each time a channel listens, at first and again after a lost
// connection (listening, with the time it is told): a probe sent before
// then may never come back (PostgreSQL drops what is notified while
// nobody listens), and the owner's resync stands for what it missed.
func ObserveProbes(received, listening func(channel string, at time.Time)) {
	probeObserver.Store(&probeObservers{received: received, listening: listening})
}

// channelListens tells the observer that channel listens now.
func channelListens(channel string) {
	if o := probeObserver.Load(); o != nil && o.listening != nil {
		o.listening(channel, time.Now())
	}
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
	o := probeObserver.Load()
	if id != probeID || o == nil || o.received == nil {
		return true
	}
	if n, err := strconv.ParseInt(nanos, 10, 64); err == nil {
		o.received(channel, time.Unix(0, n))
	}
	return true
}
