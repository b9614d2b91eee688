package people

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/sharing"
)

// Bulk import and export of users as CSV (RFC 4180, as encoding/csv reads
// and writes it). The format, also in docs/GRAPHQL.md:
//   - UTF-8 (a leading byte-order mark is ignored), at most MaxImportBytes
//     bytes and MaxImportRows users; comma-separated; a field holding a comma,
//     a quote or a line break is quoted with ", and a quote inside is doubled.
//   - A header row first, naming the columns in any order, ignoring case,
//     spaces, '_' and '-': email and name are required; role, group, sftp,
//     custom login and password are optional. An unknown column is refused.
//   - role: OWNER, ADMIN (or administrator) or USER, ignoring case; empty is
//     USER. Only owners import owners.
//   - group: a group's name as the account shows it, ignoring case; empty is
//     the default group (Pro).
//   - sftp: true/false, yes/no or 1/0, ignoring case; empty is false.
//   - custom login: needs sftp true and a dedicated IP; see SetCustomSFTPLogin.
//   - password: empty sends the user an invitation to set their own, as
//     createUser does without a password. Export never writes it.
//
// The import is checked as a whole and runs in one transaction: every row's
// problems are reported with its line number, and nothing is created if any
// row fails or if the rows with sftp true need more licences than are free.
const (
	MaxImportBytes = 1 << 20
	MaxImportRows  = 1000
	// maxImportColumns bounds the header row: more columns than this is
	// one problem (see parseImport).
	maxImportColumns = 50
)

// CSV column names, in the order export writes them.
const (
	colEmail       = "email"
	colName        = "name"
	colRole        = "role"
	colGroup       = "group"
	colSFTP        = "sftp"
	colCustomLogin = "custom login"
	colPassword    = "password"
)

var exportColumns = []string{colEmail, colName, colRole, colGroup, colSFTP, colCustomLogin}

// ImportProblem is one thing wrong with an import.
type ImportProblem struct {
	Line    int         // line of the CSV file (the header is line 1); 0 for the whole file
	Column  string      // the column at fault ("custom login"), "" when none
	Code    tenant.Code // INVALID, CONFLICT or LIMIT
	Message string
}

// String is the problem as one message: "line 3: email: …".
func (p ImportProblem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Column != "" {
		b.WriteString(p.Column + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ImportResult is an import's outcome: the users created, or the problems
// that stopped it (then no user was created).
type ImportResult struct {
	Users    []*tenant.User
	Problems []ImportProblem
}

// importRow is one parsed data row.
type importRow struct {
	line  int
	in    CreateUserInput
	group string
	bad   bool // has a problem found before the transaction
}

// ImportUsers creates users from CSV text in one transaction. Owners and
// administrators only. Problems with the rows come back in the result (and
// nothing is created); the error is for the caller's own faults
// (not logged in, not allowed) and outages.
func (s *Service) ImportUsers(ctx context.Context, data string) (*ImportResult, error) {
	p, err := tenant.RequireAdmin(ctx)
	if err != nil {
		return nil, err
	}
	rows, problems := parseImport(p, data)
	groupsSet := false
	for _, r := range rows {
		if r.group != "" {
			groupsSet = true
		}
	}
	if groupsSet {
		// Putting users in groups is the policy's to allow, as for createUser.
		if _, err := s.Sharing.RequireGroupManager(ctx); err != nil {
			return nil, err
		}
	}
	res := &ImportResult{Problems: problems}
	if len(rows) == 0 {
		if len(problems) == 0 {
			res.Problems = append(res.Problems, ImportProblem{Code: tenant.EInvalid, Message: "the file has no users after its header row"})
		}
		return res, nil
	}
	errRollback := errors.New("import has problems")
	err = s.InAccount(ctx, p.AccountID, func(q tenant.Queryer) error {
		res.Users = nil
		if err := s.importTx(ctx, q, p, rows, res); err != nil {
			return err
		}
		if len(res.Problems) > 0 {
			return errRollback
		}
		return nil
	})
	if groupsSet {
		s.Sharing.AfterUserGroupChange(p.AccountID, nil, false, err)
	}
	if errors.Is(err, errRollback) {
		res.Users = nil
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// importTx resolves groups, checks licences, then creates the rows one by
// one, each behind a savepoint so that a row refused by the database is
// reported with its line and the next rows are still checked.
func (s *Service) importTx(ctx context.Context, q tenant.Queryer, p *tenant.Principal, rows []importRow, res *ImportResult) error {
	groups, err := sharing.GroupIDsByNameTx(ctx, q, p.AccountID)
	if err != nil {
		return err
	}
	sftpRows := 0
	for i := range rows {
		r := &rows[i]
		if r.in.SFTPEnabled {
			sftpRows++
		}
		if r.group == "" {
			continue
		}
		id, ok := groups[strings.ToLower(r.group)]
		if !ok {
			res.Problems = append(res.Problems, ImportProblem{Line: r.line, Column: colGroup, Code: tenant.EInvalid,
				Message: fmt.Sprintf("no group named %q in this account", r.group)})
			r.bad = true
			continue
		}
		r.in.GroupID = id
	}
	if err := s.SFTP.ReserveLicencesTx(ctx, q, p.AccountID, sftpRows, "csv"); err != nil {
		if tenant.ErrorCode(err) == tenant.EInternal {
			return err
		}
		// Creating rows now would only repeat the shortage on each SFTP row.
		res.Problems = append(res.Problems, ImportProblem{Code: tenant.ErrorCode(err), Message: tenant.ErrorMessage(err)})
		return nil
	}
	for _, r := range rows {
		if r.bad {
			continue
		}
		if _, err := q.ExecContext(ctx, `SAVEPOINT import_row`); err != nil {
			return tenant.DBError(err)
		}
		u, err := s.CreateUserTx(ctx, q, p, r.in)
		if err != nil {
			if tenant.ErrorCode(err) == tenant.EInternal {
				return err
			}
			if _, rerr := q.ExecContext(ctx, `ROLLBACK TO SAVEPOINT import_row`); rerr != nil {
				return tenant.DBError(rerr)
			}
			res.Problems = append(res.Problems, ImportProblem{Line: r.line, Column: importColumnOf(tenant.ErrorField(err)),
				Code: tenant.ErrorCode(err), Message: tenant.ErrorMessage(err)})
			continue
		}
		res.Users = append(res.Users, u)
	}
	return nil
}

// importColumnOf names the CSV column of a CreateUserInput field.
func importColumnOf(field string) string {
	switch field {
	case "email":
		return colEmail
	case "name":
		return colName
	case "role":
		return colRole
	case "groupId":
		return colGroup
	case "sftpEnabled":
		return colSFTP
	case "customSftpLogin":
		return colCustomLogin
	case "password":
		return colPassword
	}
	return ""
}

// parseImport reads and checks the CSV text without the database: the
// format, each field, and repeats within the file. Rows with problems are
// kept (marked bad) so that the transaction can still check the others.
func parseImport(p *tenant.Principal, data string) ([]importRow, []ImportProblem) {
	var problems []ImportProblem
	whole := func(format string, args ...any) ([]importRow, []ImportProblem) {
		return nil, append(problems, ImportProblem{Code: tenant.EInvalid, Message: fmt.Sprintf(format, args...)})
	}
	if len(data) > MaxImportBytes {
		return whole("the file is %d bytes; an import takes at most %d bytes (%d users); split it", len(data), MaxImportBytes, MaxImportRows)
	}
	if !utf8.ValidString(data) {
		i := 0
		for i < len(data) {
			r, n := utf8.DecodeRuneInString(data[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return nil, []ImportProblem{{Line: strings.Count(data[:i], "\n") + 1, Code: tenant.EInvalid,
			Message: "the file is not valid UTF-8; save it as UTF-8 CSV"}}
	}
	data = strings.TrimPrefix(data, "\uFEFF")
	rd := csv.NewReader(strings.NewReader(data))
	rd.FieldsPerRecord = -1
	header, err := rd.Read()
	if err == io.EOF {
		return whole("the file is empty; the first line must name the columns: %s", strings.Join(exportColumns, ","))
	}
	if err != nil {
		return whole("%s", csvErrorMessage(err))
	}
	// The 7 columns, and room for a few mistakes each reported on its own;
	// beyond that one problem, not one per column (megabytes of them).
	if len(header) > maxImportColumns {
		return whole("the header row has %d columns; an import has at most %d: %s and password",
			len(header), len(exportColumns)+1, strings.Join(exportColumns, ", "))
	}
	cols := map[string]int{}
	for i, h := range header {
		c, ok := importColumn(h)
		switch {
		case !ok:
			problems = append(problems, ImportProblem{Line: 1, Code: tenant.EInvalid,
				Message: fmt.Sprintf("unknown column %q; the columns are %s and password", h, strings.Join(exportColumns, ", "))})
		case cols[c] > 0:
			problems = append(problems, ImportProblem{Line: 1, Code: tenant.EInvalid, Message: fmt.Sprintf("column %q appears twice", c)})
		default:
			cols[c] = i + 1
		}
	}
	for _, c := range []string{colEmail, colName} {
		if cols[c] == 0 {
			problems = append(problems, ImportProblem{Line: 1, Code: tenant.EInvalid,
				Message: fmt.Sprintf("the header row has no %q column; the first line must name the columns", c)})
		}
	}
	if len(problems) > 0 {
		return nil, problems
	}
	var rows []importRow
	emails := map[string]int{}
	logins := map[string]int{}
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// After a syntax error the rest of the file cannot be read reliably.
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			return nil, append(problems, ImportProblem{Line: line, Code: tenant.EInvalid, Message: csvErrorMessage(err)})
		}
		line, _ := rd.FieldPos(0)
		if len(rows) == MaxImportRows {
			return whole("the file has more than %d users; split it", MaxImportRows)
		}
		field := func(c string) string {
			if i := cols[c]; i > 0 && i <= len(rec) {
				return tenant.CSVUncell(strings.TrimSpace(rec[i-1]))
			}
			return ""
		}
		r := importRow{line: line, group: field(colGroup)}
		bad := func(col, format string, args ...any) {
			problems = append(problems, ImportProblem{Line: line, Column: col, Code: tenant.EInvalid, Message: fmt.Sprintf(format, args...)})
			r.bad = true
		}
		if len(rec) != len(header) {
			bad("", "the row has %d fields but the header has %d", len(rec), len(header))
		}
		var err2 error
		if r.in.Email, err2 = tenant.NormEmail(colEmail, field(colEmail)); err2 != nil {
			bad(colEmail, "%s", tenant.ErrorMessage(err2))
		} else if prev := emails[strings.ToLower(r.in.Email)]; prev > 0 {
			bad(colEmail, "%s is also on line %d", r.in.Email, prev)
		} else {
			emails[strings.ToLower(r.in.Email)] = line
		}
		if r.in.Name, err2 = tenant.NormName(colName, field(colName), 200); err2 != nil {
			bad(colName, "%s", tenant.ErrorMessage(err2))
		}
		switch role := strings.ToUpper(field(colRole)); role {
		case "", "USER":
			r.in.Role = tenant.RoleUser
		case "ADMIN", "ADMINISTRATOR":
			r.in.Role = tenant.RoleAdmin
		case "OWNER":
			r.in.Role = tenant.RoleOwner
			if p.Role != tenant.RoleOwner {
				bad(colRole, "only an owner can make another owner")
			}
		default:
			bad(colRole, "unknown role %q; use OWNER, ADMIN or USER", field(colRole))
		}
		switch v := strings.ToLower(field(colSFTP)); v {
		case "", "false", "no", "0":
		case "true", "yes", "1":
			r.in.SFTPEnabled = true
		default:
			bad(colSFTP, "%q is not a yes or no; use true or false", field(colSFTP))
		}
		if login := field(colCustomLogin); login != "" {
			r.in.CustomSFTPLogin = login
			if !r.in.SFTPEnabled {
				bad(colCustomLogin, "a custom login needs sftp set to true")
			} else if prev := logins[strings.ToLower(login)]; prev > 0 {
				bad(colCustomLogin, "%q is also on line %d", login, prev)
			} else {
				logins[strings.ToLower(login)] = line
			}
		}
		if pw := fieldRaw(rec, cols[colPassword]); pw != "" {
			if err := tenant.ValidatePassword(pw); err != nil {
				bad(colPassword, "%s", tenant.ErrorMessage(err))
			}
			r.in.Password = pw
		}
		rows = append(rows, r)
	}
	return rows, problems
}

// fieldRaw is a field as written (passwords are not trimmed).
func fieldRaw(rec []string, col int) string {
	if col > 0 && col <= len(rec) {
		return rec[col-1]
	}
	return ""
}

// importColumn recognises a header cell: "Custom Login", "custom_login" and
// "customLogin" all name the custom login column.
func importColumn(h string) (string, bool) {
	key := strings.Map(func(r rune) rune {
		if r == ' ' || r == '_' || r == '-' {
			return -1
		}
		return r
	}, strings.ToLower(strings.TrimSpace(h)))
	for _, c := range append(exportColumns, colPassword) {
		if strings.ReplaceAll(c, " ", "") == key {
			return c, true
		}
	}
	return "", false
}

func csvErrorMessage(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("not valid CSV (column %d: %v); quote a field holding a comma, quote or line break with \", and double a quote inside it", pe.Column, pe.Err)
	}
	return "not valid CSV"
}

// UsersCSV exports the account's live users, sorted by name, in the import's
// format (without passwords): importing it into another account recreates
// them with their roles, groups, SFTP access and custom logins. Owners and
// administrators only.
func (s *Service) UsersCSV(ctx context.Context, accountID string) (string, error) {
	p, err := tenant.RequireAdmin(ctx)
	if err != nil {
		return "", err
	}
	if p.AccountID != accountID {
		return "", tenant.NotFound("account")
	}
	var users []*tenant.User
	err = s.InAccount(ctx, accountID, func(q tenant.Queryer) error {
		return tenant.DBError(q.SelectContext(ctx, &users, `SELECT `+tenant.UserColumns+` FROM users
			WHERE account_id = $1 AND deleted_at IS NULL ORDER BY lower(name), id`, accountID))
	})
	if err != nil {
		return "", err
	}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	groups, err := s.Sharing.GroupsOfUsersUncounted(ctx, accountID, ids)
	if err != nil {
		return "", err
	}
	creds, err := s.SFTP.SFTPCredentialsForUsers(ctx, accountID, ids)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write(exportColumns)
	for _, u := range users {
		group, login := "", ""
		if g := groups[u.ID]; g != nil {
			group = g.Name
		}
		if c := creds[u.ID]; c != nil {
			login = c.CustomLogin
		}
		_ = w.Write([]string{tenant.CSVCell(u.Email), tenant.CSVCell(u.Name), string(u.Role), tenant.CSVCell(group), fmt.Sprint(u.SFTPEnabled), login})
	}
	w.Flush()
	return buf.String(), w.Error()
}
