package tenant_test

import (
	"strings"
	"testing"

	"github.com/skiffhq/skiff/tenant"
)

// Names that could disguise themselves or others are refused; ordinary
// names in any script, with accents, spaces and emoji, are kept.
func TestNormNameRefusesInvisibleCharacters(t *testing.T) {
	for _, name := range []string{
		"rtl\u202etxt.exe",   // right-to-left override
		"a\u202ab",           // left-to-right embedding
		"file\u2067name",     // right-to-left isolate
		"\u200fmark",         // right-to-left mark
		"ar\u061cabic",       // Arabic letter mark
		"ad\u200bmin",        // zero-width space
		"ad\u200cmin",        // zero-width non-joiner
		"ad\u200dmin",        // zero-width joiner
		"ad\u2060min",        // word joiner
		"\ufeffbom",          // byte order mark
		"soft\u00adhyphen",   // soft hyphen
		"tag\U000E0041",      // tag character
		"line\u2028break",    // line separator
		"para\u2029graph",    // paragraph separator
		"private\ue000use",   // private use
		"hangul\u3164filler", // Hangul filler, renders as nothing
		"khmer\u17b4",        // Khmer inherent vowel, renders as nothing
	} {
		_, err := tenant.NormName("name", name, 200)
		if tenant.ErrorCode(err) != tenant.EInvalid || tenant.ErrorField(err) != "name" ||
			!strings.Contains(tenant.ErrorMessage(err), "invisible or text-direction characters (it contains U+") {
			t.Errorf("%+q: got %v, want INVALID naming the invisible character", name, err)
		}
	}
	for _, name := range []string{
		"Ada Lovelace", "José Müller", "Łukasz Żółć", "山田\u3000太郎", "محمد علي", "דוד לוי",
		"Zoë", "Team 🚀", "Heart \u2764\ufe0f", "A\u00a0B", "e\u0301", "Quarterly reports (2026)",
	} {
		if got, err := tenant.NormName("name", name, 200); err != nil || got != name {
			t.Errorf("%+q: got %q, %v; want it kept", name, got, err)
		}
	}
}

// An email is a login and how people are shown to others, so like a name it
// cannot carry what is invisible or reorders text: "owner\u200b@…" would
// look like the owner's address, and a right-to-left override turns the
// address shown around.
func TestNormEmailRefusesInvisibleCharacters(t *testing.T) {
	for _, email := range []string{
		"\u202e@b.example",             // right-to-left override
		"owner\u200b@demo.example",     // zero-width space
		"owner@demo\u200d.example",     // zero-width joiner in the domain
		"owner\u2066@demo.example",     // left-to-right isolate
		"\ufeffowner@demo.example",     // byte order mark
		"owner\u00ad@demo.example",     // soft hyphen
		"owner\u3164@demo.example",     // Hangul filler
		"owner\U000E0041@demo.example", // tag character
	} {
		_, err := tenant.NormEmail("email", email)
		if tenant.ErrorCode(err) != tenant.EInvalid || tenant.ErrorField(err) != "email" {
			t.Errorf("%+q: got %v, want INVALID on email", email, err)
		}
	}
	for _, email := range []string{"ada@example.com", "josé@exämple.de", "山田@例え.jp", "a.b+c@sub.example.org"} {
		if got, err := tenant.NormEmail("email", email); err != nil || got != email {
			t.Errorf("%+q: got %q, %v; want it kept", email, got, err)
		}
	}
}
