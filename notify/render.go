// Package notify turns outbox emails into messages and delivers them: the
// templates, the senders (SMTP, or .eml files in a folder) and the worker that
// drains the outbox.
package notify

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"math"
	"net/url"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/skiffhq/skiff/tenant/outbox"
)

//go:embed templates
var templateFiles embed.FS

// Rendered is an email's subject and its two bodies.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
}

// linkPaths are the web client's pages for the kinds that carry a one-time
// token; the token goes in the query as ?token=.
var linkPaths = map[outbox.EmailKind]string{
	outbox.EmailInvitation:    "/accept-invitation",
	outbox.EmailPasswordReset: "/reset-password",
}

// Renderer fills the embedded templates. It is safe for concurrent use.
type Renderer struct {
	publicURL *url.URL
	product   string
	text      map[outbox.EmailKind]*texttemplate.Template
	html      map[outbox.EmailKind]*htmltemplate.Template
}

// NewRenderer parses the templates of every email kind. publicURL is the web
// client's address (http or https), the base of links in emails; product is
// the name emails call the service by.
func NewRenderer(publicURL, product string) (*Renderer, error) {
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("public web URL %q: want an absolute http or https URL", publicURL)
	}
	if strings.TrimSpace(product) == "" {
		return nil, errors.New("product name is empty")
	}
	r := &Renderer{
		publicURL: u,
		product:   product,
		text:      map[outbox.EmailKind]*texttemplate.Template{},
		html:      map[outbox.EmailKind]*htmltemplate.Template{},
	}
	for _, kind := range outbox.EmailKinds() {
		// missingkey=error: data that lacks a field the template uses is a
		// render error, never an email with a blank where the login should be.
		t, err := texttemplate.New("").Option("missingkey=error").Funcs(texttemplate.FuncMap(funcs)).
			ParseFS(templateFiles, "templates/sftp_connect.txt", "templates/"+string(kind)+".txt")
		if err != nil {
			return nil, fmt.Errorf("email %s: %w", kind, err)
		}
		if t.Lookup("subject") == nil {
			return nil, fmt.Errorf("email %s: the text template defines no subject", kind)
		}
		h, err := htmltemplate.New("").Option("missingkey=error").Funcs(htmltemplate.FuncMap(funcs)).
			ParseFS(templateFiles, "templates/layout.html", "templates/sftp_connect.html", "templates/"+string(kind)+".html")
		if err != nil {
			return nil, fmt.Errorf("email %s: %w", kind, err)
		}
		r.text[kind], r.html[kind] = t, h
	}
	return r, nil
}

// Render fills kind's templates with data, the JSON form of the kind's
// outbox.EmailData. A field the templates need and data lacks is an error.
func (r *Renderer) Render(kind outbox.EmailKind, data []byte) (*Rendered, error) {
	t, h := r.text[kind], r.html[kind]
	if t == nil || h == nil {
		return nil, fmt.Errorf("unknown email kind %q", kind)
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, fmt.Errorf("email %s: decode data: %w", kind, err)
	}
	if fields == nil {
		return nil, fmt.Errorf("email %s: no data", kind)
	}
	fields["Product"] = r.product
	if path, ok := linkPaths[kind]; ok {
		token, _ := fields["Token"].(string)
		if token == "" {
			return nil, fmt.Errorf("email %s: no Token for the link", kind)
		}
		link := r.publicURL.JoinPath(path)
		link.RawQuery = url.Values{"token": {token}}.Encode()
		fields["Link"] = link.String()
	}

	var subject, text, html bytes.Buffer
	if err := t.ExecuteTemplate(&subject, "subject", fields); err != nil {
		return nil, fmt.Errorf("email %s: subject: %w", kind, err)
	}
	if err := t.ExecuteTemplate(&text, string(kind)+".txt", fields); err != nil {
		return nil, fmt.Errorf("email %s: text: %w", kind, err)
	}
	if err := h.ExecuteTemplate(&html, "layout.html", fields); err != nil {
		return nil, fmt.Errorf("email %s: html: %w", kind, err)
	}
	return &Rendered{
		// A subject is one line whatever the data holds.
		Subject: strings.Join(strings.Fields(subject.String()), " "),
		Text:    text.String(),
		HTML:    html.String(),
	}, nil
}

// funcs are the helpers templates share. Data arrives decoded from JSON, so
// times are RFC 3339 strings and numbers float64.
var funcs = map[string]any{
	// quote marks a user-supplied name in a plain-text body as data, so a
	// name such as "Ada. Your account is locked, call …" cannot pose as the
	// email's own words: it comes in double quotes, with quotes, backslashes
	// and any unprintable or invisible character escaped (Go's %q). HTML
	// bodies need no quoting: names sit in their own cells or <strong>.
	"quote": func(v any) string { return strconv.Quote(fmt.Sprint(v)) },
	"date": func(v any) (string, error) {
		t, err := asTime(v)
		return t.Format("Monday 2 January 2006"), err
	},
	"datetime": func(v any) (string, error) {
		t, err := asTime(v)
		return t.Format("Monday 2 January 2006 at 15:04 UTC"), err
	},
	"licences": func(v any) (string, error) {
		n, err := asInt(v)
		if n == 1 {
			return "1 SFTP user licence", err
		}
		return fmt.Sprintf("%d SFTP user licences", n), err
	},
}

// asTime reads a time from JSON data, in UTC: emails do not know the reader's zone.
func asTime(v any) (time.Time, error) {
	switch v := v.(type) {
	case time.Time:
		return v.UTC(), nil
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is not a time", v)
		}
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%v is not a time", v)
}

func asInt(v any) (int, error) {
	switch v := v.(type) {
	case int:
		return v, nil
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<31 {
			return int(v), nil
		}
	}
	return 0, fmt.Errorf("%v is not a whole number", v)
}
