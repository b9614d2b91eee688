package tenant

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// NormEmail validates and normalises an email address for field: a new
// address, which must also hold nothing invisible (see invisibleRune).
func NormEmail(field, email string) (string, error) {
	email, err := EmailSyntax(field, email)
	if err != nil {
		return "", err
	}
	// An email is a login and shows who someone is, so, as in names,
	// nothing invisible: "owner\u200b@…" must not pass for the owner's.
	for _, r := range email {
		if invisibleRune(r) {
			return "", Invalid(field, "email must not contain invisible or text-direction characters (it contains %U)", r)
		}
	}
	return email, nil
}

// EmailSyntax is NormEmail without the check for invisible characters: for
// addresses already stored (the outbox), which an older release may have
// taken.
func EmailSyntax(field, email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return "", Invalid(field, "email is required")
	}
	if len(email) > 254 {
		return "", Invalid(field, "email must be at most 254 characters")
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") {
		return "", Invalid(field, "%q is not a valid email address", email)
	}
	return email, nil
}

// NormName validates a display name or title: trimmed, 1 to max runes, no
// control characters and nothing invisible (see invisibleRune): a name must
// look like what it is, so "rtl\u202etxt.exe" or a zero-width space that
// makes two names look alike is refused, naming the character.
func NormName(field, name string, maxRunes int) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", Invalid(field, "%s is required", field)
	}
	if !utf8.ValidString(name) {
		return "", Invalid(field, "%s is not valid text", field)
	}
	if utf8.RuneCountInString(name) > maxRunes {
		return "", Invalid(field, "%s must be at most %d characters", field, maxRunes)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "", Invalid(field, "%s must not contain control characters", field)
		}
		if invisibleRune(r) {
			return "", Invalid(field, "%s must not contain invisible or text-direction characters (it contains %U)", field, r)
		}
	}
	return name, nil
}

// invisibleRune reports whether r is refused in names as invisible or able
// to reorder or disguise what is shown. The rule, over Unicode's tables:
//   - format characters (Cf): bidi embeddings, overrides and isolates
//     (U+202A–U+202E, U+2066–U+2069), marks (U+200E, U+200F, U+061C),
//     zero-width space, joiners and non-joiner (U+200B–U+200D), word joiner
//     and invisible operators (U+2060–U+2064), the BOM (U+FEFF), soft hyphen,
//     tag characters (U+E0000…);
//   - line and paragraph separators (Zl, Zp), surrogates (Cs) and private-use
//     characters (Co), which show as nothing or as a box;
//   - the remaining default-ignorable code points (Other_Default_Ignorable_
//     Code_Point: Hangul fillers U+115F, U+1160, U+3164, U+FFA0, Khmer vowels
//     U+17B4–U+17B5, …), which render as nothing.
//
// Letters, marks (so accents and the emoji variation selector U+FE0F) and
// ordinary spaces (Zs, including the no-break and ideographic spaces) stay
// allowed. Emoji joined by U+200D (ZWJ sequences) are refused with it: a
// name gives that up for being unambiguous.
func invisibleRune(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Cs, unicode.Co, unicode.Other_Default_Ignorable_Code_Point)
}

// likePattern turns a user's search text into an ILIKE pattern matching it anywhere.
func LikePattern(search string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.TrimSpace(search)) + "%"
}
