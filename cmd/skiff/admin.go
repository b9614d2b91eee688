package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/domain"
)

// AdminCmd groups the bootstrap commands.
type AdminCmd struct {
	CreateStaff   CreateStaffCmd   `cmd:"" help:"Create a support-staff login (the first one can only be made here)."`
	CreateAccount CreateAccountCmd `cmd:"" help:"Create a customer account with its owner."`
}

// CreateStaffCmd adds a staff login.
type CreateStaffCmd struct {
	DatabaseFlags
	Email    string `required:"" help:"The staff member's email (their login)."`
	Name     string `required:"" help:"Their name."`
	Password string `env:"SKIFF_ADMIN_PASSWORD" help:"Their password (at least 10 characters); read from standard input when empty."`
}

// Run creates the staff login.
func (c *CreateStaffCmd) Run(ctx context.Context, log *slog.Logger) error {
	return c.withService(ctx, log, c.Password, func(ctx context.Context, svc *domain.Domain, pw string) error {
		st, err := svc.People.CreateStaff(ctx, c.Email, c.Name, pw)
		if err != nil {
			return userFacing(err)
		}
		fmt.Printf("staff login created: %s <%s>\n", st.Name, st.Email)
		return nil
	})
}

// CreateAccountCmd adds an account with its owner.
type CreateAccountCmd struct {
	DatabaseFlags
	Name          string `required:"" help:"The account's (company's) name."`
	OwnerEmail    string `required:"" help:"The owner's email (their login)."`
	OwnerName     string `required:"" help:"The owner's name."`
	OwnerPassword string `env:"SKIFF_ADMIN_PASSWORD" help:"The owner's password (at least 10 characters); read from standard input when empty."`
}

// Run creates the account.
func (c *CreateAccountCmd) Run(ctx context.Context, log *slog.Logger) error {
	return c.withService(ctx, log, c.OwnerPassword, func(ctx context.Context, svc *domain.Domain, pw string) error {
		a, u, err := svc.Accounts.CreateAccount(ctx, account.CreateAccountInput{
			Name: c.Name, OwnerEmail: c.OwnerEmail, OwnerName: c.OwnerName, OwnerPassword: pw,
		})
		if err != nil {
			return userFacing(err)
		}
		fmt.Printf("account %q created (id %s); owner %s <%s>\n", a.Name, a.ID, u.Name, u.Email)
		return nil
	})
}

// withService reads the password (from the flag or standard input), opens
// the database and runs fn as the system.
func (f DatabaseFlags) withService(ctx context.Context, log *slog.Logger, password string, fn func(context.Context, *domain.Domain, string) error) error {
	pw, err := passwordOrStdin(password)
	if err != nil {
		return err
	}
	// The admin commands run on the runtime role and never migrate an
	// external database (the private one they do, as serve would).
	mode := migrateCheck
	if f.DatabaseURL == "" && f.MigrateURL == "" {
		mode = migrateAuto
	}
	d, err := f.open(ctx, log, mode, "skiff-admin", true)
	if err != nil {
		return err
	}
	defer d.Close()
	return fn(tenant.SystemContext(ctx), domain.New(d.DB), pw)
}

func passwordOrStdin(pw string) (string, error) {
	if pw != "" {
		return pw, nil
	}
	fmt.Fprint(os.Stderr, "password: ")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no password given (use --password, SKIFF_ADMIN_PASSWORD or standard input)")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// userFacing turns a service error into a one-line message for the terminal.
func userFacing(err error) error {
	if tenant.ErrorCode(err) == tenant.EInternal {
		return err
	}
	if f := tenant.ErrorField(err); f != "" {
		return fmt.Errorf("%s: %s", f, tenant.ErrorMessage(err))
	}
	return errors.New(tenant.ErrorMessage(err))
}
