package tenant

import "strings"

// CSVCell escapes a cell of an exported CSV file that a spreadsheet would
// take for a formula (OWASP's CSV injection advice): one that starts with =,
// +, -, @, a tab or a carriage return gets a leading apostrophe, which
// spreadsheets show as text. Names, emails, paths and logins come from
// users and clients.
func CSVCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// CSVUncell takes off the apostrophe CSVCell put before a cell, so that an
// exported file imports as it was.
func CSVUncell(s string) string {
	if len(s) > 1 && s[0] == '\'' && strings.ContainsRune("=+-@\t\r", rune(s[1])) {
		return s[1:]
	}
	return s
}
