package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/lib/pq"
)

// dbSetting names a database URL setting the way the operator sets it, for
// the one line an error about it ends with.
type dbSetting struct {
	flag, env string
	url       string
}

var (
	runtimeURLSetting = dbSetting{flag: "--database-url", env: "SKIFF_DATABASE_URL"}
	migrateURLSetting = dbSetting{flag: "--migrate-database-url", env: "SKIFF_MIGRATE_DATABASE_URL"}
)

func (s dbSetting) with(u string) dbSetting { s.url = u; return s }

// check parses the URL as lib/pq will, without connecting.
func (s dbSetting) check() error {
	if s.url == "" {
		return nil
	}
	if strings.HasPrefix(s.url, "postgres://") || strings.HasPrefix(s.url, "postgresql://") {
		if _, err := url.Parse(s.url); err != nil {
			// url's error quotes the URL, password and all.
			return settingError(s.flag, s.env, "not a valid URL")
		}
	} else if !strings.Contains(s.url, "=") {
		return settingError(s.flag, s.env, "not a PostgreSQL URL (postgres://user:password@host:5432/database?sslmode=verify-full) nor key=value settings")
	}
	if m := sslMode(s.url); m != "" && !slices.Contains([]string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}, m) {
		return settingError(s.flag, s.env, "sslmode %q is not disable, allow, prefer, require, verify-ca or verify-full", m)
	}
	if _, err := pq.NewConnector(s.url); err != nil {
		return settingError(s.flag, s.env, "%s", strings.TrimPrefix(redactErr(err.Error()), "pq: "))
	}
	return nil
}

var dsnSSLMode = regexp.MustCompile(`(?:^|\s)sslmode\s*=\s*'?([^'\s]*)`)

// sslMode is the URL's sslmode, "" when unset.
func sslMode(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" {
		return u.Query().Get("sslmode")
	}
	if m := dsnSSLMode.FindStringSubmatch(raw); m != nil {
		return m[1]
	}
	return ""
}

var dsnPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// urlPassword is the password of a URL's user information, wherever in a
// string the URL is: what redacted falls back to when the whole does not
// parse. The password runs to the next @ and may hold / ? # (which is why
// such a URL does not parse), but not "://", which starts another URL.
var urlPassword = regexp.MustCompile(`(://[^/?#@\s:]*:)(?:[^@\s:]|:[^/@\s])*@`)

// redacted is the URL with its passwords replaced, for logs and errors:
// its own, a password parameter's, and those of URLs in its parameters
// (an S3 storage URL's endpoint=http://user:password@host).
func redacted(raw string) string {
	if raw == "" {
		return ""
	}
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" {
		q := redactedQuery(u.RawQuery)
		if _, has := u.User.Password(); !has && q == u.RawQuery {
			return raw // nothing secret: as written
		}
		u.RawQuery = q
		return u.Redacted()
	}
	return urlPassword.ReplaceAllString(dsnPassword.ReplaceAllString(raw, "${1}xxxxx"), "${1}xxxxx@")
}

// redactedQuery is a URL query with the value of password parameters, and
// the passwords of URLs given as values, replaced; the rest stays as
// written (order and escaping).
func redactedQuery(raw string) string {
	if raw == "" {
		return ""
	}
	params := strings.Split(raw, "&")
	for i, p := range params {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		if key, err := url.QueryUnescape(k); err == nil && strings.EqualFold(key, "password") {
			params[i] = k + "=xxxxx"
			continue
		}
		val, err := url.QueryUnescape(v)
		if err != nil { // a bad escape: the value as written, but if it may hold credentials, none of it
			params[i] = urlPassword.ReplaceAllString(p, "${1}xxxxx@")
			if strings.Contains(strings.ToUpper(params[i]), "%40") {
				params[i] = k + "=xxxxx"
			}
			continue
		}
		if r := redacted(val); r != val {
			if val != v { // it was escaped: keep it so
				r = url.QueryEscape(r)
			}
			params[i] = k + "=" + r
		}
	}
	return strings.Join(params, "&")
}

func redactErr(s string) string { return dsnPassword.ReplaceAllString(s, "${1}xxxxx") }

// withAppName sets application_name (so pg_stat_activity says which process
// holds a connection) and, unless set, a 10-second connect_timeout (so a
// black-holed address fails instead of hanging).
func withAppName(raw, name string) string {
	if raw == "" {
		return raw
	}
	if u, err := url.Parse(raw); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		if !q.Has("application_name") {
			q.Set("application_name", name)
		}
		if !q.Has("connect_timeout") {
			q.Set("connect_timeout", "10")
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	if !strings.Contains(raw, "application_name") {
		raw += " application_name=" + name
	}
	if !strings.Contains(raw, "connect_timeout") {
		raw += " connect_timeout=10"
	}
	return raw
}

// connectError turns a failure to connect (or log in) as s into one line
// that names the setting, the server and the cause, with the exit code.
func (s dbSetting) connectError(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	where := s.flag + " (" + s.env + ")"
	if s.url != "" {
		where += ": " + redacted(s.url)
	}
	var pe *pq.Error
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &pe):
		switch pe.Code {
		case "28P01", "28000":
			return &exitError{exitNoPerm, fmt.Errorf("%s: PostgreSQL refused the login: %s (check the user and password in the URL, and pg_hba.conf)", where, pe.Message)}
		case "3D000":
			return &exitError{exitConfig, fmt.Errorf("%s: %s (create it: docs/OPERATIONS.md, \"Database\")", where, pe.Message)}
		case "42501":
			return &exitError{exitNoPerm, fmt.Errorf("%s: %s", where, pe.Message)}
		case "57P03", "53300":
			return &exitError{exitUnavailable, fmt.Errorf("%s: PostgreSQL cannot take the connection now: %s", where, pe.Message)}
		}
		return &exitError{exitFailure, fmt.Errorf("%s: %s (SQLSTATE %s)", where, pe.Message, pe.Code)}
	case errors.Is(err, pq.ErrSSLNotSupported):
		return &exitError{exitConfig, fmt.Errorf("%s: the server does not accept SSL, and the URL requires it (sslmode defaults to require): enable SSL on the server, or add sslmode=disable to the URL on a trusted network", where)}
	case errors.As(err, &oe) && oe.Op == "dial", errors.As(err, &ne):
		return &exitError{exitUnavailable, fmt.Errorf("%s: cannot reach PostgreSQL: %s (is it running and listening there?)", where, rootCause(err))}
	}
	return &exitError{exitUnavailable, fmt.Errorf("%s: cannot connect: %s", where, redactErr(err.Error()))}
}

// rootCause is the innermost error's text.
func rootCause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}
