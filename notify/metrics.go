package notify

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the outbox worker's Prometheus metrics (Worker.Metrics). A
// nil *Metrics counts nothing.
type Metrics struct {
	sends map[string]prometheus.Counter
}

// SendResults are the values of skiff_email_sends_total's result label.
var SendResults = []string{
	"sent",     // the mail server (or the .eml folder) took it
	"retry",    // this email failed; it is tried again after a back-off
	"failed",   // failed for good (refused, or out of attempts)
	"deferred", // the mail server was unavailable; the email kept its place
}

// NewMetrics registers the worker's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	sends := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skiff_email_sends_total",
		Help: "Attempts to hand an email from the outbox to the mail system, by result.",
	}, []string{"result"})
	reg.MustRegister(sends)
	m := &Metrics{sends: map[string]prometheus.Counter{}}
	for _, r := range SendResults {
		m.sends[r] = sends.WithLabelValues(r)
	}
	return m
}

func (m *Metrics) sent(result string) {
	if m != nil {
		m.sends[result].Inc()
	}
}
