package policy

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/skiffhq/skiff/tenant"
)

// rules is one account's policy as Casbin lines, without the ptype: p lines
// are (subject, account, object, action), g lines (user, group or role,
// account), g2 lines (folder, "folders", account).
type rules struct {
	p, g, g2 [][]string
	users    map[string]bool // the account's live users, by ID
	folders  map[string]bool // the account's live project folders, by ID
}

// loadRules reads one account's policy from the tables it is derived from:
// live users' roles and groups, the groups' permissions and the shares of
// live project folders. It reads in a transaction scoped to the account, as
// the application role, so row-level security lets it see that account only,
// and at REPEATABLE READ so the three reads agree with each other.
func loadRules(ctx context.Context, db *tenant.DB, accountID string) (*rules, error) {
	r := &rules{users: map[string]bool{}, folders: map[string]bool{}}
	err := db.Snapshot(ctx, accountID, func(tx *sqlx.Tx) error {
		if err := r.readUsers(ctx, tx.Tx, accountID); err != nil {
			return err
		}
		if err := r.readGroups(ctx, tx.Tx, accountID); err != nil {
			return err
		}
		return r.readFolders(ctx, tx.Tx, accountID)
	})
	if err != nil {
		return nil, err
	}
	for _, rr := range roleRules {
		r.p = append(r.p, []string{roleAdmin, accountID, rr[0], rr[1]})
	}
	return r, nil
}

// readUsers links each live user to their group and owners and administrators
// to role:admin. Deleted users get no line, so they may do nothing.
func (r *rules) readUsers(ctx context.Context, tx *sql.Tx, accountID string) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, role, group_id FROM users
		WHERE account_id = $1 AND deleted_at IS NULL`, accountID)
	if err != nil {
		return fmt.Errorf("policy: read users: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, role, group string
		if err := rows.Scan(&id, &role, &group); err != nil {
			return fmt.Errorf("policy: read users: %w", err)
		}
		r.users[id] = true
		r.g = append(r.g, []string{userPrefix + id, groupPrefix + group, accountID})
		if role == "OWNER" || role == "ADMIN" {
			r.g = append(r.g, []string{userPrefix + id, roleAdmin, accountID})
		}
	}
	return wrapRows("users", rows.Err())
}

// readGroups turns each group's permissions into lines on AccountObject.
func (r *rules) readGroups(ctx context.Context, tx *sql.Tx, accountID string) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, coalesce(builtin, ''), permissions FROM groups WHERE account_id = $1`, accountID)
	if err != nil {
		return fmt.Errorf("policy: read groups: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id, builtin string
			perms       pq.StringArray
		)
		if err := rows.Scan(&id, &builtin, &perms); err != nil {
			return fmt.Errorf("policy: read groups: %w", err)
		}
		for _, p := range perms {
			// The table's check already keeps My Files from Jailed Users; the
			// policy does not rely on it.
			if !Permission(p).Valid() || (builtin == "JAILED" && Permission(p) == SFTPMyFiles) {
				continue
			}
			r.p = append(r.p, []string{groupPrefix + id, accountID, AccountObject, p})
		}
	}
	return wrapRows("groups", rows.Err())
}

// readFolders puts every live project folder in the account's "folders",
// and expands each of its shares into the preset's rights.
func (r *rules) readFolders(ctx context.Context, tx *sql.Tx, accountID string) error {
	rows, err := tx.QueryContext(ctx, `SELECT f.id, coalesce(s.user_id::text, ''), coalesce(s.group_id::text, ''), coalesce(s.preset, '')
		FROM project_folders f LEFT JOIN folder_shares s ON s.account_id = f.account_id AND s.folder_id = f.id
		WHERE f.account_id = $1 AND f.deleted_at IS NULL
		ORDER BY f.id`, accountID)
	if err != nil {
		return fmt.Errorf("policy: read folders: %w", err)
	}
	defer rows.Close()
	last := ""
	for rows.Next() {
		var folder, user, group, preset string
		if err := rows.Scan(&folder, &user, &group, &preset); err != nil {
			return fmt.Errorf("policy: read folders: %w", err)
		}
		if folder != last {
			last = folder
			r.folders[folder] = true
			r.g2 = append(r.g2, []string{FolderObject(folder), FoldersObject, accountID})
		}
		var sub string
		switch {
		case user != "" && r.users[user]:
			sub = userPrefix + user
		case group != "":
			sub = groupPrefix + group
		default:
			continue // no share, or a deleted user's, which grants nothing
		}
		for _, right := range Preset(preset).Rights() {
			r.p = append(r.p, []string{sub, accountID, FolderObject(folder), string(right)})
		}
	}
	return wrapRows("folders", rows.Err())
}

func wrapRows(what string, err error) error {
	if err != nil {
		return fmt.Errorf("policy: read %s: %w", what, err)
	}
	return nil
}
