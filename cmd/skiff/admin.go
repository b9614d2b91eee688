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
	pw, err := passwordOrStdin(c.Password)
	if err != nil {
		return err
	}
	d, err := c.open(ctx, log)
	if err != nil {
		return err
	}
	defer d.Close()
	st, err := tenant.NewService(d.DB).CreateStaff(tenant.SystemContext(ctx), c.Email, c.Name, pw)
	if err != nil {
		return userFacing(err)
	}
	fmt.Printf("staff login created: %s <%s>\n", st.Name, st.Email)
	return nil
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
	pw, err := passwordOrStdin(c.OwnerPassword)
	if err != nil {
		return err
	}
	d, err := c.open(ctx, log)
	if err != nil {
		return err
	}
	defer d.Close()
	a, u, err := tenant.NewService(d.DB).CreateAccount(tenant.SystemContext(ctx), tenant.CreateAccountInput{
		Name: c.Name, OwnerEmail: c.OwnerEmail, OwnerName: c.OwnerName, OwnerPassword: pw,
	})
	if err != nil {
		return userFacing(err)
	}
	fmt.Printf("account %q created (id %s); owner %s <%s>\n", a.Name, a.ID, u.Name, u.Email)
	return nil
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
