package tenant

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// RuntimeRoleError says why the role the service logs in as could step
// around row-level security. Every transaction switches to AppRole, but a
// connection can switch back to the role it logged in as: if that role is a
// superuser, has BYPASSRLS, or owns the tables (and so may turn their
// policies off), the second wall between tenants holds only as long as no
// statement ever escapes its transaction's scoping.
type RuntimeRoleError struct {
	Role   string // the login role
	Reason string // e.g. "is a superuser", "owns the table accounts"
}

func (e *RuntimeRoleError) Error() string {
	return fmt.Sprintf("database role %s %s, so row-level security would not keep tenants apart", e.Role, e.Reason)
}

// runtimeRoleQuery reads the login role (session_user: what RESET ROLE goes
// back to), the first reason it is unsafe (empty if none), and whether it may
// switch to the runtime role $1. "Can become" is membership: a member may
// SET ROLE to the other role, or has its rights already. The tables are
// those of every schema but PostgreSQL's own.
const runtimeRoleQuery = `
WITH me AS (SELECT oid, rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = session_user),
tables AS (
    SELECT c.oid::regclass::text AS name, c.relowner AS owner
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
)
SELECT format('%I', me.rolname) AS role,
    coalesce((SELECT reason FROM (
        SELECT 1 AS rank, 'is a superuser' AS reason WHERE me.rolsuper
        UNION ALL
        SELECT 2, 'has BYPASSRLS' WHERE me.rolbypassrls
        UNION ALL
        SELECT 3, format('can become %I, a superuser', r.rolname) FROM pg_roles r
        WHERE r.rolsuper AND r.oid <> me.oid AND pg_has_role(me.oid, r.oid, 'MEMBER')
        UNION ALL
        SELECT 4, format('can become %I, which has BYPASSRLS', r.rolname) FROM pg_roles r
        WHERE r.rolbypassrls AND r.oid <> me.oid AND pg_has_role(me.oid, r.oid, 'MEMBER')
        UNION ALL
        SELECT 5, format('owns the table %s', t.name) FROM tables t WHERE t.owner = me.oid
        UNION ALL
        SELECT 6, format('can become %I, which owns the table %s', pg_get_userbyid(t.owner), t.name) FROM tables t
        WHERE t.owner <> me.oid AND pg_has_role(me.oid, t.owner, 'MEMBER')
    ) problems ORDER BY rank, reason LIMIT 1), '') AS problem,
    EXISTS (SELECT FROM pg_roles a WHERE a.rolname = $1 AND pg_has_role(me.oid, a.oid, 'MEMBER')) AS can_switch
FROM me`

// CheckRuntimeRole checks the role db's connections log in as: it must be
// able to switch to AppRole (an error saying how to grant it if not), and
// it must not be a superuser, have BYPASSRLS or own a table, nor be able to
// become a role that does (a *RuntimeRoleError naming the first such
// reason). Run it after migrating: it looks at the tables the database has.
func CheckRuntimeRole(ctx context.Context, db sqlx.QueryerContext) error {
	var r struct {
		Role      string `db:"role"`
		Problem   string `db:"problem"`
		CanSwitch bool   `db:"can_switch"`
	}
	if err := sqlx.GetContext(ctx, db, &r, runtimeRoleQuery, AppRole); err != nil {
		return fmt.Errorf("check the database role: %w", err)
	}
	if !r.CanSwitch {
		return fmt.Errorf("database role %s cannot switch to %s, which every transaction runs as: GRANT %s TO %s", r.Role, AppRole, AppRole, r.Role)
	}
	if r.Problem != "" {
		return &RuntimeRoleError{Role: r.Role, Reason: r.Problem}
	}
	return nil
}
