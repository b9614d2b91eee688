package sftpaccess

import (
	"strings"
	"testing"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

func TestCustomLoginRules(t *testing.T) {
	for in, want := range map[string]string{
		"backup":                               "backup",
		"  J.Smith ":                           "j.smith",
		"abc":                                  "abc",
		"a_b-c.9":                              "a_b-c.9",
		"abcd-efghi":                           "abcd-efghi", // one letter too many to be an ID
		"abcd_efgh":                            "abcd_efgh",
		strings.Repeat("x", maxCustomLoginLen): strings.Repeat("x", maxCustomLoginLen),
	} {
		if got, err := normCustomLogin("login", in); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"", "ab", strings.Repeat("x", maxCustomLoginLen+1),
		"1backup", "_backup", ".backup", "-backup", // must start with a letter
		"back up", "back@up", "backup/", "émile", "backup\x00", "ｂackup",
		"k7m2-p9xd", "abcd-efgh", "ABCD-1234", "zzzz-zzzz", // the shape of login IDs
	} {
		_, err := normCustomLogin("login", in)
		if tenant.ErrorCode(err) != tenant.EInvalid || tenant.ErrorField(err) != "login" || tenant.ErrorMessage(err) == "" {
			t.Errorf("%q: got %v, want an invalid login", in, err)
		}
	}
	// Every issued login ID has the refused shape.
	for range 50 {
		id, err := newLoginID()
		if err != nil || !sftplogin.LooksLikeLoginID(id) {
			t.Fatalf("login ID %q (%v) does not look like one", id, err)
		}
	}
}
