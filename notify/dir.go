package notify

import (
	"context"
	"errors"
	"fmt"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
)

// DefaultFrom is the From address of a deployment that does not set one.
const DefaultFrom = "Skiff <noreply@skiff.localhost>"

// DirSender writes each message as an .eml file (the full RFC 5322 message)
// into a folder, for development and for deployments without a mail server.
// The file is named after the Message-ID, so sending the same outbox email
// twice leaves one file.
type DirSender struct {
	dir  string
	from string
}

var _ Sender = (*DirSender)(nil)

// NewDirSender makes dir (private to this user: emails carry one-time links)
// and writes messages from the address from.
func NewDirSender(dir, from string) (*DirSender, error) {
	if dir == "" {
		return nil, errors.New("mail folder: no path")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mail folder: %w", err)
	}
	// Check the address once here rather than fail every message.
	if _, err := netmail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("mail folder: From address %q: %w", from, err)
	}
	return &DirSender{dir: dir, from: from}, nil
}

// Dir is the folder messages are written to.
func (d *DirSender) Dir() string { return d.dir }

// Send writes msg atomically: readers never see a partial file.
func (d *DirSender) Send(_ context.Context, msg *Message) error {
	m, err := msg.build(d.from)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.dir, ".writing-*.eml")
	if err != nil {
		return fmt.Errorf("write email: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this is a no-op
	if _, err := m.WriteTo(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write email: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write email: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write email: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(d.dir, emlName(msg.ID))); err != nil {
		return fmt.Errorf("write email: %w", err)
	}
	return syncDir(d.dir)
}

// emlName turns a Message-ID into a file name that cannot leave the folder.
func emlName(id string) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("-_.@", r):
			return r
		}
		return '_'
	}, id)
	return strings.TrimLeft(safe, ".") + ".eml"
}

// syncDir makes the rename durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write email: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write email: %w", err)
	}
	return nil
}
