package main

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"

	"github.com/skiffhq/skiff/migrations"
	"github.com/skiffhq/skiff/notify"
)

// validate checks every setting serve can check without connecting to
// anything, so a mistake ends start-up before the database is touched.
func (c *ServeCmd) validate() error {
	if err := c.DatabaseFlags.check(); err != nil {
		return err
	}
	if err := c.Runtime.checkPool(); err != nil {
		return err
	}
	if _, err := c.schemaMode(); err != nil {
		return err
	}
	smtpURL, _, err := c.Mail.mailTarget(c.DataDir, c.DatabaseURL == "")
	if err != nil {
		return withCode(exitConfig, err)
	}
	if smtpURL != "" {
		if _, err := notify.ParseSMTPURL(smtpURL); err != nil {
			return settingError("--smtp-url", "SKIFF_SMTP_URL", "%s", strings.TrimPrefix(err.Error(), "SMTP URL: "))
		}
	}
	if err := c.checkLimits(); err != nil {
		return err
	}
	if err := c.checkAddresses(); err != nil {
		return err
	}
	if _, err := notify.NewRenderer(c.Mail.PublicURL, "Skiff"); err != nil {
		return flagError("--public-url", "%s", strings.TrimPrefix(err.Error(), "public web URL "))
	}
	if c.Mail.Retention < 0 {
		return settingError("--email-retention", "SKIFF_EMAIL_RETENTION", "%s is negative (0 keeps emails forever)", c.Mail.Retention)
	}
	if _, err := c.HostKeys.cipher(); err != nil {
		return err
	}
	if _, err := c.SFTP.limits(); err != nil {
		return withCode(exitConfig, err)
	}
	if _, _, _, _, err := c.fileLimits(); err != nil {
		return withCode(exitConfig, err)
	}
	return nil
}

// logStart logs the version and the effective configuration, one line,
// every flag by its name (dashes as underscores), URLs without their
// passwords and secrets as "xxxxx".
func (c *ServeCmd) logStart(log *slog.Logger, mode string) {
	attrs := []any{"version", skiffVersion(), "schema", migrations.Latest(), "migrate", mode}
	attrs = append(attrs, flagAttrs(reflect.ValueOf(*c))...)
	log.Info("starting skiff", attrs...)
}

// flagAttrs are the kong flags of the struct v, embedded structs included.
func flagAttrs(v reflect.Value) []any {
	var out []any
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		if _, embed := f.Tag.Lookup("embed"); (embed || f.Anonymous) && fv.Kind() == reflect.Struct {
			out = append(out, flagAttrs(fv)...)
			continue
		}
		name := f.Tag.Get("name")
		if name == "" || name == "migrate" || f.Tag.Get("hidden") != "" { // logStart logs --migrate as resolved
			continue
		}
		out = append(out, strings.ReplaceAll(name, "-", "_"), redactFlag(name, fv.Interface()))
	}
	return out
}

// redactFlag is what the start-up line shows of a flag's value.
func redactFlag(name string, v any) any {
	s, isString := v.(string)
	switch {
	case !isString:
		if ss, ok := v.([]string); ok {
			return strings.Join(ss, ",")
		}
		return fmt.Sprint(v)
	case s == "":
		return ""
	case strings.HasSuffix(name, "-url"):
		return redacted(s)
	case strings.Contains(name, "password"), strings.Contains(name, "secret"), strings.HasSuffix(name, "-key"), strings.Contains(name, "token"):
		return "xxxxx"
	}
	return s
}
