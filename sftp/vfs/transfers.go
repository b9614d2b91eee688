package vfs

// Transfer is a file a session has open: a download or an upload under
// way. A session with none is idle, which is what lets a shutting-down
// server close it at once (see sftp.Server.Shutdown).
type Transfer struct {
	Path   string // the client's path (virtual)
	Upload bool   // opened for writing
	Bytes  int64  // read or written through the handle so far
}

// Transfers lists the files the session has open on all its channels.
func (s *Session) Transfers() []Transfer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Transfer, 0, len(s.files))
	for h := range s.files {
		out = append(out, Transfer{Path: h.vpath, Upload: h.canWrite, Bytes: h.moved.Load()})
	}
	return out
}

// Busy reports whether the session has a file open, a request being
// carried out or replies not yet sent: closing it then would cut a
// transfer, or lose the answer to a request (the OK of the close that
// commits an upload).
func (s *Session) Busy() bool {
	s.mu.Lock()
	if len(s.files) > 0 {
		s.mu.Unlock()
		return true
	}
	chans := make([]*conn, 0, len(s.channels))
	for c := range s.channels {
		chans = append(chans, c)
	}
	s.mu.Unlock()
	for _, c := range chans {
		if c.busy() {
			return true
		}
	}
	return false
}

// busy reports whether the channel is carrying out a request or has
// replies to send.
func (c *conn) busy() bool {
	if c.dispatching.Load() {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unsent > 0
}

func (s *Session) trackFile(h *handle) {
	h.opened = s.cfg.Now()
	s.mu.Lock()
	s.files[h] = struct{}{}
	s.mu.Unlock()
}

func (s *Session) forgetFile(h *handle) {
	s.mu.Lock()
	if _, ok := s.files[h]; ok {
		delete(s.files, h)
		if h.canWrite {
			s.doneIn += h.moved.Load()
		} else {
			s.doneOut += h.moved.Load()
		}
	}
	s.mu.Unlock()
}

// Traffic is the file data the session has moved so far, open files
// included: uploaded (in: through handles opened for writing) and
// downloaded (out). It costs nothing per packet: each handle counts its
// own bytes, and a closed handle's count is added here once.
func (s *Session) Traffic() (in, out int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, out = s.doneIn, s.doneOut
	for h := range s.files {
		if h.canWrite {
			in += h.moved.Load()
		} else {
			out += h.moved.Load()
		}
	}
	return in, out
}
