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
type Metrics struct {
	requests map[[2]string]prometheus.Counter // by operation type, outcome
	duration map[string]prometheus.Observer   // by operation type
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
	reg.MustRegister(requests, duration)
	m := &Metrics{requests: map[[2]string]prometheus.Counter{}, duration: map[string]prometheus.Observer{}}
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
	outcome := "ok"
	switch {
	case status >= http.StatusInternalServerError || slices.Contains(ri.codes, "INTERNAL"):
		outcome = "internal_error"
	case status >= http.StatusBadRequest || len(ri.codes) > 0:
		outcome = "error"
	}
	m.requests[[2]string{typ, outcome}].Inc()
	m.duration[typ].Observe(took.Seconds())
}
