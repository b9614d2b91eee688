package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Exit codes, documented in docs/OPERATIONS.md ("Exit codes"). They follow
// sysexits.h where one fits; kong exits 80 on a command-line usage error.
const (
	exitFailure     = 1  // anything else: a failure while running
	exitSchema      = 65 // the database's schema does not fit this binary (EX_DATAERR)
	exitUnavailable = 69 // the database or the S3 store cannot be reached (EX_UNAVAILABLE)
	exitNoPerm      = 77 // the database refused the login, or the role lacks or has too many rights; the S3 store refused the credentials (EX_NOPERM)
	exitConfig      = 78 // a setting is invalid (EX_CONFIG)
)

// exitError is an error with the exit code it ends the process with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withCode gives err the exit code (nil stays nil; an error that already has
// one keeps it).
func withCode(code int, err error) error {
	var ee *exitError
	if err == nil || errors.As(err, &ee) {
		return err
	}
	return &exitError{code: code, err: err}
}

// settingError is an invalid setting, named as the operator sets it.
func settingError(flag, env, format string, args ...any) error {
	return &exitError{code: exitConfig, err: fmt.Errorf("%s (%s): %s", flag, env, fmt.Sprintf(format, args...))}
}

// flagError is settingError for a serve flag, with the variable every
// serve flag has by the same name (TestFlagVariablesFollowTheirNames holds
// the flags to that).
func flagError(flag, format string, args ...any) error {
	return settingError(flag, flagVariable(flag), format, args...)
}

// flagVariable is the SKIFF_* variable of a flag: --sftp-max-auth-tries is
// SKIFF_SFTP_MAX_AUTH_TRIES.
func flagVariable(flag string) string {
	return "SKIFF_" + strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(flag, "--"), "-", "_"))
}

// exitCode is the code err ends the process with.
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailure
}

// fatal logs err as the process's last line, in the chosen log format, and
// returns the exit code. Wrapped causes stay on the one line.
func fatal(log *slog.Logger, err error) int {
	code := exitCode(err)
	msg := strings.Join(strings.Fields(err.Error()), " ")
	log.Error("skiff: "+msg, "exit_code", code)
	return code
}
