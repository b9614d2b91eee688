package domain_test

import (
	"testing"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/people"
)

// Text holding a NUL character, which PostgreSQL cannot store or compare
// (SQLSTATE 22021), is the caller's mistake: INVALID, not an internal
// error, wherever it reaches the database unchecked (searches, filters,
// free-text messages).
func TestTextWithNULIsInvalid(t *testing.T) {
	f := newModuleFixture(t)
	_, err := f.svc.People.Users(f.ownerCtx, f.account.ID, people.UserFilter{Search: "a\x00b"}, tenant.Order{}, tenant.Page{First: 5})
	if tenant.ErrorCode(err) != tenant.EInvalid {
		t.Errorf("users search with a NUL: %v; want INVALID", err)
	}
	if _, err := f.svc.SFTP.RequestSFTPModule(f.ownerCtx, "please\x00"); tenant.ErrorCode(err) != tenant.EInvalid {
		t.Errorf("module request message with a NUL: %v; want INVALID", err)
	}
}
