package generated

// Hand-written, not generated: helpers that graph/gqlgen_gen.go puts in
// place of some of gqlgen's calls in generated.go, so that the work gqlgen
// does for every object of a response is done only when the query needs it.

import (
	"context"
	"errors"
	"sync"

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

// newScalarFieldContext is graphql.NewScalarFieldContext without an
// allocation per field: gqlgen's makes a new Child function for every field
// of every object, to tell the type's name in its error; here there is one
// per type, made the first time.
func newScalarFieldContext(object string, field graphql.CollectedField, isMethod, isResolver bool, typeName string) (*graphql.FieldContext, error) {
	child, ok := noChildren.Load(typeName)
	if !ok {
		child, _ = noChildren.LoadOrStore(typeName, childFunc(func(context.Context, graphql.CollectedField) (*graphql.FieldContext, error) {
			return nil, errors.New("field of type " + typeName + " does not have child fields")
		}))
	}
	return &graphql.FieldContext{
		Object:     object,
		Field:      field,
		IsMethod:   isMethod,
		IsResolver: isResolver,
		Child:      child.(childFunc),
	}, nil
}

// childFunc is graphql.FieldContext's Child.
type childFunc = func(context.Context, graphql.CollectedField) (*graphql.FieldContext, error)

// noChildren holds newScalarFieldContext's Child functions by type name.
var noChildren sync.Map
