package tenant

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an application error. Transports map codes to their own
// vocabulary in one place (GraphQL extensions.code, SSH auth failure, exit codes).
type Code string

const (
	EInvalid         Code = "INVALID"         // bad input; the message says what to fix
	ENotFound        Code = "NOT_FOUND"       // missing, or in another tenant
	EConflict        Code = "CONFLICT"        // unique value taken, state does not allow it
	ELimit           Code = "LIMIT"           // a quota (licences) is exhausted
	EUnauthenticated Code = "UNAUTHENTICATED" // no or bad credentials
	EForbidden       Code = "FORBIDDEN"       // authenticated, but not allowed
	EInternal        Code = "INTERNAL"        // a bug or an outage; never shown to users
)

// Error is the one application error type. Message is safe to show to a user;
// Field names the input field at fault, when there is one.
//
// Several input fields at fault are several *Error joined with errors.Join
// (see Errors); the first is what ErrorCode, ErrorField and ErrorMessage tell.
type Error struct {
	Code    Code
	Field   string
	Message string
	Err     error // the cause, for logs; never shown
	// RetryAfter, on an ELimit error that passes with time (a throttle), is
	// how long to wait before trying again.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a user-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid reports bad input in the named field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound is what every lookup says about a missing object or another tenant's.
func NotFound(what string) *Error {
	return &Error{Code: ENotFound, Message: what + " not found"}
}

// ErrorCode returns the code of err, EInternal for anything that is not an *Error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EInternal
}

// ErrorMessage returns the user-safe message of err; internal errors get a generic one.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != EInternal {
		return e.Message
	}
	return "internal error"
}

// ErrorField returns the input field an *Error names, if any.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// Errors lists the *Error values err holds: err itself, or each of the
// errors joined in it (errors.Join, at any depth), in order. Errors that are
// not *Error are left out.
func Errors(err error) []*Error {
	if err == nil {
		return nil
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*Error
		for _, e := range joined.Unwrap() {
			out = append(out, Errors(e)...)
		}
		return out
	}
	var e *Error
	if errors.As(err, &e) {
		return []*Error{e}
	}
	return nil
}

// IsUserError tells the errors that belong in a mutation payload's userErrors
// (expected failures) from those that are GraphQL errors (auth, not found, internal).
func IsUserError(err error) bool {
	switch ErrorCode(err) {
	case EInvalid, EConflict, ELimit:
		return true
	}
	return false
}
