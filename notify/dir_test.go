package notify

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDirSenderWritesParseableEML(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "mail")
	s, err := NewDirSender(dir, DefaultFrom)
	if err != nil {
		t.Fatal(err)
	}
	msg := testMessage()
	for range 2 { // a second attempt at the same email replaces the file
		if err := s.Send(context.Background(), msg); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), ".eml") {
		t.Fatalf("folder holds %v, want one .eml file", entries)
	}
	info, err := entries[0].Info()
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		t.Errorf("mode %v: others can read emails with one-time links", info.Mode().Perm())
	}
	raw, err := os.ReadFile(filepath.Join(dir, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	m := parseMail(t, raw)
	if got := m.subject(t); got != msg.Subject {
		t.Errorf("Subject = %q", got)
	}
	if to := m.Header.Get("To"); !strings.Contains(to, "ada@example.com") {
		t.Errorf("To = %q", to)
	}
	if from := m.Header.Get("From"); !strings.Contains(from, "noreply@skiff.localhost") {
		t.Errorf("From = %q", from)
	}
	if !strings.Contains(m.Text, "Login: ada-7") || !strings.Contains(m.HTML, "<b>ada-7</b>") {
		t.Errorf("bodies: %q %q", m.Text, m.HTML)
	}
}

func TestDirSenderNamesStayInFolder(t *testing.T) {
	dir := t.TempDir()
	s, err := NewDirSender(dir, DefaultFrom)
	if err != nil {
		t.Fatal(err)
	}
	msg := testMessage()
	msg.ID = "../../etc/passwd@x"
	if err := s.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || strings.ContainsAny(entries[0].Name(), "/\\") || strings.HasPrefix(entries[0].Name(), ".") {
		t.Errorf("folder holds %v", entries)
	}
}

func TestNewDirSenderRefusesBadFrom(t *testing.T) {
	if _, err := NewDirSender(t.TempDir(), "not an address"); err == nil {
		t.Error("a bad From address was accepted")
	}
}

func TestNewSenderPicksDirWithoutURL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mail")
	s, err := NewSender("", dir)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := s.(*DirSender); !ok || d.Dir() != dir {
		t.Errorf("NewSender(\"\", dir) = %T", s)
	}
	s, err = NewSender("smtp://mail.example.com?from=a@example.com", dir)
	if _, ok := s.(*SMTPSender); err != nil || !ok {
		t.Errorf("NewSender(smtp URL) = %T, %v", s, err)
	}
	if _, err := NewSender("smtp://mail.example.com", dir); err == nil {
		t.Error("NewSender with a bad URL succeeded")
	}
}
