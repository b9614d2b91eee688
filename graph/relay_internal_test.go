package graph

import (
	"encoding/base64"
	"strings"
	"testing"
)

// A global ID is base64url of "<Type>:<id>", and costs one allocation, its
// string, whatever the lengths (longer ones than the stack's arrays take
// the long way).
func TestGlobalIDIsOneAllocation(t *testing.T) {
	for _, c := range []struct{ typ, id string }{
		{"User", "6f5264ae-a217-4d5d-99ff-6e1ceb5dd0f4"},
		{"ProjectFolder", "33d86564-458c-4970-9c58-699291b06958"},
		{"SftpSession", strings.Repeat("x", 100)},
	} {
		want := base64.RawURLEncoding.EncodeToString([]byte(c.typ + ":" + c.id))
		if got := globalID(c.typ, c.id); got != want {
			t.Errorf("globalID(%q, %q) = %q, want %q", c.typ, c.id, got, want)
		}
		if typ, id, ok := decodeGlobalID(globalID(c.typ, c.id)); !ok || typ != c.typ || id != c.id {
			t.Errorf("%q %q decodes as %q %q %v", c.typ, c.id, typ, id, ok)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { globalID("ProjectFolder", "33d86564-458c-4970-9c58-699291b06958") }); allocs > 1 {
		t.Errorf("%.0f allocations, want 1", allocs)
	}
}
