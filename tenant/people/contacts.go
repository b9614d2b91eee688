package people

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
)

// Contact is a person an account knows but who has no login. Converting a
// contact makes them a user; the contact then no longer shows as a contact.
type Contact struct {
	ID              string     `db:"id"`
	AccountID       string     `db:"account_id"`
	Email           string     `db:"email"`
	Name            string     `db:"name"`
	Company         string     `db:"company"`
	Phone           string     `db:"phone"`
	CreatedAt       time.Time  `db:"created_at"`
	UpdatedAt       time.Time  `db:"updated_at"`
	ConvertedUserID *string    `db:"converted_user_id"`
	DeletedAt       *time.Time `db:"deleted_at"`
}

const contactColumns = `id, account_id, email, name, company, phone, created_at, updated_at, converted_user_id, deleted_at`

// getContact loads a live, unconverted contact of the transaction's account.
func getContact(ctx context.Context, q tenant.Queryer, id string) (*Contact, error) {
	if !tenant.IsUUID(id) {
		return nil, tenant.NotFound("contact")
	}
	var c Contact
	err := q.GetContext(ctx, &c, `SELECT `+contactColumns+` FROM contacts
		WHERE id = $1 AND account_id = skiff_account() AND deleted_at IS NULL AND converted_user_id IS NULL FOR UPDATE`, id)
	if err != nil {
		return nil, tenant.NotFoundAs(tenant.DBError(err), "contact")
	}
	return &c, nil
}

// Contact returns one contact of the admin's account.
func (s *Service) Contact(ctx context.Context, id string) (*Contact, error) {
	p, err := s.Sharing.RequirePermission(ctx, policy.ManageContacts)
	if err != nil {
		return nil, err
	}
	var c *Contact
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		c, err = getContact(ctx, q, id)
		return err
	})
	return tenant.Result(c, err)
}

// Contacts lists an account's contacts for its owners and admins, in order
// (by name by default).
func (s *Service) Contacts(ctx context.Context, accountID, search string, order tenant.Order, page tenant.Page) (*tenant.Connection[*Contact], error) {
	p, err := s.Sharing.RequirePermission(ctx, policy.ManageContacts)
	if err != nil {
		return nil, err
	}
	if p.AccountID != accountID {
		return nil, tenant.NotFound("account")
	}
	ks, err := contactSorts.NewKeyset(order, page)
	if err != nil {
		return nil, err
	}
	var conn *tenant.Connection[*Contact]
	err = s.InAccount(ctx, accountID, func(q tenant.Queryer) (err error) {
		conn, err = tenant.ListPage(ctx, q, ks, tenant.ListQuery{
			Select: `SELECT ` + contactColumns,
			From: `FROM contacts WHERE account_id = $1 AND deleted_at IS NULL AND converted_user_id IS NULL
			  AND ($2 = '' OR name ILIKE $3 OR email ILIKE $3 OR company ILIKE $3)`,
			Args: []any{accountID, strings.TrimSpace(search), tenant.LikePattern(search)},
		})
		return err
	})
	return tenant.Result(conn, err)
}

// contactSorts are the orders of Contacts: NAME (the default), EMAIL,
// COMPANY and CREATED_AT, case-insensitively for text, ties by ID.
var contactSorts = &tenant.Sorts[*Contact]{
	List: "contacts",
	Keys: []tenant.SortKey[*Contact]{
		{Field: "NAME", Expr: "lower(name)", Type: "text", Of: func(c *Contact) string { return strings.ToLower(c.Name) }},
		{Field: "EMAIL", Expr: "lower(email)", Type: "text", Of: func(c *Contact) string { return strings.ToLower(c.Email) }},
		{Field: "COMPANY", Expr: "lower(company)", Type: "text", Of: func(c *Contact) string { return strings.ToLower(c.Company) }},
		{Field: "CREATED_AT", Expr: "created_at", Type: "timestamptz", Of: func(c *Contact) string { return tenant.TimeKey(c.CreatedAt) }},
	},
	Default: tenant.Order{Field: "NAME"},
	ID:      "id",
	IDOf:    func(c *Contact) string { return c.ID },
}

// ContactInput creates or changes a contact; on update, nil fields stay.
type ContactInput struct {
	ID      string
	Email   *string
	Name    *string
	Company *string
	Phone   *string
}

func (c *Contact) apply(in ContactInput) error {
	// Every field is checked before any is refused (all user errors at once).
	var errs []error
	set := func(dst, v *string, norm func(string) (string, error)) {
		if v == nil {
			return
		}
		if s, err := norm(*v); err != nil {
			errs = append(errs, err)
		} else {
			*dst = s
		}
	}
	set(&c.Email, in.Email, func(v string) (string, error) { return tenant.NormEmail("email", v) })
	set(&c.Name, in.Name, func(v string) (string, error) { return tenant.NormName("name", v, 200) })
	set(&c.Company, in.Company, func(v string) (string, error) { return optionalText("company", v, 200) })
	set(&c.Phone, in.Phone, func(v string) (string, error) { return optionalText("phone", v, 50) })
	return errors.Join(errs...)
}

func optionalText(field, v string, maxRunes int) (string, error) {
	if strings.TrimSpace(v) == "" {
		return "", nil
	}
	return tenant.NormName(field, v, maxRunes)
}

func contactConflict(err error) error {
	if tenant.ErrorCode(err) == tenant.EConflict {
		return &tenant.Error{Code: tenant.EConflict, Field: "email", Message: "a contact with this email already exists"}
	}
	return err
}

// CreateContact adds a contact to the admin's account.
func (s *Service) CreateContact(ctx context.Context, in ContactInput) (*Contact, error) {
	p, err := s.Sharing.RequirePermission(ctx, policy.ManageContacts)
	if err != nil {
		return nil, err
	}
	if in.Email == nil || in.Name == nil {
		return nil, tenant.Invalid("email", "email and name are required")
	}
	c := &Contact{}
	if err := c.apply(in); err != nil {
		return nil, err
	}
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		err := q.GetContext(ctx, c, `INSERT INTO contacts (account_id, email, name, company, phone, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING `+contactColumns, p.AccountID, c.Email, c.Name, c.Company, c.Phone, s.Time())
		if err != nil {
			return contactConflict(tenant.DBError(err))
		}
		return audit.Record(ctx, q, p.AccountID, audit.Event{Kind: "contact.created", TargetKind: "Contact", TargetID: c.ID, After: c})
	})
	return tenant.Result(c, err)
}

// changeContact is the frame of a change to one contact: it checks the
// MANAGE_CONTACTS permission, locks the contact in the account's
// transaction and runs change; the contact comes back as changed, or nil if
// anything failed (then nothing was saved).
func (s *Service) changeContact(ctx context.Context, id string, change func(q tenant.Queryer, c *Contact) error) (*Contact, error) {
	p, err := s.Sharing.RequirePermission(ctx, policy.ManageContacts)
	if err != nil {
		return nil, err
	}
	var c *Contact
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		var err error
		if c, err = getContact(ctx, q, id); err != nil {
			return err
		}
		return change(q, c)
	})
	return tenant.Result(c, err)
}

// UpdateContact changes a contact of the principal's account.
func (s *Service) UpdateContact(ctx context.Context, in ContactInput) (*Contact, error) {
	return s.changeContact(ctx, in.ID, func(q tenant.Queryer, c *Contact) error {
		before := *c
		if err := c.apply(in); err != nil {
			return err
		}
		err := q.GetContext(ctx, c, `UPDATE contacts SET email = $2, name = $3, company = $4, phone = $5, updated_at = $6
			WHERE id = $1 RETURNING `+contactColumns, c.ID, c.Email, c.Name, c.Company, c.Phone, s.Time())
		if err != nil {
			return contactConflict(tenant.DBError(err))
		}
		return audit.Record(ctx, q, c.AccountID, audit.Event{Kind: "contact.updated", TargetKind: "Contact", TargetID: c.ID, Before: before, After: c})
	})
}

// DeleteContact removes a contact from the principal's account.
func (s *Service) DeleteContact(ctx context.Context, id string) (*Contact, error) {
	return s.changeContact(ctx, id, func(q tenant.Queryer, c *Contact) error {
		if err := q.GetContext(ctx, c, `UPDATE contacts SET deleted_at = $2, updated_at = $2 WHERE id = $1 RETURNING `+contactColumns, c.ID, s.Time()); err != nil {
			return tenant.DBError(err)
		}
		return audit.Record(ctx, q, c.AccountID, audit.Event{Kind: "contact.deleted", TargetKind: "Contact", TargetID: c.ID, Before: c})
	})
}

// ConvertContactInput turns a contact into a user.
type ConvertContactInput struct {
	ContactID   string
	Role        tenant.Role
	Password    string
	SFTPEnabled bool
	GroupID     string // the new user's group, as in CreateUserInput
}

// ConvertContactToUser makes a user from a contact, keeping its name and
// email, all in one transaction: if SFTP cannot be turned on (no licence),
// nothing changes.
func (s *Service) ConvertContactToUser(ctx context.Context, in ConvertContactInput) (*tenant.User, error) {
	p, err := tenant.RequireAdmin(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.requireGroupManager(ctx, in.GroupID); err != nil {
		return nil, err
	}
	var u *tenant.User
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		c, err := getContact(ctx, q, in.ContactID)
		if err != nil {
			return err
		}
		u, err = s.CreateUserTx(ctx, q, p, CreateUserInput{Email: c.Email, Name: c.Name, Role: in.Role, Password: in.Password,
			SFTPEnabled: in.SFTPEnabled, GroupID: in.GroupID})
		if err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `UPDATE contacts SET converted_user_id = $2, updated_at = $3 WHERE id = $1`, c.ID, u.ID, s.Time()); err != nil {
			return tenant.DBError(err)
		}
		return audit.Record(ctx, q, p.AccountID, audit.Event{Kind: "contact.converted", TargetKind: "Contact", TargetID: c.ID, After: map[string]any{"userId": u.ID}})
	})
	s.afterGroupSet(p.AccountID, in.GroupID, err)
	return tenant.Result(u, err)
}
