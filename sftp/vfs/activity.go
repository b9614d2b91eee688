package vfs

import (
	"errors"
	"time"
)

// Activity is told what a session does, for the account's activity log:
// one call per operation that changes the tree, per refusal for lack of
// rights, and per transfer when its handle closes (never per READ or
// WRITE). It runs on the request's path, so it must return quickly
// (queue, not write).
type Activity interface {
	Record(Op)
}

// OpKind is what an Op did.
type OpKind uint8

const (
	OpUpload   OpKind = iota + 1 // a handle open for writing, closed
	OpDownload                   // a handle open for reading only, closed
	OpRemove
	OpRmdir
	OpMkdir
	OpRename
	OpCopy // copy-data from Path to Target
)

// Outcome is how an Op ended.
type Outcome uint8

const (
	Done        Outcome = iota // it succeeded
	Failed                     // it failed; Op.Err says what the client was told
	Interrupted                // a transfer cut by the channel's end before its close
	Denied                     // refused for lack of rights (SSH_FX_PERMISSION_DENIED)
)

// Op is one operation of a session, as the activity log records it.
type Op struct {
	Kind    OpKind
	Outcome Outcome
	// At is when it ended, by the session's clock.
	At time.Time
	// Path is the path as the user sees it; Target where a rename or a
	// copy went.
	Path, Target string
	// FolderID is the project folder an upload went to, FolderPath the
	// file's path inside it ("/sub/report.pdf"); empty elsewhere.
	FolderID, FolderPath string
	// Bytes moved (transfers and copies) and how long the transfer took,
	// from open to close.
	Bytes    int64
	Duration time.Duration
	// Err is what the client was told when it failed or was refused.
	Err string
}

// record tells the session's Activity of op, if it has one.
func (s *Session) record(op Op) {
	if s.cfg.Activity == nil {
		return
	}
	op.At = s.cfg.Now()
	s.cfg.Activity.Record(op)
}

// recordResult records an operation on the client's path p that ended with
// err, which was (or will be) the client's answer.
func (s *Session) recordResult(kind OpKind, p, target string, err error) {
	if s.cfg.Activity == nil {
		return
	}
	op := Op{Kind: kind, Path: s.shownPath(p), Outcome: outcomeOf(err)}
	if target != "" {
		op.Target = s.shownPath(target)
	}
	if err != nil {
		op.Err = err.Error()
	}
	s.record(op)
}

// recordDenied records an open the user had no right to; other failed
// opens (a missing file, a name taken) are not activity.
func (s *Session) recordDenied(kind OpKind, p string, err error) {
	if s.cfg.Activity != nil && outcomeOf(err) == Denied {
		s.record(Op{Kind: kind, Path: s.shownPath(p), Outcome: Denied, Err: err.Error()})
	}
}

// shownPath is the client's path as the user's tree names it, cleaned;
// as sent when it does not clean.
func (s *Session) shownPath(p string) string {
	if vpath, err := s.cleanPath(p); err == nil {
		return vpath
	}
	return p
}

func outcomeOf(err error) Outcome {
	var st *statusError
	switch {
	case err == nil:
		return Done
	case errors.As(err, &st) && st.code == fxPermissionDenied:
		return Denied
	}
	return Failed
}

// recordTransfer records a file handle's transfer as it closes.
func (h *handle) recordTransfer(err error) {
	s := h.s
	if s.cfg.Activity == nil {
		return
	}
	moved := h.moved.Load()
	if !h.canWrite && h.copySource && moved == 0 {
		return // only the source of a copy-data, recorded as the copy
	}
	op := Op{Kind: OpDownload, Path: h.vpath, Bytes: moved, Duration: s.cfg.Now().Sub(h.opened)}
	if h.canWrite {
		op.Kind = OpUpload
		op.FolderID = h.folderID
		if h.folderID != "" {
			op.FolderPath = "/" + h.rel
			if h.rel == "." {
				op.FolderPath = "/"
			}
		}
	}
	switch {
	case h.cut:
		op.Outcome = Interrupted
	case err != nil:
		op.Outcome, op.Err = outcomeOf(err), err.Error()
	case h.removed.Load():
		op.Outcome, op.Err = Failed, "removed by its uploader before it was closed"
	}
	s.record(op)
}

// recordCopy records a copy-data of n bytes from src to dst.
func (s *Session) recordCopy(src, dst *handle, n int64, err error) {
	if s.cfg.Activity == nil {
		return
	}
	op := Op{Kind: OpCopy, Path: src.vpath, Target: dst.vpath, Bytes: n, Outcome: outcomeOf(err)}
	if err != nil {
		op.Err = err.Error()
	}
	s.record(op)
}
