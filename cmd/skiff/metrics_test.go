package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/skiffhq/skiff/graph"
	"github.com/skiffhq/skiff/notify"
	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/sftp"
	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// freeAddr is a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string { t.Helper(); return freeAddrOn(t, "127.0.0.1") }

// scrape reads the metrics endpoint.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", res.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, body)
	}
	return mfs
}

// value is the sum of name's samples whose labels include want.
func value(mfs map[string]*dto.MetricFamily, name string, want ...string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
	sum := 0.0
	for _, m := range mf.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// boundedLabels are every label a Skiff metric may carry, each with every
// value it may take: none names a user, an account, a login or a path.
func boundedLabels() map[string][]string {
	return map[string][]string{
		"operation":      vfs.OperationLabels(),
		"status":         vfs.StatusLabels(),
		"direction":      {"upload", "download"},
		"result":         slices.Concat(sftp.AuthResults, notify.SendResults, []string{"ok", "error"}),
		"method":         sftp.AuthMethods,
		"reason":         sftp.HandshakeFailureReasons,
		"resource":       sftp.LimitResources,
		"level":          sftp.LimitLevels,
		"operation_type": graph.OperationTypes,
		"outcome":        graph.Outcomes,
		"channel":        {policy.Channel, sftplogin.DedicatedIPChannel},
		"db_name":        {"skiff"},
		"version":        {runtime.Version()}, // go_info
	}
}

// TestMetrics serves metrics on their own address (never the API's), and
// after a workload of GraphQL requests, SFTP logins and transfers they count
// it, with labels from bounded lists only.
func TestMetrics(t *testing.T) {
	metricsAddr := freeAddr(t)
	s, dl, _ := startDemo(t, func(c *ServeCmd) { c.Metrics.Addr = metricsAddr })

	// The public API does not serve them.
	res, err := http.Get(s.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /metrics on the API's port: %s, want 404", res.Status)
	}

	// The workload: GraphQL (a good mutation and query, a bad query), SFTP
	// with a wrong then a right password, an upload and a download.
	owner := s.login(t, dl.OwnerEmail, dl.OwnerPassword)
	s.gql(t, owner, `{ account { name } }`, nil)
	res, err = http.Post(s.http+"/graphql", "application/json", strings.NewReader(`{"query":"{ noSuchField }"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if _, err := sftpRun(t, s.sftp, dl.OwnerSFTPLogin, "", "wrong password!", "pwd\n"); err == nil {
		t.Fatal("a wrong password logged in")
	}
	content := bytes.Repeat([]byte("metrics "), 40000) // 320,000 bytes
	local := filepath.Join(t.TempDir(), "up.bin")
	if err := os.WriteFile(local, content, 0o600); err != nil {
		t.Fatal(err)
	}
	back := filepath.Join(t.TempDir(), "back.bin")
	if out, err := sftpRun(t, s.sftp, dl.OwnerSFTPLogin, "", dl.OwnerPassword, "put "+local+" up.bin\nget up.bin "+back+"\n"); err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}

	var mfs map[string]*dto.MetricFamily
	deadline := time.Now().Add(10 * time.Second)
	for {
		mfs = scrape(t, metricsAddr)
		// The session's close, the lag probe's answer and the trial email
		// (the mail worker polls every 5 s) come a moment later.
		if value(mfs, "skiff_sftp_transfer_duration_seconds", "direction", "download") >= 1 &&
			value(mfs, "skiff_notification_lag_seconds", "channel", policy.Channel) > 0 &&
			value(mfs, "skiff_email_sends_total", "result", "sent") >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"skiff_ssh_connections_total", nil, 2},
		{"skiff_ssh_authentications_total", []string{"method", "password", "result", "success"}, 1},
		{"skiff_ssh_authentications_total", []string{"result", "failure"}, 1},
		{"skiff_sftp_operations_total", []string{"operation", "write", "status", "ok"}, 1},
		{"skiff_sftp_operations_total", []string{"operation", "open", "status", "ok"}, 2},
		{"skiff_sftp_transferred_bytes_total", []string{"direction", "upload"}, float64(len(content))},
		{"skiff_sftp_transferred_bytes_total", []string{"direction", "download"}, float64(len(content))},
		{"skiff_sftp_transfer_duration_seconds", []string{"direction", "upload", "result", "ok"}, 1},
		{"skiff_sftp_transfer_duration_seconds", []string{"direction", "download", "result", "ok"}, 1},
		{"skiff_graphql_requests_total", []string{"operation_type", "mutation", "outcome", "ok"}, 1},
		{"skiff_graphql_requests_total", []string{"operation_type", "query", "outcome", "ok"}, 1},
		{"skiff_graphql_requests_total", []string{"outcome", "error"}, 1},
		{"skiff_graphql_request_duration_seconds", []string{"operation_type", "query"}, 1},
		{"skiff_email_sends_total", []string{"result", "sent"}, 1}, // the trial email
		{"skiff_database_up", nil, 1},
		{"skiff_outbox_backlog", nil, 0},
		{"skiff_outbox_oldest_age_seconds", nil, 0},
		{"skiff_notification_lag_seconds", []string{"channel", policy.Channel}, 0.000001},
		{"skiff_notification_lag_seconds", []string{"channel", sftplogin.DedicatedIPChannel}, 0},
		{"go_sql_open_connections", []string{"db_name", "skiff"}, 1},
		{"go_goroutines", nil, 1},
		{"process_cpu_seconds_total", nil, 0},
		{"skiff_sftp_active_sessions", nil, 0},
		{"skiff_sftp_open_files", nil, 0},
	} {
		if got := value(mfs, c.name, c.labels...); got < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, got, c.min)
		}
	}
	if lag := value(mfs, "skiff_notification_lag_seconds", "channel", policy.Channel); lag > 5 {
		t.Errorf("policy notification lag %vs on an idle machine", lag)
	}

	// Every label of every series is from a bounded list.
	bounded := boundedLabels()
	for name, mf := range mfs {
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				values, known := bounded[l.GetName()]
				if !known {
					t.Errorf("%s has the label %q, which no bounded list names", name, l.GetName())
				} else if !slices.Contains(values, l.GetValue()) {
					t.Errorf("%s{%s=%q}: not among the label's bounded values", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
	documented := documentedMetrics(t)
	for name := range mfs {
		if strings.HasPrefix(name, "skiff_") && !documented[name] {
			t.Errorf("%s is served but not in docs/OPERATIONS.md's metrics", name)
		}
	}
	if t.Failed() {
		var b strings.Builder
		for name := range mfs {
			fmt.Fprintln(&b, name)
		}
		t.Logf("metrics served:\n%s", b.String())
	}
}

// documentedMetrics are the metric names docs/OPERATIONS.md's metrics
// table names.
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "## Metrics")
	end := strings.Index(doc[start:], "\n## ")
	names := map[string]bool{}
	for _, m := range metricName.FindAllString(doc[start:start+end], -1) {
		names[m] = true
	}
	return names
}

var metricName = regexp.MustCompile(`\b(skiff|go_sql)_[a-z0-9_]+[a-z]`)

// TestMonitoringDocs: the alert rules are valid YAML in Prometheus's rule
// file shape, with the alerts the operations guide promises; the dashboard
// is JSON; both use only metrics the guide documents.
func TestMonitoringDocs(t *testing.T) {
	documented := documentedMetrics(t)
	if len(documented) < 20 {
		t.Fatalf("docs/OPERATIONS.md documents only %d metrics", len(documented))
	}
	raw, err := os.ReadFile("../../docs/monitoring/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert       string
				Expr        string
				For         string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	if err := yaml.UnmarshalWithOptions(raw, &rules, yaml.Strict()); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	alerts := map[string]bool{}
	var exprs []string
	for _, g := range rules.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: a group needs a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			exprs = append(exprs, r.Expr)
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: needs alert, expr, a severity label and a summary", r.Alert)
			}
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("rule %s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if strings.Count(r.Expr, "(") != strings.Count(r.Expr, ")") {
				t.Errorf("rule %s: unbalanced parentheses in %q", r.Alert, r.Expr)
			}
		}
	}
	for _, want := range []string{"SkiffOutboxStuck", "SkiffSSHAuthFailureSpike", "SkiffDatabaseUnavailable"} {
		if !alerts[want] {
			t.Errorf("alerts.yml has no %s", want)
		}
	}

	raw, err = os.ReadFile("../../docs/monitoring/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if len(dash.Panels) < 10 {
		t.Errorf("the dashboard has %d panels", len(dash.Panels))
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			exprs = append(exprs, q.Expr)
		}
	}
	for _, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			if base := strings.TrimSuffix(name, "_bucket"); !documented[base] {
				t.Errorf("%s (in %q) is not in docs/OPERATIONS.md's metrics", name, e)
			}
		}
	}
}

// The lag is the last answered probe's, unless a probe has gone
// unanswered for longer than probeGrace: then its age, growing. Probes sent
// before the channel listened do not count.
func TestNotificationLagCountsUnansweredProbes(t *testing.T) {
	l := newNotificationLag(prometheus.NewRegistry(), "ch")
	now := time.Now()
	l.sent("ch", now.Add(-2*time.Second))
	if got := l.lag("ch", now); got != 0 {
		t.Errorf("a probe out for 2s, within the grace: lag %v, want 0", got)
	}
	l.received("ch", now.Add(-2*time.Second))
	if got := l.lag("ch", now); got < 2*time.Second || got > 3*time.Second {
		t.Errorf("a probe answered after 2s: lag %v", got)
	}
	l.sent("ch", now.Add(-time.Minute)) // then nothing comes back
	if got := l.lag("ch", now); got != time.Minute {
		t.Errorf("a probe unanswered for a minute: lag %v, want 1m", got)
	}
	// The connection was lost and listens again: the probe sent meanwhile
	// never comes back, and the resync stands for it. A probe sent since
	// counts again.
	l.listening("ch", now)
	if got := l.lag("ch", now.Add(time.Minute)); got < 2*time.Second || got > 3*time.Second {
		t.Errorf("after the channel listens again: lag %v, want the last answered probe's (2s)", got)
	}
	l.sent("ch", now.Add(time.Second))
	if got := l.lag("ch", now.Add(time.Minute)); got != time.Minute-time.Second {
		t.Errorf("a probe sent after the channel listened, unanswered: lag %v, want 59s", got)
	}

	// At start-up the first probes can go out before the channel listens
	// (TestMetrics saw a fresh node report 6 s): they are no lag.
	fresh := newNotificationLag(prometheus.NewRegistry(), "ch")
	fresh.sent("ch", now.Add(-10*time.Second))
	fresh.sent("ch", now.Add(-8*time.Second))
	fresh.listening("ch", now.Add(-7*time.Second))
	if got := fresh.lag("ch", now); got != 0 {
		t.Errorf("probes sent before the channel first listened: lag %v, want 0", got)
	}
}
