package generated

// Hand-written, not generated: helpers that graph/gqlgen_gen.go puts in
// place of some of gqlgen's calls in generated.go, so that the work gqlgen
// does for every object of a response is done only when the query needs it.

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
)

// newDeferredGroup is graphql.NewDeferredGroup for an object whose fields
// are collected: gqlgen starts a group for every object it resolves, which
// computes the object's whole path from the root (a slice and a boxed name
// per level) and allocates a field set and a map, though they are used only
// for fields under @defer. Without such a field the group stays empty, as
// gqlgen's would: ResolveConcurrently touches it only for a deferred field,
// and the object processes it only when it holds a deferred view.
func newDeferredGroup(ctx context.Context, fields []graphql.CollectedField) graphql.DeferredGroup {
	for i := range fields {
		if fields[i].IsDeferred() {
			return graphql.NewDeferredGroup(ctx)
		}
	}
	return graphql.DeferredGroup{Context: ctx}
}
