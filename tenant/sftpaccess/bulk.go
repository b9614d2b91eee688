package sftpaccess

import (
	"context"
	"fmt"

	"github.com/skiffhq/skiff/tenant"
)

// ReserveLicencesTx is reserveLicence for n users at once, for a bulk import:
// it locks the account row, then checks that the module allows SFTP and that
// n licences are free, so that an import that would need more than are free
// fails as a whole, with the numbers, before anything is created. The
// caller then turns SFTP on for the n users in the same transaction (each
// SetAccessTx checks again, under the lock already held).
func (s *Service) ReserveLicencesTx(ctx context.Context, q tenant.Queryer, accountID string, n int, field string) error {
	if n <= 0 {
		return nil
	}
	a, err := tenant.LockAccount(ctx, q, accountID)
	if err != nil {
		return err
	}
	status := a.ModuleStatus(s.Time())
	if !status.AllowsLogin() {
		return &tenant.Error{Code: tenant.EConflict, Field: field, Message: moduleInactiveMessage(status)}
	}
	used, err := UsedLicences(ctx, q, accountID)
	if err != nil {
		return err
	}
	if free := max(a.SFTPLicences-used, 0); n > free {
		return &tenant.Error{Code: tenant.ELimit, Field: field, Message: fmt.Sprintf(
			"this import turns SFTP on for %d users, but only %d of the account's %d SFTP licences are free; "+
				"turn SFTP off for some rows, or request more licences from support", n, free, a.SFTPLicences)}
	}
	return nil
}
