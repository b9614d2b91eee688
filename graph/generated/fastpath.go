package generated

// Hand-written, not generated: helpers that graph/gqlgen_gen.go puts in
// place of some of gqlgen's calls in generated.go, so that the work gqlgen
// does for every object of a response is done only when the query needs it.

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
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

// slowPaths makes the code graph/gqlgen_gen.go gives fast paths take
// gqlgen's own instead, so that tests can compare the two answers.
var slowPaths = false

// SetSlowPaths sets slowPaths, for tests only: the handler must not be
// serving meanwhile.
func SetSlowPaths(on bool) { slowPaths = on }

// The fast path of a leaf field (graph/gqlgen_gen.go writes it at the top of
// the field's function) marshals the value of its Go struct field at once.
// gqlgen's path does the same after a field context, a context value,
// three closures and the value boxed twice, which in a page of objects is
// most of the work per field. What the fast path skips serves only:
//   - field middleware (AroundFields and directives): Skiff has none, and
//     graph.NewHandler refuses a FieldInterceptor;
//   - the field's context for errors and children: reading a struct field
//     cannot fail, a scalar has no children, and a value gqlgen would
//     answer null for (with an error at the field's path) takes gqlgen's
//     path;
//   - recovering a panic: reading a field of the object's own struct (not
//     one promoted through an embedded pointer) cannot panic.

// newFieldWriter is what an object's function returns in place of its
// FieldSet when none of its fields is deferred: it writes the same JSON
// without what FieldSet.MarshalGQL allocates for every object (a map of
// the names written, an iterator, and a copy of every field's
// CollectedField on the heap).
func newFieldWriter(fields []graphql.CollectedField, out *graphql.FieldSet, deferred *graphql.DeferredGroup) graphql.Marshaler {
	if slowPaths || len(deferred.Defers) > 0 {
		return out
	}
	return &fieldWriter{fields: fields, values: out.Values}
}

type fieldWriter struct {
	fields []graphql.CollectedField
	values []graphql.Marshaler
}

// MarshalGQL writes the fields as FieldSet.MarshalGQL does: in order, the
// first of two fields with one response name only. A response name is a
// GraphQL name, [_A-Za-z][_0-9A-Za-z]*, so it is written as it is, with no
// escaping.
func (w *fieldWriter) MarshalGQL(out io.Writer) {
	sep := "{"
	for i := range w.fields {
		alias := w.fields[i].Alias
		if written(w.fields[:i], alias) {
			continue
		}
		io.WriteString(out, sep)
		sep = ","
		io.WriteString(out, `"`)
		io.WriteString(out, alias)
		io.WriteString(out, `":`)
		w.values[i].MarshalGQL(out)
	}
	if sep == "{" {
		io.WriteString(out, sep)
	}
	io.WriteString(out, "}")
}

// written tells whether one of fields answers to alias.
func written(fields []graphql.CollectedField, alias string) bool {
	for i := range fields {
		if fields[i].Alias == alias {
			return true
		}
	}
	return false
}

// recoverField is what gqlgen does for a panic under a field, for the fast
// path of an object field: the field is null, with the error at its path.
func recoverField(ctx context.Context, oc *graphql.OperationContext, ret *graphql.Marshaler) {
	if r := recover(); r != nil {
		oc.Error(ctx, oc.Recover(ctx, r))
		*ret = graphql.Null
	}
}

// marshalList marshals a list of objects of type typ as
// graphql.MarshalSliceConcurrently does (each element with its index in
// its field context, a panic making that element null), but without a
// goroutine per element when none of the fields sel selects in it, at any
// depth, may wait (concurrentFields): a goroutine, its stack growing to
// gqlgen's depth, a closure and a wait group per element buy nothing when
// no element can wait for another's data-loader batch.
func marshalList(ctx context.Context, sel ast.SelectionSet, typ string, n int, marshal func(ctx context.Context, i int) graphql.Marshaler) graphql.Array {
	if slowPaths || n < 2 || !cannotWait(sel, typ) {
		return graphql.MarshalSliceConcurrently(ctx, n, 0, false, marshal)
	}
	ret := make(graphql.Array, n)
	for i := range n {
		ret[i] = marshalElement(ctx, i, marshal)
	}
	return ret
}

// marshalElement marshals element i of a list, as MarshalSliceConcurrently
// does in each goroutine.
func marshalElement(ctx context.Context, i int, marshal func(ctx context.Context, i int) graphql.Marshaler) (ret graphql.Marshaler) {
	ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Index: &i})
	defer func() {
		if r := recover(); r != nil {
			graphql.AddError(ctx, graphql.Recover(ctx, r))
			ret = graphql.Null
		}
	}()
	return marshal(ctx, i)
}

// cannotWait tells whether no field sel selects in an object of type typ,
// at any depth and in any fragment, is one gqlgen resolves concurrently.
// A field of an interface or union type, or of a type it does not know,
// counts as one that may wait.
func cannotWait(sel ast.SelectionSet, typ string) bool {
	fields, known := concurrentFields[typ]
	if !known {
		return false
	}
	for _, s := range sel {
		switch s := s.(type) {
		case *ast.Field:
			if fields[s.Name] {
				return false
			}
			if len(s.SelectionSet) > 0 && (s.Definition == nil || !cannotWait(s.SelectionSet, s.Definition.Type.Name())) {
				return false
			}
		case *ast.InlineFragment:
			if !cannotWait(s.SelectionSet, typ) {
				return false
			}
		case *ast.FragmentSpread:
			if s.Definition == nil || !cannotWait(s.Definition.SelectionSet, typ) {
				return false
			}
		default:
			return false
		}
	}
	return true
}
