package notify

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
)

// StartTLS says whether a plain smtp:// connection upgrades to TLS.
type StartTLS string

const (
	StartTLSRequired      StartTLS = "required"      // refuse to send without STARTTLS (the default)
	StartTLSOpportunistic StartTLS = "opportunistic" // upgrade when the server offers it
	StartTLSOff           StartTLS = "off"           // never upgrade: local mail catchers only
)

// SMTPConfig is how to reach the mail server.
type SMTPConfig struct {
	Host        string
	Port        int
	Username    string // empty: no authentication
	Password    string
	Auth        string // SASL mechanism ("plain", "login", "cram-md5", ...); "auto" picks the best offered
	From        string // the From address, e.g. "Skiff <noreply@example.com>"
	ImplicitTLS bool   // smtps://: TLS from the first byte
	StartTLS    StartTLS
	Timeout     time.Duration // connection and command timeout
	// TLSConfig overrides the TLS settings (for a private CA); nil means the
	// system roots and Host as the server name.
	TLSConfig *tls.Config
}

// Default ports: submission with STARTTLS, and submissions with implicit TLS.
const (
	defaultSMTPPort  = 587
	defaultSMTPSPort = 465
	defaultTimeout   = 30 * time.Second
)

// ParseSMTPURL reads a mail server URL:
//
//	smtp://[user:password@]host[:port]?from=ADDRESS[&starttls=required|opportunistic|off][&auth=MECH][&timeout=30s]
//	smtps://[user:password@]host[:port]?from=ADDRESS[&auth=MECH][&timeout=30s]
//
// smtp:// defaults to port 587 and mandatory STARTTLS, smtps:// to port 465.
// User and password are URL-encoded; with them, auth defaults to "auto".
// Errors say what to fix and never repeat the password.
func ParseSMTPURL(raw string) (SMTPConfig, error) {
	fail := func(format string, args ...any) (SMTPConfig, error) {
		return SMTPConfig{}, fmt.Errorf("SMTP URL: "+format, args...)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, password included: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail("not a valid URL: %v", err)
	}
	c := SMTPConfig{StartTLS: StartTLSRequired, Timeout: defaultTimeout}
	switch u.Scheme {
	case "smtp":
		c.Port = defaultSMTPPort
	case "smtps":
		c.ImplicitTLS, c.Port = true, defaultSMTPSPort
	default:
		return fail("the scheme must be smtp:// or smtps://, not %q", u.Scheme+"://")
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return fail("no host name (want smtp://host:port?from=...)")
	}
	if u.Path != "" && u.Path != "/" {
		return fail("unexpected path %q", u.Path)
	}
	c.Host = u.Hostname()
	if p := u.Port(); p != "" {
		c.Port, err = strconv.Atoi(p)
		if err != nil || c.Port < 1 || c.Port > 65535 {
			return fail("port %q is not between 1 and 65535", p)
		}
	}
	if u.User != nil {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
		if c.Username == "" {
			return fail("a password without a user name")
		}
		c.Auth = "auto"
	}

	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fail("bad query: %v", err)
	}
	for key, values := range q {
		if len(values) != 1 {
			return fail("%s is given %d times", key, len(values))
		}
		v := values[0]
		switch key {
		case "from":
			a, err := netmail.ParseAddress(v)
			if err != nil {
				return fail("from %q is not an email address", v)
			}
			c.From = a.String()
		case "starttls":
			switch StartTLS(strings.ToLower(v)) {
			case StartTLSRequired, StartTLSOpportunistic, StartTLSOff:
				c.StartTLS = StartTLS(strings.ToLower(v))
			default:
				return fail("starttls must be required, opportunistic or off, not %q", v)
			}
			if c.ImplicitTLS {
				return fail("starttls does not apply to smtps://, which is TLS from the start")
			}
		case "auth":
			if c.Username == "" {
				return fail("auth=%s needs a user name (smtp://user:password@host)", v)
			}
			var t mail.SMTPAuthType
			if err := t.UnmarshalString(v); err != nil || t == mail.SMTPAuthCustom || t == mail.SMTPAuthNoAuth {
				return fail("unknown auth mechanism %q", v)
			}
			c.Auth = strings.ToLower(v)
		case "timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fail("timeout %q is not a positive duration such as 30s", v)
			}
			c.Timeout = d
		default:
			return fail("unknown parameter %q (known: from, starttls, auth, timeout)", key)
		}
	}
	if c.From == "" {
		return fail("missing from=ADDRESS, the address emails are sent from")
	}
	return c, nil
}

// String shows the configuration with the password hidden, for logs.
func (c SMTPConfig) String() string {
	u := url.URL{Scheme: "smtp", Host: c.Host + ":" + strconv.Itoa(c.Port)}
	if c.ImplicitTLS {
		u.Scheme = "smtps"
	}
	if c.Username != "" {
		u.User = url.UserPassword(c.Username, "xxxxx")
	}
	q := url.Values{"from": {c.From}}
	if !c.ImplicitTLS {
		q.Set("starttls", string(c.StartTLS))
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// SMTPSender delivers messages to a mail server, one connection per message.
type SMTPSender struct {
	from   string
	client *mail.Client
}

var _ Sender = (*SMTPSender)(nil)

// NewSMTPSender checks c and prepares a client; it does not connect.
func NewSMTPSender(c SMTPConfig) (*SMTPSender, error) {
	if c.From == "" {
		return nil, errors.New("SMTP: no From address")
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	opts := []mail.Option{mail.WithPort(c.Port), mail.WithTimeout(timeout)}
	if c.TLSConfig != nil {
		tc := c.TLSConfig.Clone()
		if tc.ServerName == "" {
			tc.ServerName = c.Host
		}
		opts = append(opts, mail.WithTLSConfig(tc))
	}
	switch {
	case c.ImplicitTLS:
		opts = append(opts, mail.WithSSL())
	case c.StartTLS == StartTLSOpportunistic:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	case c.StartTLS == StartTLSOff:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if c.Username != "" {
		var t mail.SMTPAuthType
		if err := t.UnmarshalString(cmp.Or(c.Auth, "auto")); err != nil {
			return nil, fmt.Errorf("SMTP: %w", err)
		}
		opts = append(opts, mail.WithSMTPAuth(t), mail.WithUsername(c.Username), mail.WithPassword(c.Password))
	}
	client, err := mail.NewClient(c.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("SMTP: %w", err)
	}
	return &SMTPSender{from: c.From, client: client}, nil
}

// Send delivers msg. Once the server has accepted the message, later hiccups
// (RSET, QUIT) do not count as failures: reporting them would resend it.
func (s *SMTPSender) Send(ctx context.Context, msg *Message) error {
	m, err := msg.build(s.from)
	if err != nil {
		return err
	}
	err = s.client.DialAndSendWithContext(ctx, m)
	if err == nil || m.IsDelivered() {
		return nil
	}
	return classifySMTP(err)
}

// classifySMTP words a failure for administrators and decides whether to
// retry. Only the server's definite refusal of this recipient or content
// (5xx to RCPT or DATA) is permanent; connection, TLS, authentication and
// sender problems (anything before the recipient) are the deployment's to
// fix, so the email waits for that in its place (Unavailable).
func classifySMTP(err error) error {
	var se *mail.SendError
	if !errors.As(err, &se) {
		return &DeliveryError{Reason: "the mail server could not be reached", Unavailable: true, Err: err}
	}
	if se.ErrorCode() == 0 { // not a server reply: the connection broke
		return &DeliveryError{Reason: "the connection to the mail server failed", Unavailable: true, Err: err}
	}
	code := strconv.Itoa(se.ErrorCode())
	if esc := se.EnhancedStatusCode(); esc != "" {
		code += " " + esc
	}
	switch se.Reason {
	case mail.ErrSMTPRcptTo:
		return &DeliveryError{Reason: "the mail server refused the recipient (" + code + ")", Permanent: !se.IsTemp(), Err: err}
	case mail.ErrSMTPData, mail.ErrSMTPDataClose:
		return &DeliveryError{Reason: "the mail server refused the message (" + code + ")", Permanent: !se.IsTemp(), Err: err}
	}
	return &DeliveryError{Reason: "the mail server refused to take the email (" + code + ")", Unavailable: true, Err: err}
}
