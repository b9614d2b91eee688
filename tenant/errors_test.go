package tenant_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/skiffhq/skiff/tenant"
)

// Joined user errors are listed in order; the first is the error's code.
func TestErrorsListsJoinedErrors(t *testing.T) {
	email, name := tenant.Invalid("email", "bad email"), tenant.Invalid("name", "empty name")
	err := errors.Join(email, nil, errors.Join(name), errors.New("not ours"))
	got := tenant.Errors(err)
	if len(got) != 2 || got[0] != email || got[1] != name {
		t.Fatalf("Errors: %+v", got)
	}
	if tenant.ErrorCode(err) != tenant.EInvalid || tenant.ErrorField(err) != "email" {
		t.Fatalf("code %s field %s", tenant.ErrorCode(err), tenant.ErrorField(err))
	}
	if got := tenant.Errors(fmt.Errorf("wrapped: %w", email)); len(got) != 1 || got[0] != email {
		t.Fatalf("wrapped: %+v", got)
	}
	if tenant.Errors(nil) != nil || tenant.Errors(errors.New("plain")) != nil {
		t.Fatal("Errors of nil or a plain error")
	}
}
