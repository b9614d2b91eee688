package policy

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/skiffhq/skiff/tenant"
)

// rules is one account's policy: p lines (subject, account, object, action)
// and g lines (user, group or role, account) as Casbin lines without the
// ptype, for every object but single folders; and the folder shares, which
// are most of an account's policy, as sets of rights by subject and folder.
//
// A share is not expanded into a Casbin line per right (with a g2 line per
// folder putting it in "folders"): at 200,000 shares those lines, and
// Casbin's index of them, cost seconds and a gigabyte per load (see
// docs/BENCHMARKS.md). What they would answer is answered from shares
// instead (snapshot.folderRights), as TestSharesAnswerAsCasbinLines checks.
type rules struct {
	p, g    [][]string
	shares  map[string]map[string]rightSet // subject → folder ID → rights
	users   map[string]bool                // the account's live users, by ID
	folders map[string]bool                // the account's live project folders, by ID
}

// loadRules reads one account's policy from the tables it is derived from:
// live users' roles and groups, the groups' permissions and the shares of
// live project folders. It reads in a transaction scoped to the account, as
// the application role, so row-level security lets it see that account only,
// and at REPEATABLE READ so the three reads agree with each other.
func loadRules(ctx context.Context, db *tenant.DB, accountID string) (*rules, error) {
	r := &rules{users: map[string]bool{}, folders: map[string]bool{}, shares: map[string]map[string]rightSet{}}
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

// readFolders records every live project folder of the account (its
// "folders") and the rights each share of one grants its user or group.
// It scans into the driver's bytes and makes a string only once per
// folder and per subject, not per row.
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
	byUser, byGroup := map[string]map[string]rightSet{}, map[string]map[string]rightSet{}
	for rows.Next() {
		var folder, user, group, preset sql.RawBytes
		if err := rows.Scan(&folder, &user, &group, &preset); err != nil {
			return fmt.Errorf("policy: read folders: %w", err)
		}
		if string(folder) != last {
			last = string(folder)
			r.folders[last] = true
		}
		var id sql.RawBytes
		var prefix string
		var subjects map[string]map[string]rightSet
		switch {
		case len(user) > 0 && r.users[string(user)]:
			id, prefix, subjects = user, userPrefix, byUser
		case len(group) > 0:
			id, prefix, subjects = group, groupPrefix, byGroup
		default:
			continue // no share, or a deleted user's, which grants nothing
		}
		set := presetSets[string(preset)]
		if set == 0 {
			continue // not a preset: grants nothing
		}
		m := subjects[string(id)]
		if m == nil {
			m = map[string]rightSet{}
			subjects[string(id)] = m
			r.shares[prefix+string(id)] = m
		}
		m[last] |= set
	}
	return wrapRows("folders", rows.Err())
}

// presetSets holds the set of rights each preset grants, by name.
var presetSets = func() map[string]rightSet {
	m := map[string]rightSet{}
	for _, p := range Presets() {
		for _, right := range p.Rights() {
			m[string(p)] |= bitOf(right)
		}
	}
	return m
}()

func wrapRows(what string, err error) error {
	if err != nil {
		return fmt.Errorf("policy: read %s: %w", what, err)
	}
	return nil
}
