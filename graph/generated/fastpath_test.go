package generated

import (
	"context"
	"testing"

	"github.com/99designs/gqlgen/graphql"
)

// A scalar field's context is one allocation, and its Child says, as
// gqlgen's does, that the field's type has no fields.
func TestScalarFieldContextIsOneAllocation(t *testing.T) {
	field := graphql.CollectedField{}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := newScalarFieldContext("User", field, false, false, "String"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("%.0f allocations, want 1", allocs)
	}
	for _, typ := range []string{"String", "ID", "String"} {
		ours, _ := newScalarFieldContext("User", field, true, true, typ)
		theirs, _ := graphql.NewScalarFieldContext("User", field, true, true, typ)
		_, err := ours.Child(context.Background(), field)
		_, want := theirs.Child(context.Background(), field)
		if err == nil || err.Error() != want.Error() {
			t.Errorf("%s: Child says %v, gqlgen's %v", typ, err, want)
		}
		if ours.Object != theirs.Object || !ours.IsMethod || !ours.IsResolver {
			t.Errorf("%s: %+v, gqlgen's %+v", typ, ours, theirs)
		}
	}
}
