package graph

import (
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the GraphQL API's Prometheus metrics (Config.Metrics). A nil
// *Metrics counts nothing.
//
// Requests are labelled by operation type and outcome only. The operation
// name is the client's to choose (any string, per request), so as a label
// it would let any client create series without bound; the access log
// names it instead.
//
// A WebSocket connection (subscriptions) is not a request: it lasts as long
// as the client keeps it, hours perhaps, and as one "request" it would
// swamp the latency histogram's top bucket. Upgrades of /graphql are
// counted apart, by outcome, with a gauge of those open.
type Metrics struct {
	requests   map[[2]string]prometheus.Counter // by operation type, outcome
	duration   map[string]prometheus.Observer   // by operation type
	websockets map[string]prometheus.Counter    // by outcome
	wsOpen     prometheus.Gauge
}

// Label values of the GraphQL metrics. "none": the request never reached
// an operation (a bad token, an unparsable or oversized body, too many
// requests in flight from the address).
var (
	OperationTypes = []string{"query", "mutation", "subscription", "none"}
	Outcomes       = []string{
		"ok",             // no error
		"error",          // errors the client caused or may see (validation, not found, forbidden, limits…)
		"internal_error", // INTERNAL errors or a 5xx status
	}
)

// NewMetrics registers the API's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skiff_graphql_requests_total",
		Help: "GraphQL requests (at /graphql), by operation type and outcome.",
	}, []string{"operation_type", "outcome"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "skiff_graphql_request_duration_seconds",
		Help:    "Time to answer a GraphQL request, by operation type.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}, []string{"operation_type"})
	websockets := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skiff_graphql_websockets_total",
		Help: "WebSocket connections to /graphql (subscriptions), by outcome, counted when they end; not in the request metrics.",
	}, []string{"outcome"})
	wsOpen := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "skiff_graphql_websockets_open",
		Help: "WebSocket connections to /graphql open now.",
	})
	reg.MustRegister(requests, duration, websockets, wsOpen)
	m := &Metrics{requests: map[[2]string]prometheus.Counter{}, duration: map[string]prometheus.Observer{},
		websockets: map[string]prometheus.Counter{}, wsOpen: wsOpen}
	for _, o := range Outcomes {
		m.websockets[o] = websockets.WithLabelValues(o)
	}
	for _, t := range OperationTypes {
		m.duration[t] = duration.WithLabelValues(t)
		for _, o := range Outcomes {
			m.requests[[2]string{t, o}] = requests.WithLabelValues(t, o)
		}
	}
	return m
}

// observe counts one request that ended with status after took; ri.mu is
// held.
func (m *Metrics) observe(ri *requestInfo, status int, took time.Duration) {
	if m == nil {
		return
	}
	typ := ri.opType
	if _, ok := m.duration[typ]; !ok {
		typ = "none"
	}
	outcome := outcomeOf(ri, status)
	m.requests[[2]string{typ, outcome}].Inc()
	m.duration[typ].Observe(took.Seconds())
}

// webSocketOpened counts a WebSocket upgrade of /graphql being served; the
// func it returns counts its end (with status and ri.mu held).
func (m *Metrics) webSocketOpened() func(ri *requestInfo, status int) {
	if m == nil {
		return func(*requestInfo, int) {}
	}
	m.wsOpen.Inc()
	return func(ri *requestInfo, status int) {
		m.wsOpen.Dec()
		m.websockets[outcomeOf(ri, status)].Inc()
	}
}

// outcomeOf is a request's or a connection's outcome label; ri.mu is held.
func outcomeOf(ri *requestInfo, status int) string {
	switch {
	case status >= http.StatusInternalServerError || slices.Contains(ri.codes, "INTERNAL"):
		return "internal_error"
	case status >= http.StatusBadRequest || len(ri.codes) > 0:
		return "error"
	}
	return "ok"
}
