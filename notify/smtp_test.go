package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func TestParseSMTPURL(t *testing.T) {
	tests := []struct {
		url  string
		want SMTPConfig
	}{
		{"smtp://mail.example.com?from=noreply@example.com", SMTPConfig{
			Host: "mail.example.com", Port: 587, From: "<noreply@example.com>",
			StartTLS: StartTLSRequired, Timeout: 30 * time.Second}},
		{"smtps://us%40er:p%3Ass@mail.example.com?from=Skiff+%3Cnoreply@example.com%3E&timeout=5s", SMTPConfig{
			Host: "mail.example.com", Port: 465, Username: "us@er", Password: "p:ss", Auth: "auto",
			From: `"Skiff" <noreply@example.com>`, ImplicitTLS: true, StartTLS: StartTLSRequired, Timeout: 5 * time.Second}},
		{"smtp://u:pw@[::1]:2525?from=a@example.com&starttls=Opportunistic&auth=LOGIN", SMTPConfig{
			Host: "::1", Port: 2525, Username: "u", Password: "pw", Auth: "login", From: "<a@example.com>",
			StartTLS: StartTLSOpportunistic, Timeout: 30 * time.Second}},
		{"smtp://localhost:1025/?from=a@example.com&starttls=off", SMTPConfig{
			Host: "localhost", Port: 1025, From: "<a@example.com>", StartTLS: StartTLSOff, Timeout: 30 * time.Second}},
	}
	for _, tt := range tests {
		got, err := ParseSMTPURL(tt.url)
		if err != nil {
			t.Errorf("ParseSMTPURL(%q): %v", tt.url, err)
			continue
		}
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tt.want) {
			t.Errorf("ParseSMTPURL(%q)\n got %#v\nwant %#v", tt.url, got, tt.want)
		}
	}
}

func TestParseSMTPURLErrors(t *testing.T) {
	const secret = "s3cr3t-pw"
	tests := []struct{ url, want string }{
		{"", "scheme must be smtp:// or smtps://"},
		{"mail.example.com:25", "scheme must be smtp:// or smtps://"},
		{"http://mail.example.com?from=a@example.com", `not "http://"`},
		{"smtp://?from=a@example.com", "no host name"},
		{"smtp:mail.example.com?from=a@example.com", "no host name"},
		{"smtp://mail.example.com:0?from=a@example.com", "not between 1 and 65535"},
		{"smtp://mail.example.com:70000?from=a@example.com", "not between 1 and 65535"},
		{"smtp://u:" + secret + "@mail.example.com:99x?from=a@example.com", "not a valid URL"},
		{"smtp://u:" + secret + "@mail.example.com", "missing from=ADDRESS"},
		{"smtp://mail.example.com?from=not-an-address", `from "not-an-address" is not an email address`},
		{"smtp://mail.example.com?from=a@example.com&from=b@example.com", "from is given 2 times"},
		{"smtp://mail.example.com?from=a@example.com&starttls=yes", "starttls must be required, opportunistic or off"},
		{"smtps://mail.example.com?from=a@example.com&starttls=off", "starttls does not apply to smtps://"},
		{"smtp://mail.example.com?from=a@example.com&auth=plain", "auth=plain needs a user name"},
		{"smtp://u:" + secret + "@mail.example.com?from=a@example.com&auth=rot13", `unknown auth mechanism "rot13"`},
		{"smtp://u:" + secret + "@mail.example.com?from=a@example.com&auth=none", `unknown auth mechanism "none"`},
		{"smtp://mail.example.com?from=a@example.com&timeout=soon", `timeout "soon" is not a positive duration`},
		{"smtp://mail.example.com?from=a@example.com&startls=off", `unknown parameter "startls"`},
		{"smtp://mail.example.com/relay?from=a@example.com", `unexpected path "/relay"`},
		{"smtp://:" + secret + "@mail.example.com?from=a@example.com", "a password without a user name"},
	}
	for _, tt := range tests {
		_, err := ParseSMTPURL(tt.url)
		if err == nil {
			t.Errorf("ParseSMTPURL(%q) succeeded, want an error containing %q", tt.url, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseSMTPURL(%q) = %q, want it to contain %q", tt.url, err, tt.want)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("ParseSMTPURL(%q) error %q reveals the password", tt.url, err)
		}
	}
}

func TestSMTPConfigStringHidesPassword(t *testing.T) {
	c, err := ParseSMTPURL("smtp://user:hunter2@mail.example.com?from=a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if s := c.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "mail.example.com:587") {
		t.Errorf("String() = %q, want the host without the password", s)
	}
}

// newTestSMTPSender connects to ts with the URL query query.
func newTestSMTPSender(t *testing.T, ts *testSMTP, userinfo, query string, tlsConfig *tls.Config) *SMTPSender {
	t.Helper()
	c, err := ParseSMTPURL(fmt.Sprintf("smtp://%s%s:%d?from=Skiff+%%3Cnoreply@example.com%%3E&timeout=10s&%s", userinfo, ts.Host, ts.Port, query))
	if err != nil {
		t.Fatal(err)
	}
	c.TLSConfig = tlsConfig
	s, err := NewSMTPSender(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testMessage() *Message {
	return &Message{
		ID: "0b6e1f9e-2f7d-4d0b-9c55-3f4f7a1a1b2c@skiff.test", To: "ada@example.com",
		Subject: "Grüße: your SFTP access", Text: "Login: ada-7\n", HTML: "<p>Login: <b>ada-7</b></p>",
		Date: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

func TestSMTPSenderDelivers(t *testing.T) {
	ts := startSMTP(t, smtpOptions{})
	s := newTestSMTPSender(t, ts, "", "starttls=off", nil)
	if err := s.Send(context.Background(), testMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	mails := ts.Mails()
	if len(mails) != 1 {
		t.Fatalf("server got %d messages, want 1", len(mails))
	}
	got := mails[0]
	if got.From != "noreply@example.com" || len(got.To) != 1 || got.To[0] != "ada@example.com" {
		t.Errorf("envelope from %q to %q", got.From, got.To)
	}
	m := parseMail(t, got.Raw)
	if s := m.subject(t); s != "Grüße: your SFTP access" {
		t.Errorf("Subject = %q", s)
	}
	if id := m.Header.Get("Message-Id"); id != "<0b6e1f9e-2f7d-4d0b-9c55-3f4f7a1a1b2c@skiff.test>" {
		t.Errorf("Message-ID = %q", id)
	}
	if from := m.Header.Get("From"); !strings.Contains(from, "noreply@example.com") {
		t.Errorf("From = %q", from)
	}
	if d, err := m.Header.Date(); err != nil || !d.Equal(testMessage().Date) {
		t.Errorf("Date = %v, %v", d, err)
	}
	if m.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("Auto-Submitted = %q", m.Header.Get("Auto-Submitted"))
	}
	if !strings.Contains(m.Text, "Login: ada-7") || !strings.Contains(m.HTML, "<b>ada-7</b>") {
		t.Errorf("bodies: text %q html %q", m.Text, m.HTML)
	}
}

func TestSMTPSenderStartTLSAndAuth(t *testing.T) {
	serverTLS, roots := selfSigned(t)
	ts := startSMTP(t, smtpOptions{tls: serverTLS, users: map[string]string{"skiff": "p@ss word"}})

	// Default policy: STARTTLS is mandatory and the certificate is checked.
	s := newTestSMTPSender(t, ts, "skiff:p%40ss%20word@", "auth=plain", &tls.Config{RootCAs: roots})
	if err := s.Send(context.Background(), testMessage()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	mails := ts.Mails()
	if len(mails) != 1 || !mails[0].TLS || mails[0].User != "skiff" {
		t.Fatalf("want one message over TLS from user skiff, got %+v", mails)
	}

	// A certificate the client does not trust is a failure, not a fallback to plain text.
	untrusting := newTestSMTPSender(t, ts, "skiff:p%40ss%20word@", "", nil) // system roots
	err := untrusting.Send(context.Background(), testMessage())
	var de *DeliveryError
	if !errors.As(err, &de) || de.Permanent {
		t.Fatalf("untrusted certificate: err = %v, want a temporary DeliveryError", err)
	}

	// Wrong password: refused, temporary (the deployment must fix its configuration).
	wrong := newTestSMTPSender(t, ts, "skiff:nope@", "auth=plain", &tls.Config{RootCAs: roots})
	if err := wrong.Send(context.Background(), testMessage()); !errors.As(err, &de) || de.Permanent {
		t.Fatalf("wrong password: err = %v, want a temporary DeliveryError", err)
	}
	if n := len(ts.Mails()); n != 1 {
		t.Errorf("server has %d messages, want still 1", n)
	}
}

func TestSMTPSenderRequiredStartTLSRefusesPlainServer(t *testing.T) {
	ts := startSMTP(t, smtpOptions{}) // no STARTTLS on offer
	s := newTestSMTPSender(t, ts, "", "starttls=required", nil)
	err := s.Send(context.Background(), testMessage())
	var de *DeliveryError
	if !errors.As(err, &de) || de.Permanent {
		t.Fatalf("err = %v, want a temporary DeliveryError", err)
	}
	if n := len(ts.Mails()); n != 0 {
		t.Errorf("message sent in plain text to a server without STARTTLS")
	}
	// Opportunistic sends anyway.
	s = newTestSMTPSender(t, ts, "", "starttls=opportunistic", nil)
	if err := s.Send(context.Background(), testMessage()); err != nil {
		t.Fatalf("opportunistic: %v", err)
	}
	if n := len(ts.Mails()); n != 1 {
		t.Errorf("server has %d messages, want 1", n)
	}
}

func TestSMTPSenderClassifiesRefusals(t *testing.T) {
	tests := []struct {
		name      string
		opts      smtpOptions
		permanent bool
		reason    string
	}{
		{"unknown recipient", smtpOptions{rcpt: func(int, string) error {
			return smtpReply(550, smtp.EnhancedCode{5, 1, 1}, "no such user here")
		}}, true, "the mail server refused the recipient (550 5.1.1)"},
		{"mailbox busy", smtpOptions{rcpt: func(int, string) error {
			return smtpReply(450, smtp.EnhancedCode{4, 2, 1}, "try later")
		}}, false, "the mail server refused the recipient (450 4.2.1)"},
		{"content refused", smtpOptions{data: func(int) error {
			return smtpReply(554, smtp.EnhancedCode{5, 6, 0}, "spam")
		}}, true, "the mail server refused the message (554 5.6.0)"},
		{"greylisted", smtpOptions{data: func(int) error {
			return smtpReply(451, smtp.EnhancedCode{4, 7, 1}, "greylisted")
		}}, false, "the mail server refused the message (451 4.7.1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startSMTP(t, tt.opts)
			err := newTestSMTPSender(t, ts, "", "starttls=off", nil).Send(context.Background(), testMessage())
			var de *DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a DeliveryError", err)
			}
			if de.Permanent != tt.permanent || de.Reason != tt.reason {
				t.Errorf("got permanent=%v reason %q, want %v %q", de.Permanent, de.Reason, tt.permanent, tt.reason)
			}
			if strings.Contains(de.Reason, "127.0.0.1") {
				t.Errorf("reason %q names the server", de.Reason)
			}
		})
	}

	// Nobody listening.
	c, err := ParseSMTPURL("smtp://127.0.0.1:1?from=a@example.com&starttls=off&timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSMTPSender(c)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), testMessage())
	var de *DeliveryError
	if !errors.As(err, &de) || de.Permanent || de.Reason != "the mail server could not be reached" {
		t.Errorf("no server: err = %v", err)
	}
}
