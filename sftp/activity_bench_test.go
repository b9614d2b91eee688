package sftp

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffhq/skiff/tenant/activity"
)

// The activity log's cost, measured in one run on one database: the
// fixture's user uploads and downloads 32 MiB through two nodes, one
// recording activity and one not, taking turns for 15 rounds, over real
// SSH; then many small uploads at once through the recording node, to see
// the log keep up without its memory growing. They take minutes, so they run only when
// asked:
//
//	SKIFF_BENCH_ACTIVITY=1 go test -run ActivityCost -v -timeout 30m ./sftp
func TestActivityCostThroughput(t *testing.T) {
	if os.Getenv("SKIFF_BENCH_ACTIVITY") == "" {
		t.Skip("a benchmark: set SKIFF_BENCH_ACTIVITY=1 to run it")
	}
	e := newE2E(t)
	on, rec := e.activityNode(t)
	off := e.startNode(t, nil, nil)
	const size = 32 << 20
	data := bytes.Repeat([]byte("skiff"), size/5+1)[:size]
	rounds := 15
	type side struct {
		name     string
		addr     string
		up, down []float64 // MB/s
	}
	sides := []*side{{name: "off", addr: off.addr}, {name: "on", addr: on.addr}}
	for r := range rounds {
		for i := range sides {
			s := sides[(i+r)%2] // alternate which goes first
			conn, c := e.sftpClient(t, s.addr, e.login)
			start := time.Now()
			f, err := c.Create("/My Files/big.bin")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			s.up = append(s.up, size/1e6/time.Since(start).Seconds())
			start = time.Now()
			g, err := c.Open("/My Files/big.bin")
			if err != nil {
				t.Fatal(err)
			}
			var sink countWriter
			if _, err := g.WriteTo(&sink); err != nil || sink != size {
				t.Fatalf("download: %d bytes, %v", sink, err)
			}
			g.Close()
			s.down = append(s.down, size/1e6/time.Since(start).Seconds())
			c.Close()
			conn.Close()
		}
	}
	for _, s := range sides {
		t.Logf("activity %-3s: upload median %.0f MB/s %v, download median %.0f MB/s %v", s.name,
			median(s.up), rounded(s.up), median(s.down), rounded(s.down))
	}
	// Each round's on/off ratio compares two transfers seconds apart, so
	// the machine's load swings cancel out more than between medians.
	var upRatio, downRatio []float64
	for r := range rounds {
		upRatio = append(upRatio, sides[1].up[r]/sides[0].up[r])
		downRatio = append(downRatio, sides[1].down[r]/sides[0].down[r])
	}
	t.Logf("on/off: ratio of medians upload %.3f, download %.3f; median of the rounds' ratios upload %.3f, download %.3f; recorder %+v",
		median(sides[1].up)/median(sides[0].up), median(sides[1].down)/median(sides[0].down),
		median(upRatio), median(downRatio), rec.Stats())
}

type countWriter int64

func (w *countWriter) Write(p []byte) (int, error) { *w += countWriter(len(p)); return len(p), nil }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func rounded(v []float64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x + 0.5)
	}
	return out
}

// TestActivityCostSmallUploads runs 16 sessions uploading 1 KiB files as
// fast as they can for 20 s through the recording node, and samples the
// recorder's queue and the process's heap (after a GC) every 2 s.
func TestActivityCostSmallUploads(t *testing.T) {
	if os.Getenv("SKIFF_BENCH_ACTIVITY") == "" {
		t.Skip("a benchmark: set SKIFF_BENCH_ACTIVITY=1 to run it")
	}
	e := newE2E(t)
	on, rec := e.activityNode(t)
	const sessions, runFor = 16, 20 * time.Second
	var uploads atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), runFor)
	defer cancel()
	var wg sync.WaitGroup
	for s := range sessions {
		conn, c := e.sftpClient(t, on.addr, e.login)
		if err := c.MkdirAll(fmt.Sprintf("/My Files/s%d", s)); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer conn.Close()
			payload := bytes.Repeat([]byte("x"), 1024)
			for i := 0; ctx.Err() == nil; i++ {
				f, err := c.Create(fmt.Sprintf("/My Files/s%d/f%d", s, i%200))
				if err != nil {
					t.Error(err)
					return
				}
				f.Write(payload)
				if err := f.Close(); err != nil {
					t.Error(err)
					return
				}
				uploads.Add(1)
			}
		})
	}
	var heaps []uint64
	maxQueued := 0
	tick := time.NewTicker(2 * time.Second)
	start := time.Now()
	for ctx.Err() == nil {
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heaps = append(heaps, ms.HeapAlloc>>10)
		maxQueued = max(maxQueued, rec.Stats().Queued)
	}
	tick.Stop()
	wg.Wait()
	elapsed := time.Since(start)
	n := uploads.Load()
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelClose()
	testkitWaitRecorded(t, rec, n)
	st := rec.Stats()
	rec.Close(closeCtx)
	t.Logf("%d uploads of 1 KiB in %v by %d sessions: %.0f uploads/s", n, elapsed.Round(time.Millisecond), sessions, float64(n)/elapsed.Seconds())
	t.Logf("recorder: %+v; most queued at a sample: %d; heap after GC every 2 s (KiB): %v", st, maxQueued, heaps)
	if st.Spilled != 0 {
		t.Errorf("%d events spilled", st.Spilled)
	}
	if len(heaps) > 3 && heaps[len(heaps)-1] > heaps[1]*3/2+4096 {
		t.Errorf("the heap grew from %d to %d KiB", heaps[1], heaps[len(heaps)-1])
	}
}

// testkitWaitRecorded waits until the recorder has written at least n
// events (the uploads, plus logins).
func testkitWaitRecorded(t *testing.T, rec *activity.Recorder, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for rec.Stats().Recorded < n {
		if time.Now().After(deadline) {
			t.Fatalf("recorded %d of %d events", rec.Stats().Recorded, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestActivityCostRecorderRate feeds the recorder alone 2,000 events a
// second (four times the 500 uploads/s goal) from 8 goroutines for 20 s,
// with the fields an upload's event has, and reports how long Record took
// (p99), the most events queued and the heap after GC.
func TestActivityCostRecorderRate(t *testing.T) {
	if os.Getenv("SKIFF_BENCH_ACTIVITY") == "" {
		t.Skip("a benchmark: set SKIFF_BENCH_ACTIVITY=1 to run it")
	}
	e := newE2E(t)
	rec := activity.NewRecorder(e.svc.DB, activity.RecorderConfig{Node: "node-r"})
	rec.Start()
	const perSecond, workers, runFor = 2000, 8, 20 * time.Second
	var mu sync.Mutex
	var took []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			tick := time.NewTicker(time.Second * workers / perSecond)
			defer tick.Stop()
			var mine []time.Duration
			for i := 0; time.Since(start) < runFor; i++ {
				<-tick.C
				ev := activity.Event{AccountID: e.user.AccountID, UserID: e.user.ID, Login: e.login, Action: activity.ActionUpload,
					Outcome: activity.Succeeded, Path: fmt.Sprintf("/My Files/w%d/file-%d.dat", w, i), ClientAddr: "198.51.100.7", SessionID: "0123456789ab"}
				ev.SetBytes(1024)
				ev.SetDuration(3 * time.Millisecond)
				q := time.Now()
				rec.Record(ev)
				mine = append(mine, time.Since(q))
			}
			mu.Lock()
			took = append(took, mine...)
			mu.Unlock()
		})
	}
	var heaps []uint64
	maxQueued := 0
	for time.Since(start) < runFor {
		time.Sleep(2 * time.Second)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heaps = append(heaps, ms.HeapAlloc>>10)
		maxQueued = max(maxQueued, rec.Stats().Queued)
	}
	wg.Wait()
	testkitWaitRecorded(t, rec, int64(len(took)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec.Close(ctx)
	slices.Sort(took)
	st := rec.Stats()
	t.Logf("%d events in %v (%.0f/s); Record p50 %v p99 %v max %v; recorder %+v; most queued at a sample %d; heap KiB %v",
		len(took), time.Since(start).Round(time.Millisecond), float64(len(took))/time.Since(start).Seconds(),
		took[len(took)/2], took[len(took)*99/100], took[len(took)-1], st, maxQueued, heaps)
	if st.Spilled != 0 {
		t.Errorf("%d events spilled", st.Spilled)
	}
}
