package graph_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/skiffhq/skiff/graph"
	"github.com/skiffhq/skiff/internal/testkit"
)

// gathered is the value of the series of name whose labels include want
// (counters and gauges; a histogram's sample count), summed.
func gathered(t *testing.T, reg *prometheus.Registry, name string, want ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.Metric {
			for i := 0; i+1 < len(want); i += 2 {
				found := false
				for _, l := range m.Label {
					found = found || l.GetName() == want[i] && l.GetValue() == want[i+1]
				}
				if !found {
					continue series
				}
			}
			sum += value(m)
		}
	}
	return sum
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// A WebSocket connection is not a GraphQL request: held open with a
// subscription, it adds nothing to the request counter nor to the latency
// histogram, and is counted by skiff_graphql_websockets_total (by outcome)
// and skiff_graphql_websockets_open instead.
func TestWebSocketsAreNotRequestsInMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnvWith(t, func(c *graph.Config) { c.Metrics = graph.NewMetrics(reg) })
	_, owner := e.account("Acme", "owner@acme.example")
	requests := gathered(t, reg, "skiff_graphql_requests_total")
	observed := gathered(t, reg, "skiff_graphql_request_duration_seconds")
	if requests == 0 || requests != observed {
		t.Fatalf("before: %v requests, %v observed", requests, observed)
	}

	ctx := context.Background()
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/graphql"
	dial := func(token string) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := dial(owner)
	var ack map[string]any
	if err := wsjson.Read(ctx, c, &ack); err != nil || ack["type"] != "connection_ack" {
		t.Fatalf("connection_init: %v %v", ack, err)
	}
	if err := wsjson.Write(ctx, c, map[string]any{"id": "1", "type": "subscribe",
		"payload": map[string]any{"query": "subscription { sftpSessionEvents { kind } }"}}); err != nil {
		t.Fatal(err)
	}
	if got := gathered(t, reg, "skiff_graphql_websockets_open"); got != 1 {
		t.Errorf("websockets open: %v, want 1", got)
	}
	time.Sleep(1200 * time.Millisecond) // longer than any bucket a request of this test could reach
	c.Close(websocket.StatusNormalClosure, "")
	bad := dial("not-a-token")
	_, _, err := bad.Read(ctx)
	if websocket.CloseStatus(err) != 4403 {
		t.Errorf("a bad token's connection: %v, want closed with 4403", err)
	}
	testkit.Eventually(t, "both connections' ends to be counted", func() bool {
		return gathered(t, reg, "skiff_graphql_websockets_total") == 2
	})
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"skiff_graphql_websockets_total", []string{"outcome", "ok"}, 1},
		{"skiff_graphql_websockets_total", []string{"outcome", "error"}, 1},
		{"skiff_graphql_websockets_open", nil, 0},
		{"skiff_graphql_requests_total", nil, requests},
		{"skiff_graphql_requests_total", []string{"operation_type", "subscription"}, 0},
		{"skiff_graphql_request_duration_seconds", nil, observed},
	} {
		if got := gathered(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
