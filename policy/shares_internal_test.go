package policy

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/tenant"
)

// casbinReference builds what the policy was before shares were kept out of
// Casbin: every share a line per right of its preset, every live folder a g2
// line into "folders", read with queries of its own, next to the rules
// loadRules reads for everything else.
func casbinReference(t *testing.T, db *sql.DB, r *rules, accountID string) *casbin.Enforcer {
	t.Helper()
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		t.Fatal(err)
	}
	ce, err := casbin.NewEnforcer(m)
	if err != nil {
		t.Fatal(err)
	}
	lines := slices.Clone(r.p)
	rows, err := db.Query(`SELECT s.folder_id, CASE WHEN s.user_id IS NULL THEN 'group:' || s.group_id ELSE 'user:' || s.user_id END, s.preset
		FROM folder_shares s JOIN project_folders f ON f.id = s.folder_id AND f.deleted_at IS NULL
		LEFT JOIN users u ON u.id = s.user_id
		WHERE s.account_id = $1 AND (s.user_id IS NULL OR u.deleted_at IS NULL)`, accountID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var folder, sub, preset string
		if err := rows.Scan(&folder, &sub, &preset); err != nil {
			t.Fatal(err)
		}
		for _, right := range Preset(preset).Rights() {
			lines = append(lines, []string{sub, accountID, FolderObject(folder), string(right)})
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	var g2 [][]string
	rows, err = db.Query(`SELECT id FROM project_folders WHERE account_id = $1 AND deleted_at IS NULL`, accountID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var folder string
		if err := rows.Scan(&folder); err != nil {
			t.Fatal(err)
		}
		g2 = append(g2, []string{FolderObject(folder), FoldersObject, accountID})
	}
	rows.Close()
	for _, add := range []struct {
		ptype string
		lines [][]string
	}{{"p", lines}, {"g", r.g}, {"g2", g2}} {
		if len(add.lines) == 0 {
			continue
		}
		var err error
		if add.ptype == "p" {
			_, err = ce.AddPolicies(add.lines)
		} else {
			_, err = ce.AddNamedGroupingPolicies(add.ptype, add.lines)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return ce
}

// Every folder decision, from May, RightsIn, RightsInFolders and
// FolderRights, is what Casbin answers with every share as lines of the
// model: users with every role and built-in group and a custom group, a
// deleted user with shares, deleted folders with shares, folders shared
// with a user and their group at once, shares of every preset.
func TestSharesAnswerAsCasbinLines(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	raw, id := rawDB(t, url)
	account := id(`INSERT INTO accounts (name) VALUES ('Ref') RETURNING id`)
	groups := []string{
		id(`SELECT id FROM groups WHERE account_id = $1 AND builtin = 'PRO'`, account),
		id(`SELECT id FROM groups WHERE account_id = $1 AND builtin = 'ASSOCIATE'`, account),
		id(`SELECT id FROM groups WHERE account_id = $1 AND builtin = 'JAILED'`, account),
		id(`INSERT INTO groups (account_id, name, permissions) VALUES ($1, 'Desk', '{MANAGE_CONTACTS}') RETURNING id`, account),
	}
	rnd := rand.New(rand.NewPCG(7, 11))
	roles := []string{"OWNER", "ADMIN", "USER", "USER", "USER"}
	var users []string
	for i := range 14 {
		users = append(users, id(`INSERT INTO users (account_id, email, name, role, group_id) VALUES ($1, $2, $2, $3, $4) RETURNING id`,
			account, fmt.Sprintf("u%d@ref.example", i), roles[i%len(roles)], groups[i%len(groups)]))
	}
	var folders []string
	for i := range 24 {
		folders = append(folders, id(`INSERT INTO project_folders (account_id, name, created_by) VALUES ($1, $2, $3) RETURNING id`,
			account, fmt.Sprintf("f%d", i), users[0]))
	}
	presets := Presets()
	for _, f := range folders[:20] { // the last four are shared with no one
		for _, u := range users {
			if rnd.IntN(3) == 0 {
				id(`INSERT INTO folder_shares (account_id, folder_id, user_id, preset) VALUES ($1, $2, $3, $4) RETURNING id`,
					account, f, u, presets[rnd.IntN(len(presets))])
			}
		}
		for _, g := range groups {
			if rnd.IntN(4) == 0 {
				id(`INSERT INTO folder_shares (account_id, folder_id, group_id, preset) VALUES ($1, $2, $3, $4) RETURNING id`,
					account, f, g, presets[rnd.IntN(len(presets))])
			}
		}
	}
	// A deleted user and deleted folders keep their shares in the table.
	id(`UPDATE users SET deleted_at = now() WHERE id = $1 RETURNING id`, users[len(users)-1])
	for _, f := range []string{folders[1], folders[len(folders)-1]} {
		id(`UPDATE project_folders SET deleted_at = now() WHERE id = $1 RETURNING id`, f)
	}
	asked := append(slices.Clone(folders), "44444444-4444-4444-8444-444444444444") // no such folder
	askers := append(slices.Clone(users), "55555555-5555-4555-8555-555555555555")  // no such user

	db, err := tenant.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	r, err := loadRules(ctx, db, account)
	if err != nil {
		t.Fatal(err)
	}
	ref := casbinReference(t, raw, r, account)
	e, err := New(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	actions := append(slices.Clone(Rights()), Right(SFTPMyFiles), "")
	granted := 0
	for _, u := range askers {
		all, err := e.FolderRights(ctx, u, account)
		if err != nil {
			t.Fatal(err)
		}
		page, err := e.RightsInFolders(ctx, u, account, asked)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range asked {
			var want []Right
			for _, act := range actions {
				w, err := ref.Enforce(userPrefix+u, account, FolderObject(f), string(act))
				if err != nil {
					t.Fatal(err)
				}
				got, err := e.May(ctx, u, account, FolderObject(f), string(act))
				if err != nil {
					t.Fatal(err)
				}
				if got != w {
					t.Errorf("user %s, folder %s, %q: May = %v, Casbin with the lines = %v", u, f, act, got, w)
				}
				if w {
					want = append(want, act)
					granted++
				}
			}
			in, err := e.RightsIn(ctx, u, account, f)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(in, want) || !slices.Equal(page[f], want) {
				t.Errorf("user %s, folder %s: RightsIn = %v, RightsInFolders = %v, Casbin with the lines = %v", u, f, in, page[f], want)
			}
			// FolderRights lists what was shared with the user: their
			// rights where something was.
			if got, ok := all[f]; ok && !slices.Equal(got, want) {
				t.Errorf("user %s, folder %s: FolderRights = %v, Casbin with the lines = %v", u, f, got, want)
			}
		}
	}
	if granted == 0 {
		t.Fatal("the fixture grants nothing")
	}
}

// Reading an account of 20,000 shares allocates a small part of what it did
// when every share became a Casbin line per right (5.3 kB a share; see
// docs/BENCHMARKS.md).
func TestLoadAllocationsPerShare(t *testing.T) {
	// Not parallel: it counts the process's allocations.
	if testing.Short() {
		t.Skip("writes 20,000 shares")
	}
	const shares = 20000
	url, account, user := bigAccount(t, shares)
	db, err := tenant.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e, err := New(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	load := func() {
		e.Invalidate(account)
		if _, err := e.May(context.Background(), user, account, AccountObject, string(SFTPMyFiles)); err != nil {
			t.Fatal(err)
		}
	}
	load() // the connection
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	load()
	runtime.ReadMemStats(&after)
	perShare := float64(after.TotalAlloc-before.TotalAlloc) / shares
	t.Logf("%.0f bytes allocated per share", perShare)
	if perShare > 1000 {
		t.Errorf("a load allocates %.0f bytes per share, want at most 1000", perShare)
	}
}
