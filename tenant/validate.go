package tenant

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// NormEmail validates and normalises an email address for field.
func NormEmail(field, email string) (string, error) {
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

// NormName validates a display name or title: trimmed, 1 to max runes, no control characters.
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
	}
	return name, nil
}

// likePattern turns a user's search text into an ILIKE pattern matching it anywhere.
func LikePattern(search string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.TrimSpace(search)) + "%"
}
