package vfs_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/skiffhq/skiff/sftp/vfs"
)

// gathered is the value of the series name{labels} in reg (a counter's,
// or a histogram's sample count); 0 when absent.
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			if hasLabels(m, labels) {
				if h := m.GetHistogram(); h != nil {
					return float64(h.GetSampleCount())
				}
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, labels []string) bool {
	have := map[string]string{}
	for _, l := range m.Label {
		have[l.GetName()] = l.GetValue()
	}
	for i := 0; i+1 < len(labels); i += 2 {
		if have[labels[i]] != labels[i+1] {
			return false
		}
	}
	return true
}

// TestMetricsCount: requests by operation and status, bytes each way,
// transfers by result, quota refusals and open files refused by a cap.
func TestMetricsCount(t *testing.T) {
	reg := prometheus.NewRegistry()
	limits := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "limits_total"}, []string{"resource", "level"})
	reg.MustRegister(limits)
	m := vfs.NewMetrics(reg, limits)
	handles := vfs.NewCounter("open files", vfs.Caps{PerConnection: 1})
	e := newEnv(t, withQuota(newMemQuota(1000)), func(c *vfs.Config) {
		c.Metrics = m
		c.Handles = handles.For(accountID, userID)
	})
	c := e.client

	if err := writeFile(c, "/My Files/a.txt", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	f, err := c.Open("/My Files/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil || buf.String() != "hello" {
		t.Fatalf("download: %q %v", buf.String(), err)
	}
	if _, err := c.Open("/My Files/a.txt"); err == nil || !strings.Contains(err.Error(), "too many open files") {
		t.Fatalf("a second open file on a connection capped at one: %v", err)
	}
	f.Close()
	if _, err := c.Stat("/My Files/missing"); !os.IsNotExist(err) {
		t.Fatalf("stat of a missing file: %v", err)
	}
	if err := writeFile(c, "/My Files/big.bin", bytes.Repeat([]byte("x"), 5000)); err == nil || !strings.Contains(err.Error(), "quota exceeded") {
		t.Fatalf("5000 bytes over a 1000-byte quota: %v", err)
	}

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"skiff_sftp_operations_total", []string{"operation", "stat", "status", "no_such_file"}, 1},
		{"skiff_sftp_operations_total", []string{"operation", "open", "status", "ok"}, 3},
		{"skiff_sftp_operations_total", []string{"operation", "open", "status", "failure"}, 1},
		{"skiff_sftp_operations_total", []string{"operation", "write", "status", "failure"}, 1},
		{"skiff_sftp_transferred_bytes_total", []string{"direction", "upload"}, 5},
		{"skiff_sftp_transferred_bytes_total", []string{"direction", "download"}, 5},
		{"skiff_sftp_transfer_duration_seconds", []string{"direction", "upload", "result", "ok"}, 1},
		{"skiff_sftp_transfer_duration_seconds", []string{"direction", "upload", "result", "error"}, 1},
		{"skiff_sftp_transfer_duration_seconds", []string{"direction", "download", "result", "ok"}, 1},
		{"skiff_sftp_quota_refusals_total", nil, 1},
		{"limits_total", []string{"resource", "open_files", "level", vfs.LevelConnection}, 1},
	} {
		if got := gathered(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
