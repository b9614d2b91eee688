package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wneessen/go-mail"
)

// Message is one email ready to hand over. The sender adds From.
type Message struct {
	// ID is the Message-ID without angle brackets. It is the same for every
	// attempt at one outbox email, so a duplicate is recognisable as one.
	ID      string
	To      string
	Subject string
	Text    string
	HTML    string
	Date    time.Time
}

// Sender hands a message to the mail system. An error that is a
// *DeliveryError says whether trying again can help and why it failed in
// words fit for the account's administrators; any other error is treated as
// temporary.
type Sender interface {
	Send(ctx context.Context, msg *Message) error
}

// DeliveryError is a failed hand-over. Reason is safe to show to the
// account's administrators (it names no server, address or credential); Err
// is the cause, for logs.
type DeliveryError struct {
	Reason    string
	Permanent bool // retrying the same message cannot succeed
	// Unavailable: the mail system failed, not this message (the server
	// could not be reached, broke the connection, or refused the session
	// before the recipient: greeting, TLS, authentication, sender). Every email would fail alike, so the worker
	// keeps this one in its place and pauses (Worker.SendDue).
	Unavailable bool
	Err         error
}

func (e *DeliveryError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// build makes the RFC 5322 message: multipart/alternative with the text part
// first, so clients that cannot show HTML show the text.
func (m *Message) build(from string) (*mail.Msg, error) {
	if m.ID == "" {
		return nil, errors.New("message has no ID")
	}
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("from address %q: %w", from, err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, &DeliveryError{Reason: "the recipient address is not valid", Permanent: true, Err: err}
	}
	msg.Subject(m.Subject)
	msg.SetMessageIDWithValue(m.ID)
	msg.SetDateWithValue(m.Date)
	// RFC 3834: tells autoresponders not to answer.
	msg.SetGenHeader(mail.Header("Auto-Submitted"), "auto-generated")
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	return msg, nil
}

// NewSender returns an SMTPSender for smtpURL (see ParseSMTPURL) or, when
// smtpURL is empty, a DirSender writing into mailDir from DefaultFrom.
func NewSender(smtpURL, mailDir string) (Sender, error) {
	if smtpURL == "" {
		return NewDirSender(mailDir, DefaultFrom)
	}
	c, err := ParseSMTPURL(smtpURL)
	if err != nil {
		return nil, err
	}
	return NewSMTPSender(c)
}
