package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The "done when", through `skiff serve` as a client sees it: an
// admin, with GraphQL alone, jails a user, creates a project folder and
// shares it with them as READ; the user's OpenSSH sftp session shows only
// that folder, whatever path they try, downloads the file the owner put
// there and cannot upload; the owner finds the folder in their own
// /My Files/. docs/PERMISSIONS.md and the README's tour show these very
// operations.
func TestServeJailedUserReadsASharedFolder(t *testing.T) {
	t.Parallel()
	s, dl, _ := startDemo(t)
	owner := s.login(t, dl.OwnerEmail, dl.OwnerPassword)

	// As in the README tour's steps 3 and 4: SFTP for the owner and for a
	// user, Alice, whom the owner then jails.
	d := s.gql(t, owner, `{ viewer { ... on UserViewer { user { id } } } }`, nil)
	ownerID := str(d, "viewer", "user", "id")
	d = s.gql(t, owner, `mutation($u: ID!) { setSftpAccess(input: {userId: $u, enabled: true}) {
		user { sftp { credentials { login } } } userErrors { message } } }`, map[string]any{"u": ownerID})
	ownerLogin := str(d, "setSftpAccess", "user", "sftp", "credentials", "login")
	const alicePassword = "a long password here"
	d = s.gql(t, owner, `mutation($p: String!) { createUser(input: {email: "alice@demo.example", name: "Alice", password: $p, sftpEnabled: true}) {
		user { id sftp { credentials { login } } } userErrors { field message } } }`, map[string]any{"p": alicePassword})
	aliceID, aliceLogin := str(d, "createUser", "user", "id"), str(d, "createUser", "user", "sftp", "credentials", "login")
	if ownerLogin == "" || aliceID == "" || aliceLogin == "" {
		t.Fatalf("SFTP logins: owner %q, Alice %q (%v)", ownerLogin, aliceLogin, d)
	}

	// Jail Alice.
	d = s.gql(t, owner, `{ account { groups { edges { node { id name builtin jailed } } } } }`, nil)
	var jailedID string
	for _, e := range path(d, "account", "groups", "edges").([]any) {
		if str(e, "node", "builtin") == "JAILED" {
			jailedID = str(e, "node", "id")
		}
	}
	d = s.gql(t, owner, `mutation($u: ID!, $g: ID!) { setUserGroup(input: {userId: $u, groupId: $g}) {
		user { id group { name jailed } } userErrors { field code message } } }`, map[string]any{"u": aliceID, "g": jailedID})
	if path(d, "setUserGroup", "user", "group", "jailed") != true {
		t.Fatalf("setUserGroup: %v", d)
	}

	// A project folder, shared with Alice as READ.
	d = s.gql(t, owner, `mutation { createProjectFolder(input: {name: "Deliverables"}) {
		projectFolder { id name myRights } userErrors { field code message } } }`, nil)
	folderID := str(d, "createProjectFolder", "projectFolder", "id")
	if folderID == "" {
		t.Fatalf("createProjectFolder: %v", d)
	}
	d = s.gql(t, owner, `mutation($f: ID!, $u: ID!) { shareProjectFolder(input: {folderId: $f, userId: $u, preset: READ}) {
		projectFolder { members { preset user { email } group { name } } } userErrors { field code message } } }`,
		map[string]any{"f": folderID, "u": aliceID})
	members := path(d, "shareProjectFolder", "projectFolder", "members").([]any)
	if !slices.ContainsFunc(members, func(m any) bool {
		return str(m, "user", "email") == "alice@demo.example" && str(m, "preset") == "READ"
	}) {
		t.Fatalf("shareProjectFolder: %v", d)
	}

	// Alice sees what she has.
	alice := s.login(t, "alice@demo.example", alicePassword)
	d = s.gql(t, alice, `{ viewer { ... on UserViewer { user {
		group { name jailed }
		projectsSharedWithMe { edges { preset rights node { name } } }
	} } } }`, nil)
	shared := path(d, "viewer", "user", "projectsSharedWithMe", "edges").([]any)
	if len(shared) != 1 || str(shared[0], "preset") != "READ" || str(shared[0], "node", "name") != "Deliverables" {
		t.Fatalf("Alice's projectsSharedWithMe: %v", d)
	}

	// The owner puts a report into the folder.
	dir := t.TempDir()
	report := filepath.Join(dir, "report.csv")
	if err := os.WriteFile(report, []byte("q1,q2\n10,20\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := sftpRun(t, s.sftp, ownerLogin, "", dl.OwnerPassword, `put `+report+` "/Projects Shared With Me/Deliverables/report.csv"`+"\n")
	if err != nil || slices.ContainsFunc(strings.Split(out, "\n"), refusal) {
		t.Fatalf("the owner's upload: %v\n%s", err, out)
	}

	// Alice's session: only the folder, whatever she tries.
	mine := filepath.Join(dir, "mine.txt")
	if err := os.WriteFile(mine, []byte("not allowed"), 0o600); err != nil {
		t.Fatal(err)
	}
	back := filepath.Join(dir, "back.csv")
	myFiles := []string{
		`ls -1 "/My Files"`, `ls -1 "../My Files"`, `cd "/My Files"`, `get "/My Files/report.csv" ` + filepath.Join(dir, "x"),
		`ls -1 "Deliverables/../../My Files"`, `mkdir "/My Files"`, `put ` + mine + ` "/My Files/mine.txt"`,
	}
	commands := []string{"pwd", "ls -1 /", "ls -1 ..", "ls -1", "ls -1 Deliverables",
		"get Deliverables/report.csv " + back, "put " + mine + " Deliverables/mine.txt"}
	out, err = sftpRun(t, s.sftp, aliceLogin, "", alicePassword, strings.Join(append(commands, myFiles...), "\n")+"\n")
	if err != nil {
		t.Fatalf("Alice's session: %v\n%s", err, out)
	}
	got := sftpSections(out)
	for cmd, want := range map[string][]string{
		"pwd":                []string{"Remote working directory: /Projects Shared With Me"},
		"ls -1 /":            []string{"/Projects Shared With Me"},
		"ls -1 ..":           []string{"../Projects Shared With Me"},
		"ls -1":              []string{"Deliverables"},
		"ls -1 Deliverables": []string{"Deliverables/report.csv"},
	} {
		if !slices.Equal(got[cmd], want) {
			t.Errorf("Alice's %q shows %q; want %q", cmd, got[cmd], want)
		}
	}
	if b, err := os.ReadFile(back); err != nil || string(b) != "q1,q2\n10,20\n" {
		t.Errorf("Alice's download = %q, %v", b, err)
	}
	if lines := got["put "+mine+" Deliverables/mine.txt"]; !slices.ContainsFunc(lines, func(l string) bool {
		return strings.Contains(l, "Permission denied")
	}) {
		t.Errorf("Alice's upload shows %q; want permission denied", lines)
	}
	for _, cmd := range myFiles {
		lines, ok := got[cmd]
		if !ok {
			t.Errorf("Alice's session did not run %q:\n%s", cmd, out)
		}
		for _, l := range lines {
			// put says what it tries before it is refused.
			if !refusal(l) && !strings.HasPrefix(l, "Uploading ") {
				t.Errorf("Alice's %q shows %q; want only a refusal", cmd, l)
			}
		}
	}

	if t.Failed() {
		t.Logf("Alice's session:\n%s", out)
	}

	// The owner finds the folder in their own My Files, holding the report
	// and nothing of Alice's.
	out, err = sftpRun(t, s.sftp, ownerLogin, "", dl.OwnerPassword, `ls -1 "/My Files"`+"\n"+`ls -1 "/My Files/Deliverables"`+"\n")
	if err != nil {
		t.Fatalf("the owner's session: %v\n%s", err, out)
	}
	got = sftpSections(out)
	if lines := got[`ls -1 "/My Files"`]; !slices.Equal(lines, []string{"/My Files/Deliverables"}) {
		t.Errorf("the owner's /My Files shows %q; want the folder", lines)
	}
	if lines := got[`ls -1 "/My Files/Deliverables"`]; !slices.Equal(lines, []string{"/My Files/Deliverables/report.csv"}) {
		t.Errorf("the owner's /My Files/Deliverables shows %q; want only the report", lines)
	}
}

// sftpSections splits what sftpRun printed by command: OpenSSH's sftp
// echoes each command it reads ("sftp> ls -1") before its output and errors,
// line-buffered, so they come in order. Commands map to the lines after them.
func sftpSections(out string) map[string][]string {
	sections := map[string][]string{}
	var cmd string
	for _, line := range strings.Split(out, "\n") {
		if c, ok := strings.CutPrefix(line, "sftp> "); ok {
			cmd = c
			sections[cmd] = []string{}
			continue
		}
		if line = strings.TrimSpace(line); line != "" && cmd != "" {
			sections[cmd] = append(sections[cmd], line)
		}
	}
	return sections
}

// refusal reports whether a line of sftp output is an error message.
func refusal(line string) bool {
	for _, s := range []string{"not found", "No such file", "Permission denied", "Couldn't", "Can't"} {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}
