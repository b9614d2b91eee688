// Package runecut cuts text to a length in bytes without splitting a
// UTF-8 character.
package runecut

import "unicode/utf8"

// Prefix is s cut to at most n bytes, at the start of a character.
func Prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
