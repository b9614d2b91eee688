package graph_test

import (
	"fmt"
	"strings"
	"testing"
)

const importMutation = `mutation($csv: String!) { importUsers(input: {csv: $csv}) {
	users { email role sftp { enabled } group { name } }
	problems { line column code message }
	userErrors { field code message } } }`

type importOut struct {
	ImportUsers struct {
		Users []struct {
			Email string
			Role  string
			Sftp  struct{ Enabled bool }
			Group struct{ Name string }
		}
		Problems []struct {
			Line    *int
			Column  *string
			Code    string
			Message string
		}
		UserErrors []userError
	}
}

func (e *env) importUsers(token, csv string) importOut {
	e.t.Helper()
	var out importOut
	e.mustDo(token, importMutation, vars{"csv": csv}, &out)
	return out
}

func (e *env) usersCSV(token string) string {
	e.t.Helper()
	var out struct{ Account struct{ UsersCsv string } }
	e.mustDo(token, `{ account { usersCsv } }`, nil, &out)
	return out.Account.UsersCsv
}

func TestImportUsersRefusesTheWholeFileAndNamesEveryBadLine(t *testing.T) {
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.test")
	var b strings.Builder
	b.WriteString("email,name,role,group,sftp,custom login\n")
	for i := range 10 {
		switch i {
		case 3: // line 5
			b.WriteString("u3@,Bad,USER,,no,\n")
		case 8: // line 10
			b.WriteString("u8@acme.test,Bad,USER,Nobody's Group,no,\n")
		default:
			fmt.Fprintf(&b, "u%d@acme.test,User %d,USER,,no,\n", i, i)
		}
	}
	out := e.importUsers(owner, b.String()).ImportUsers
	if len(out.Users) != 0 || len(out.Problems) != 2 || len(out.UserErrors) != 2 {
		t.Fatalf("import = %+v", out)
	}
	if p := out.Problems[0]; p.Line == nil || *p.Line != 5 || *p.Column != "email" || p.Code != "INVALID" {
		t.Fatalf("first problem = %+v", p)
	}
	if p := out.Problems[1]; p.Line == nil || *p.Line != 10 || *p.Column != "group" {
		t.Fatalf("second problem = %+v", p)
	}
	for i, want := range []string{"line 5: email: ", "line 10: group: "} {
		ue := out.UserErrors[i]
		if ue.Field == nil || *ue.Field != "csv" || ue.Code != "INVALID" || !strings.HasPrefix(ue.Message, want) {
			t.Fatalf("user error %d = %+v, want field csv and %q", i, ue, want)
		}
	}
	if strings.Contains(e.usersCSV(owner), "u0@acme.test") {
		t.Fatal("a refused import created users")
	}
}

func TestImportUsersNeedsFreeLicencesForEverySFTPRow(t *testing.T) {
	e := newEnv(t)
	accountID, owner := e.account("Acme", "owner@acme.test")
	staff := e.staff("support@skiff.test")
	var trial struct {
		StartSftpTrial struct {
			Account struct{ SftpLicences struct{ Used int } }
		}
	}
	e.mustDo(owner, `mutation { startSftpTrial { account { sftpLicences { used } } } }`, nil, &trial)
	e.mustDo(staff, `mutation($a: ID!, $n: Int!) { setSftpLicences(input: {accountId: $a, licences: $n}) { userErrors { message } } }`,
		vars{"a": globalID("Account", accountID), "n": trial.StartSftpTrial.Account.SftpLicences.Used + 5}, nil)
	var b strings.Builder
	b.WriteString("email,name,sftp\n")
	for i := range 6 {
		fmt.Fprintf(&b, "s%d@acme.test,S %d,yes\n", i, i)
	}
	out := e.importUsers(owner, b.String()).ImportUsers
	if len(out.Users) != 0 || len(out.Problems) != 1 || out.Problems[0].Line != nil || out.Problems[0].Code != "LIMIT" ||
		!strings.Contains(out.Problems[0].Message, "for 6 users, but only 5 of") || out.UserErrors[0].Code != "LIMIT" {
		t.Fatalf("import needing 6 licences with 5 free = %+v", out)
	}
	if strings.Contains(e.usersCSV(owner), "s0@acme.test") {
		t.Fatal("a refused import created users")
	}
}

func TestImportUsersThenExportRoundTrips(t *testing.T) {
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.test")
	e.mustDo(owner, `mutation { startSftpTrial { userErrors { message } } }`, nil, nil)
	out := e.importUsers(owner, "email,name,role,group,sftp\n"+
		"ann@acme.test,\"Smith, Ann\",admin,Jailed Users,yes\n"+
		"bob@acme.test,Bob,,associate,no\n").ImportUsers
	if len(out.Problems) != 0 || len(out.Users) != 2 {
		t.Fatalf("import = %+v", out)
	}
	if u := out.Users[0]; u.Role != "ADMIN" || !u.Sftp.Enabled || u.Group.Name != "Jailed Users" {
		t.Fatalf("ann = %+v", u)
	}
	if u := out.Users[1]; u.Role != "USER" || u.Sftp.Enabled || u.Group.Name != "Associate" {
		t.Fatalf("bob = %+v", u)
	}
	csv := e.usersCSV(owner)
	if !strings.HasPrefix(csv, "email,name,role,group,sftp,custom login\n") ||
		!strings.Contains(csv, "ann@acme.test,\"Smith, Ann\",ADMIN,Jailed Users,true,\n") {
		t.Fatalf("export =\n%s", csv)
	}

	// Emails are unique across Skiff, so the users move to other addresses.
	_, other := e.account("Beta", "owner@beta.test")
	e.mustDo(other, `mutation { startSftpTrial { userErrors { message } } }`, nil, nil)
	moved := strings.ReplaceAll(csv, "@acme.test", "@acme-copy.test")
	if out := e.importUsers(other, moved).ImportUsers; len(out.Problems) != 0 || len(out.Users) != 3 {
		t.Fatalf("import into Beta = %+v", out)
	}
	back := e.usersCSV(other)
	var ownRow string
	for _, l := range strings.Split(back, "\n") {
		if strings.HasPrefix(l, "owner@beta.test,") {
			ownRow = l + "\n"
		}
	}
	if got := strings.Replace(back, ownRow, "", 1); got != moved {
		t.Fatalf("round trip:\n%s\nwant (plus Beta's owner):\n%s", back, moved)
	}

	// Plain users neither import nor export.
	_, plain := e.user(owner, "plain@acme.test", "USER")
	e.mustFail(plain, `{ account { usersCsv } }`, nil, "FORBIDDEN")
	e.mustFail(plain, importMutation, vars{"csv": "email,name\nx@acme.test,X\n"}, "FORBIDDEN")
}
