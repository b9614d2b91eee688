package graph_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// roleEnv is one account with an owner, an administrator and a user, and
// a support-staff member, for the role matrix.
type roleEnv struct {
	e                        *env
	account                  string // the account's global ID
	tokens                   map[string]string
	ownerID, adminID, userID string
	otherUserID              string // a second plain user
}

// probe is one attempt, as role; it reports whether the role check let it
// through (a user error of the operation's own still counts as allowed) or
// answered FORBIDDEN.
type probe func(r *roleEnv, role string) (allowed bool)

// attempt runs an operation and tells a refusal from anything else: a
// FORBIDDEN error, or for a plain user NOT_FOUND (other users are invisible to
// them, so an attempt on one is answered like one on a user that does not
// exist). Any other GraphQL error fails the test.
func (r *roleEnv) attempt(role, query string, v vars) bool { return r.attemptInto(role, query, v, nil) }

// attemptInto is attempt that decodes the data into out when it was allowed.
func (r *roleEnv) attemptInto(role, query string, v vars, out any) bool {
	r.e.t.Helper()
	if v == nil {
		v = vars{}
	}
	v["a"] = r.account
	res := r.e.do(r.tokens[role], query, v)
	for _, err := range res.Errors {
		if err.code() == "FORBIDDEN" || role == "user" && err.code() == "NOT_FOUND" {
			return false
		}
		r.e.t.Fatalf("%s: %s: %+v", role, query, res.Errors)
	}
	if out != nil {
		if err := jsonUnmarshal(res.Data, out); err != nil {
			r.e.t.Fatal(err)
		}
	}
	return true
}

const matrixKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl matrix@laptop"

// The rows of docs/GRAPHQL.md's "Who may do what", each with the attempt
// that shows it: ✓ means the attempt passes the role check, — that it is
// FORBIDDEN.
var matrixRows = map[string]probe{
	"see the account, own user, own SFTP tab and keys": func(r *roleEnv, role string) bool {
		return r.attempt(role, `query($a: ID!) { account(id: $a) { name } }`, nil)
	},
	"list and manage users and contacts; importUsers, usersCsv": func(r *roleEnv, role string) bool {
		return r.attempt(role, `mutation { createContact(input: {name: "Pat", email: "pat@example.com"}) { contact { id } } }`, nil)
	},
	"make or change owners": func(r *roleEnv, role string) bool {
		var out struct {
			CreateUser *struct{ UserErrors []userError }
		}
		if !r.attemptInto(role, `mutation { createUser(input: {email: "o`+role+`@matrix.example", name: "O", role: OWNER}) {
			userErrors { field code message } } }`, nil, &out) {
			return false
		}
		// An administrator's OWNER is refused as a user error on `role`,
		// where the form shows it.
		for _, ue := range out.CreateUser.UserErrors {
			if ue.Field != nil && *ue.Field == "role" {
				return false
			}
		}
		return true
	},
	"manage anyone's SSH keys, SFTP access, custom login and group": func(r *roleEnv, role string) bool {
		return r.attempt(role, `mutation($u: ID!, $k: String!) { addSshKey(input: {userId: $u, title: "t", publicKey: $k}) { sshKey { id } } }`,
			vars{"u": r.otherUserID, "k": matrixKey})
	},
	"start the SFTP trial": func(r *roleEnv, role string) bool {
		return r.attempt(role, `mutation { startSftpTrial { account { id } } }`, nil)
	},
	"request the SFTP module": func(r *roleEnv, role string) bool {
		return r.attempt(role, `mutation { requestSftpModule(input: {message: "10 please"}) { request { id } } }`, nil)
	},
	"activate, set licences, suspend; module requests queue; accounts; createAccount": func(r *roleEnv, role string) bool {
		return r.attempt(role, `mutation($a: ID!) { setSftpLicences(input: {accountId: $a, licences: 3}) { licences { purchased } } }`, nil)
	},
	"audit trail, notifications": func(r *roleEnv, role string) bool {
		return r.attempt(role, `query($a: ID!) { account(id: $a) { auditEvents { edges { cursor } } } }`, nil)
	},
	"own two-factor (enrol, confirm, disable)": func(r *roleEnv, role string) bool {
		return r.attempt(role, `mutation { startTotpEnrolment { secret } }`, nil)
	},
	"require two-factor of owners and administrators (`setRequireTotpForAdmins`)": func(r *roleEnv, role string) bool {
		return r.attempt(role, `mutation { setRequireTotpForAdmins(input: {require: false}) { account { id } } }`, nil)
	},
	"the account's IP allowlist (`setAccountIpAllowlist`)": func(r *roleEnv, role string) bool {
		return r.attempt(role, `mutation { setAccountIpAllowlist(input: {cidrs: ["127.0.0.0/8", "::1/128"]}) { account { id } } }`, nil)
	},
	"a user's IP allowlist (`setUserIpAllowlist`)": func(r *roleEnv, role string) bool {
		return r.attempt(role, `mutation($u: ID!) { setUserIpAllowlist(input: {userId: $u, cidrs: ["127.0.0.0/8"]}) { user { id } } }`,
			vars{"u": r.otherUserID})
	},
}

// matrixCells checks what a cell's words add to its ✓ or —, keyed by the
// row and the cell's text.
var matrixCells = map[string]func(t *testing.T, r *roleEnv, role string){
	"list and manage users and contacts; importUsers, usersCsv|✓ (not owners)": func(t *testing.T, r *roleEnv, role string) {
		if r.attempt(role, `mutation($u: ID!) { updateUser(input: {id: $u, name: "Renamed"}) { user { id } } }`, vars{"u": r.ownerID}) {
			t.Errorf("%s changed an owner", role)
		}
	},
	"list and manage users and contacts; importUsers, usersCsv|read users (not contacts, not usersCsv)": func(t *testing.T, r *roleEnv, role string) {
		if !r.attempt(role, `query($a: ID!) { account(id: $a) { users { edges { node { id } } } } }`, nil) {
			t.Errorf("%s cannot read the users", role)
		}
		if r.attempt(role, `query($a: ID!) { account(id: $a) { contacts { edges { cursor } } } }`, nil) {
			t.Errorf("%s read the contacts", role)
		}
		if r.attempt(role, `query($a: ID!) { account(id: $a) { usersCsv } }`, nil) {
			t.Errorf("%s read usersCsv", role)
		}
		if r.attempt(role, `mutation { createContact(input: {name: "Pat", email: "pat@example.com"}) { contact { id } } }`, nil) {
			t.Errorf("%s created a contact", role)
		}
	},
	"manage anyone's SSH keys, SFTP access, custom login and group|✓ (not owners')": func(t *testing.T, r *roleEnv, role string) {
		if r.attempt(role, `mutation($u: ID!, $k: String!) { addSshKey(input: {userId: $u, title: "t", publicKey: $k}) { sshKey { id } } }`,
			vars{"u": r.ownerID, "k": matrixKey}) {
			t.Errorf("%s added a key to an owner", role)
		}
	},
	"manage anyone's SSH keys, SFTP access, custom login and group|own keys": func(t *testing.T, r *roleEnv, role string) {
		if !r.attempt(role, `mutation($k: String!) { addSshKey(input: {title: "mine", publicKey: $k}) { sshKey { id } } }`, vars{"k": matrixKey}) {
			t.Errorf("%s cannot add their own key", role)
		}
		if r.attempt(role, `mutation($u: ID!, $k: String!) { addSshKey(input: {userId: $u, title: "t", publicKey: $k}) { sshKey { id } } }`,
			vars{"u": r.otherUserID, "k": matrixKey}) {
			t.Errorf("%s added a key to another user", role)
		}
	},
	"the account's IP allowlist (`setAccountIpAllowlist`)|clear only (`clearAccountIpAllowlist`)": func(t *testing.T, r *roleEnv, role string) {
		if !r.attempt(role, `mutation($a: ID!) { clearAccountIpAllowlist(input: {accountId: $a}) { account { id } } }`, nil) {
			t.Errorf("%s cannot clear the account's allowlist", role)
		}
		if r.attempt(role, `mutation { setAccountIpAllowlist(input: {cidrs: ["127.0.0.0/8"]}) { account { id } } }`, nil) {
			t.Errorf("%s set the account's allowlist", role)
		}
	},
	"a user's IP allowlist (`setUserIpAllowlist`)|✓ (not an owner's)": func(t *testing.T, r *roleEnv, role string) {
		if r.attempt(role, `mutation($u: ID!) { setUserIpAllowlist(input: {userId: $u, cidrs: ["127.0.0.0/8"]}) { user { id } } }`, vars{"u": r.ownerID}) {
			t.Errorf("%s set an owner's allowlist", role)
		}
	},
}

// docs/GRAPHQL.md's "Who may do what" is what the API does: every row is
// attempted by an owner, an administrator, a user and support staff, each
// in a fresh account, and the answer must be the cell's ✓ or —; a cell's
// words (a restriction, or what a partial right covers) are checked too.
func TestDocumentedRoleMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	staff := e.staff("support@skiff.example")
	roles := []string{"owner", "admin", "user", "staff"}

	rows := documentedRoleMatrix(t)
	for n, row := range rows {
		p, ok := matrixRows[row[0]]
		if !ok {
			t.Errorf("docs/GRAPHQL.md row %q has no attempt in this test: add one", row[0])
			continue
		}
		r := newRoleEnv(e, n, staff)
		for i, role := range roles {
			cell := strings.TrimSpace(row[i+1])
			var want bool
			switch {
			case strings.HasPrefix(cell, "✓"):
				want = true
			case cell == "—":
				want = false
			default: // a partial right: its words say what, checked below
				check, ok := matrixCells[row[0]+"|"+cell]
				if !ok {
					t.Errorf("row %q, %s: no check for the cell %q", row[0], role, cell)
				} else {
					check(t, r, role)
				}
				continue
			}
			if got := p(r, role); got != want {
				t.Errorf("row %q: %s allowed=%v, docs say %q", row[0], role, got, cell)
			}
			if check, ok := matrixCells[row[0]+"|"+cell]; ok {
				check(t, r, role)
			} else if cell != "✓" && cell != "—" && !strings.HasPrefix(cell, "✓ (any account)") && !strings.HasPrefix(cell, "✓ (required)") {
				t.Errorf("row %q, %s: no check for the cell's words %q", row[0], role, cell)
			}
		}
	}
	if len(rows) != len(matrixRows) {
		t.Errorf("docs/GRAPHQL.md has %d rows, this test %d", len(rows), len(matrixRows))
	}
}

func newRoleEnv(e *env, n int, staff string) *roleEnv {
	e.t.Helper()
	_, owner := e.account(fmt.Sprintf("Matrix %d", n), fmt.Sprintf("owner%d@matrix.example", n))
	var acct struct{ Account struct{ ID string } }
	e.mustDo(owner, `{ account { id } }`, nil, &acct)
	r := &roleEnv{e: e, account: acct.Account.ID, tokens: map[string]string{"owner": owner, "staff": staff}}
	r.ownerID, _ = e.user(owner, fmt.Sprintf("owner2-%d@matrix.example", n), "OWNER")
	r.adminID, r.tokens["admin"] = e.user(owner, fmt.Sprintf("admin%d@matrix.example", n), "ADMIN")
	r.userID, r.tokens["user"] = e.user(owner, fmt.Sprintf("user%d@matrix.example", n), "USER")
	r.otherUserID, _ = e.user(owner, fmt.Sprintf("other%d@matrix.example", n), "USER")
	return r
}

// documentedRoleMatrix reads the table under "## Who may do what" in
// docs/GRAPHQL.md: each row's what, then the owner, admin, user and staff cells.
func documentedRoleMatrix(t *testing.T) [][]string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "GRAPHQL.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "## Who may do what")
	if start < 0 {
		t.Fatal(`docs/GRAPHQL.md has no "## Who may do what"`)
	}
	var rows [][]string
	for i, line := range strings.Split(text[start:], "\n")[1:] {
		if strings.HasPrefix(line, "## ") {
			break
		}
		if !strings.HasPrefix(line, "|") {
			if len(rows) > 0 {
				break // the table ended
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 5 {
			t.Fatalf("docs/GRAPHQL.md role table line %d: %q", i, line)
		}
		what := strings.TrimSpace(cells[0])
		if what == "" || strings.HasPrefix(what, "---") {
			continue // the header and its rule
		}
		row := []string{what}
		for _, c := range cells[1:] {
			row = append(row, strings.TrimSpace(c))
		}
		rows = append(rows, row)
	}
	return rows
}
