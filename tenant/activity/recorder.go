package activity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/skiffhq/skiff/tenant"
)

// Recorder writes a node's activity events to PostgreSQL without slowing
// the sessions down: Record puts an event in a bounded in-memory queue and
// returns; one goroutine writes the queue in batches, one multi-row INSERT
// (a single statement whatever the batch's size) every FlushEvery or every
// BatchSize events, whichever comes first. COPY is not an option: PostgreSQL
// refuses COPY FROM into a table under row-level security.
//
// When the queue is full (the database is slow or down), Record waits up to
// FullWait for room, once: if none frees up, the recorder is overflowing and
// from then on Record does not wait at all but spills the event to the
// server log (a WARN line "sftp activity not recorded" with every field of
// the event) and counts it (Stats.Spilled), until the queue is half empty
// again. So a database outage costs each transfer nothing beyond one
// FullWait, and no event is lost silently: what the table lacks, the log has.
// A batch the database refuses as malformed (never expected) is spilled the
// same way; a batch that fails for any other reason is retried, with
// backoff, until it is written or the recorder is closed.
//
// Close writes what is queued, within its context's deadline, and spills
// whatever it could not write.
type Recorder struct {
	db  *tenant.DB
	cfg RecorderConfig
	log *slog.Logger

	q        chan Event
	stop     chan struct{}
	done     chan struct{}
	start    sync.Once
	stopOnce sync.Once
	closeCtx atomic.Pointer[context.Context] // Close's deadline, for the last writes

	// sending is held (read) by each Record while it queues and (write)
	// by Close as it sets closed: no event is queued after the drain.
	sending   sync.RWMutex
	closed    atomic.Bool
	overflow  atomic.Bool
	recorded  atomic.Int64
	inserts   atomic.Int64
	spilled   atomic.Int64
	failures  atomic.Int64
	lastError atomic.Pointer[string]
}

// RecorderConfig sets a Recorder's node name and limits; zero fields take
// the defaults.
type RecorderConfig struct {
	// Node names this node in every event (the host name by default).
	Node string
	// QueueSize bounds the events waiting to be written (DefaultQueueSize).
	QueueSize int
	// BatchSize is the most events one INSERT writes (DefaultBatchSize).
	BatchSize int
	// FlushEvery is the longest an event waits for its batch (DefaultFlushEvery).
	FlushEvery time.Duration
	// FullWait is how long Record waits for room in a full queue before the
	// recorder starts spilling to the log (DefaultFullWait).
	FullWait time.Duration
	// Logger receives spilled events and write failures (slog.Default when nil).
	Logger *slog.Logger
}

// The Recorder's defaults. A queued event takes about 400 bytes, so a full
// queue holds about 3 MiB.
const (
	DefaultQueueSize  = 8192
	DefaultBatchSize  = 1000
	DefaultFlushEvery = time.Second
	DefaultFullWait   = 250 * time.Millisecond
)

// NewRecorder returns a recorder writing to db; Start it, and Close it at
// shutdown after the SFTP server has stopped.
func NewRecorder(db *tenant.DB, cfg RecorderConfig) *Recorder {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = DefaultFlushEvery
	}
	if cfg.FullWait <= 0 {
		cfg.FullWait = DefaultFullWait
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Recorder{db: db, cfg: cfg, log: log, q: make(chan Event, cfg.QueueSize),
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Start starts the writer; a second call does nothing.
func (r *Recorder) Start() {
	r.start.Do(func() { go r.run() })
}

// Node is the node name events are recorded with.
func (r *Recorder) Node() string { return r.cfg.Node }

// Record queues ev; it sets the node and, when zero, the time. It waits
// only when the queue is full, at most FullWait (see Recorder).
func (r *Recorder) Record(ev Event) {
	if ev.Node == "" {
		ev.Node = r.cfg.Node
	}
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	r.sending.RLock()
	defer r.sending.RUnlock()
	if r.closed.Load() {
		r.spill("the activity recorder is closed", ev)
		return
	}
	select {
	case r.q <- ev:
		return
	default:
	}
	if !r.overflow.Load() {
		t := time.NewTimer(r.cfg.FullWait)
		select {
		case r.q <- ev:
			t.Stop()
			return
		case <-t.C:
		}
		if !r.overflow.Swap(true) {
			r.log.Warn("sftp activity queue full: events go to this log until the database catches up",
				"queue", r.cfg.QueueSize, "last_error", r.LastError())
		}
	}
	r.spill("the activity queue is full", ev)
}

// Stats are a recorder's counters since it started.
type Stats struct {
	Recorded int64 // events written to the database
	Inserts  int64 // INSERT statements that wrote them
	Spilled  int64 // events written to the log instead
	Failures int64 // failed writes (each retried or spilled)
	Queued   int   // events waiting now
}

// Stats returns the recorder's counters.
func (r *Recorder) Stats() Stats {
	return Stats{Recorded: r.recorded.Load(), Inserts: r.inserts.Load(), Spilled: r.spilled.Load(),
		Failures: r.failures.Load(), Queued: len(r.q)}
}

// LastError is the last write failure's text, "" if none.
func (r *Recorder) LastError() string {
	if p := r.lastError.Load(); p != nil {
		return *p
	}
	return ""
}

// Close stops taking events (later ones are spilled to the log), writes
// those queued until ctx ends, and spills the rest. Safe to call twice.
func (r *Recorder) Close(ctx context.Context) error {
	r.Start() // a recorder never started still writes what it queued
	r.stopOnce.Do(func() {
		r.closeCtx.Store(&ctx)
		r.sending.Lock()
		r.closed.Store(true)
		r.sending.Unlock()
		close(r.stop)
	})
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Recorder) run() {
	defer close(r.done)
	batch := make([]Event, 0, r.cfg.BatchSize)
	tick := time.NewTicker(r.cfg.FlushEvery)
	defer tick.Stop()
	for {
		select {
		case ev := <-r.q:
			batch = append(batch, ev)
			if len(batch) < r.cfg.BatchSize {
				continue
			}
		case <-tick.C:
			if len(batch) == 0 {
				continue
			}
		case <-r.stop:
			r.drain(batch)
			return
		}
		r.write(batch)
		batch = batch[:0]
		if r.overflow.Load() && len(r.q) < cap(r.q)/2 {
			r.overflow.Store(false)
			r.log.Info("sftp activity queue has room again: events are recorded in the database")
		}
	}
}

// drain writes everything queued at Close. Record no longer queues (closed
// is set before stop closes), so the queue only shrinks.
func (r *Recorder) drain(batch []Event) {
	for {
		select {
		case ev := <-r.q:
			batch = append(batch, ev)
			if len(batch) < r.cfg.BatchSize {
				continue
			}
		default:
		}
		if len(batch) == 0 {
			return
		}
		r.write(batch)
		batch = batch[:0]
	}
}

// write inserts batch, retrying with backoff until it is written, the
// database refuses its data, or Close's deadline passes.
func (r *Recorder) write(batch []Event) {
	backoff := 100 * time.Millisecond
	for {
		ctx := context.Background()
		if p := r.closeCtx.Load(); p != nil {
			ctx = *p
		}
		err := r.insert(ctx, batch)
		if err == nil {
			r.recorded.Add(int64(len(batch)))
			return
		}
		r.failures.Add(1)
		msg := err.Error()
		r.lastError.Store(&msg)
		var pqe *pq.Error
		if errors.As(err, &pqe) && (strings.HasPrefix(string(pqe.Code), "22") || strings.HasPrefix(string(pqe.Code), "23")) {
			r.log.Error("sftp activity batch refused by the database; its events follow in this log", "events", len(batch), "err", err)
			r.spillAll("the database refused the batch", batch)
			return
		}
		if ctx.Err() != nil {
			r.spillAll("shutdown came before the database answered", batch)
			return
		}
		r.log.Warn("sftp activity could not be written; retrying", "events", len(batch), "retry_in", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// insertQuery writes a batch in one statement: one array per column,
// unnested into rows. Its text is the same for any batch size, so the
// server plans it once per connection.
const insertQuery = `INSERT INTO sftp_activity (account_id, at, user_id, login, action, outcome, path, target_path,
	bytes, duration_ms, reason, client_addr, node, session_id, folder_id, folder_path)
	SELECT a::uuid, t::timestamptz, u::uuid, l, ac, o, p, tp, nullif(b, -1), nullif(d, -1), r, c, n, s,
		nullif(f, '')::uuid, CASE WHEN f = '' THEN NULL ELSE fp END
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
		$9::bigint[], $10::bigint[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[])
		AS x(a, t, u, l, ac, o, p, tp, b, d, r, c, n, s, f, fp)`

func (r *Recorder) insert(ctx context.Context, batch []Event) error {
	n := len(batch)
	cols := make([][]string, 14)
	for i := range cols {
		cols[i] = make([]string, n)
	}
	bytes, durations := make([]int64, n), make([]int64, n)
	for i := range batch {
		e := &batch[i]
		cols[0][i], cols[1][i], cols[2][i] = e.AccountID, e.At.UTC().Format(time.RFC3339Nano), e.UserID
		cols[3][i], cols[4][i], cols[5][i] = clean(e.Login, 256), string(e.Action), string(e.Outcome)
		cols[6][i], cols[7][i], cols[8][i] = clean(e.Path, 4096), clean(e.TargetPath, 4096), clean(e.Reason, 1024)
		cols[9][i], cols[10][i], cols[11][i] = clean(e.ClientAddr, 64), clean(e.Node, 256), clean(e.SessionID, 64)
		bytes[i], durations[i] = orMinus1(e.Bytes), orMinus1(e.DurationMS)
		if e.FolderID != nil {
			cols[12][i], cols[13][i] = *e.FolderID, clean(deref(e.FolderPath), 4096)
		}
	}
	r.inserts.Add(1)
	return r.db.CrossTenant(ctx, tenant.ScopeActivity, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, insertQuery, pq.Array(cols[0]), pq.Array(cols[1]), pq.Array(cols[2]),
			pq.Array(cols[3]), pq.Array(cols[4]), pq.Array(cols[5]), pq.Array(cols[6]), pq.Array(cols[7]),
			pq.Array(bytes), pq.Array(durations), pq.Array(cols[8]), pq.Array(cols[9]), pq.Array(cols[10]),
			pq.Array(cols[11]), pq.Array(cols[12]), pq.Array(cols[13]))
		if err != nil {
			return fmt.Errorf("record sftp activity: %w", err)
		}
		return nil
	})
}

// clean makes s storable as PostgreSQL text: valid UTF-8, no NUL, at most
// max bytes. Paths come from clients and may be anything.
func clean(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "")
	}
	return s
}

func orMinus1(p *int64) int64 {
	if p == nil || *p < 0 {
		return -1
	}
	return *p
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (r *Recorder) spillAll(why string, batch []Event) {
	for i := range batch {
		r.spill(why, batch[i])
	}
}

// spill writes ev to the log instead of the database, with every field.
func (r *Recorder) spill(why string, ev Event) {
	r.spilled.Add(1)
	attrs := []any{"why", why, "at", ev.At.UTC().Format(time.RFC3339Nano), "account", ev.AccountID, "user", ev.UserID,
		"login", ev.Login, "action", string(ev.Action), "outcome", string(ev.Outcome), "path", ev.Path,
		"target_path", ev.TargetPath, "reason", ev.Reason, "client_addr", ev.ClientAddr, "node", ev.Node,
		"session", ev.SessionID}
	if ev.Bytes != nil {
		attrs = append(attrs, "bytes", *ev.Bytes)
	}
	if ev.DurationMS != nil {
		attrs = append(attrs, "duration_ms", *ev.DurationMS)
	}
	if ev.FolderID != nil {
		attrs = append(attrs, "folder", *ev.FolderID, "folder_path", deref(ev.FolderPath))
	}
	r.log.Warn("sftp activity not recorded", attrs...)
}
