package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/sharing"
)

// The cost of a request is bounded before it is spent, in three steps:
//
//  1. sizeLimit, before validation (whose overlapping-fields rule is
//     quadratic in repeated fields): the document is parsed with a token
//     limit and refused when a selection set holds too many selections or the
//     whole operation, fragments expanded, too many fields.
//  2. costLimit, after validation and before execution: depth, then complexity in which
//     a paged field's selection counts once per item it may return (its
//     `first`, or tenant.DefaultPageSize without one). An unpaged list
//     (ProjectFolder.members, Account.sftpSessions, User.sshKeys) counts
//     once here, and once per further item it holds as soon as it is
//     loaded, before its items are resolved (chargeList); Account.usersCsv,
//     a whole list in one value, may be resolved once (chargeOnce).
//  3. responseLimit, after execution: a response larger than the bound is
//     replaced by an error rather than sent.

func limitError(code, format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	err.Extensions = map[string]any{"code": code}
	return err
}

// sizeLimit refuses oversized documents before gqlgen validates them.
type sizeLimit struct {
	tokens, perSet, fields int
	// validated holds documents that were checked and validated before; they
	// are not checked again.
	validated graphql.Cache[*ast.QueryDocument]
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = sizeLimit{}

func (sizeLimit) ExtensionName() string                   { return "SizeLimit" }
func (sizeLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (l sizeLimit) MutateOperationParameters(ctx context.Context, p *graphql.RawParams) *gqlerror.Error {
	if _, ok := l.validated.Get(ctx, p.Query); ok {
		return nil
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: p.Query}, l.tokens)
	if err != nil {
		if strings.Contains(err.Error(), "exceeded token limit") {
			return limitError("QUERY_TOO_LARGE", "the query has more than %d tokens", l.tokens)
		}
		return nil // gqlgen reports the syntax error
	}
	c := fieldCounter{perSet: l.perSet, limit: l.fields, frags: doc.Fragments, memo: map[string]int{}}
	for _, f := range doc.Fragments {
		if err := c.sets(f.SelectionSet, 0); err != nil {
			return err
		}
	}
	for _, op := range doc.Operations {
		if err := c.sets(op.SelectionSet, 0); err != nil {
			return err
		}
		if n := c.count(op.SelectionSet, 0); n > l.fields {
			return limitError("QUERY_TOO_LARGE", "the operation selects more than %d fields (fragments expanded); the limit is %d", l.fields, l.fields)
		}
	}
	return nil
}

type fieldCounter struct {
	perSet, limit int
	frags         ast.FragmentDefinitionList
	memo          map[string]int
}

// sets refuses a selection set with more than perSet selections, at any depth.
func (c *fieldCounter) sets(set ast.SelectionSet, depth int) *gqlerror.Error {
	if len(set) > c.perSet {
		return limitError("QUERY_TOO_LARGE", "a selection set has %d selections; the limit is %d (repeat fields less, or use fewer aliases)", len(set), c.perSet)
	}
	if depth > 64 {
		return nil
	}
	for _, s := range set {
		var err *gqlerror.Error
		switch s := s.(type) {
		case *ast.Field:
			err = c.sets(s.SelectionSet, depth+1)
		case *ast.InlineFragment:
			err = c.sets(s.SelectionSet, depth+1)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// count is the number of fields set selects with fragments expanded,
// stopping early once over the limit (so a fragment bomb costs little).
func (c *fieldCounter) count(set ast.SelectionSet, depth int) int {
	if depth > 64 {
		return c.limit + 1
	}
	n := 0
	for _, s := range set {
		switch s := s.(type) {
		case *ast.Field:
			n += 1 + c.count(s.SelectionSet, depth+1)
		case *ast.InlineFragment:
			n += c.count(s.SelectionSet, depth+1)
		case *ast.FragmentSpread:
			m, ok := c.memo[s.Name]
			if !ok {
				c.memo[s.Name] = c.limit + 1 // a cycle counts as too many
				if f := c.frags.ForName(s.Name); f != nil {
					m = c.count(f.SelectionSet, depth+1)
				}
				c.memo[s.Name] = m
			}
			n += m
		}
		if n > c.limit {
			return n
		}
	}
	return n
}

// costLimit refuses operations nested deeper than depth (which complexity
// alone does not bound for cheap fields), then those whose complexity is over
// complexity: each field costs 1 plus its selection, and a paged field's
// selection (one with a `first` or `last` argument) is counted once per item
// the page may hold.
type costLimit struct{ depth, complexity int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
	graphql.OperationInterceptor
} = costLimit{}

func (costLimit) ExtensionName() string                   { return "CostLimit" }
func (costLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (l costLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	limit := l.depth
	if introspectionOnly(oc.Operation.SelectionSet, oc.Doc.Fragments, 0) {
		limit = max(limit, introspectionDepth)
	}
	if depth := selectionDepth(oc.Operation.SelectionSet, oc.Doc.Fragments, 0); depth > limit {
		return limitError("QUERY_TOO_DEEP", "the query is nested %d levels deep; the limit is %d", depth, limit)
	}
	if c := selectionCost(oc.Operation.SelectionSet, oc.Doc.Fragments, oc.Variables, l.complexity, 0); c > l.complexity {
		return limitError("COMPLEXITY_LIMIT_EXCEEDED", "the operation's complexity is over %d (paged fields count once per item of `first`); the limit is %d", l.complexity, l.complexity)
	}
	return nil
}

// InterceptOperation gives each operation the budget its unpaged lists draw
// on (chargeList, chargeOnce): the complexity limit less what costLimit
// counted. A query that goes over it is answered with the refusal alone, as
// if it had been refused before it ran: never with some lists and not
// others. So is a subscription's event, whose budget is its own: each event
// starts again from what costLimit counted. A mutation's changes are done by
// then, so its payload is kept and the field over the limit is null with the
// error at its path.
func (l costLimit) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil {
		return next(ctx)
	}
	static := selectionCost(oc.Operation.SelectionSet, oc.Doc.Fragments, oc.Variables, l.complexity, 0)
	b := &listBudget{limit: l.complexity, static: static, used: static}
	responses := next(context.WithValue(ctx, listBudgetKey{}, b))
	if oc.Operation.Operation == ast.Mutation {
		return responses
	}
	return func(ctx context.Context) *graphql.Response {
		resp := responses(ctx)
		if msg := b.reset(); msg != "" && resp != nil {
			return &graphql.Response{Errors: gqlerror.List{limitError("COMPLEXITY_LIMIT_EXCEEDED", "%s", msg)}}
		}
		return resp
	}
}

type listBudgetKey struct{}

// listBudget is an operation's complexity as it runs.
type listBudget struct {
	limit, static int
	mu            sync.Mutex
	used          int
	once          map[string]bool // the onceFields resolved
	over          string          // the first refusal's message
}

// reset returns the refusal of the response just built, if any, and starts
// the next response's count (a subscription's next event).
func (b *listBudget) reset() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	msg := b.over
	b.used, b.once, b.over = b.static, nil, ""
	return msg
}

// charge adds cost to b, refusing the field with msg when that goes over
// the limit, and every field that asks after a refusal.
func (b *listBudget) charge(cost int, msg func() string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.over == "" && cost > 0 {
		b.used += min(cost, b.limit+1)
		if b.used > b.limit {
			b.over = msg()
		}
	}
	if b.over != "" {
		return limitError("COMPLEXITY_LIMIT_EXCEEDED", "%s", b.over)
	}
	return nil
}

func budgetFrom(ctx context.Context) *listBudget {
	b, _ := ctx.Value(listBudgetKey{}).(*listBudget)
	return b
}

// chargeList counts an unpaged list of n items, which costLimit counted as
// one, at the field whose context ctx is: each further item costs its
// selection once more. It refuses the list with COMPLEXITY_LIMIT_EXCEEDED
// when the operation's complexity goes over the limit, and every list after
// that one, so that a list over the limit is never resolved item by item
// (the response would be built whole before responseLimit saw its size).
// With n ≤ 1 it only tells whether the operation is already over, so a
// resolver may ask before it loads.
func chargeList(ctx context.Context, n int) error {
	b := budgetFrom(ctx)
	if b == nil {
		return nil
	}
	cost := 0
	fc := graphql.GetFieldContext(ctx)
	if n > 1 && fc != nil {
		oc := graphql.GetOperationContext(ctx)
		cost = selectionCost(fc.Field.Selections, oc.Doc.Fragments, oc.Variables, b.limit, 0)
	}
	return b.charge(min(n-1, b.limit+1)*cost, func() string {
		return fmt.Sprintf("the operation's complexity is over %d once its unpaged lists are counted "+
			"(%s.%s holds %d items here, and each counts its selection of %d); the limit is %d: ask for fewer items or fields",
			b.limit, fc.Object, fc.Field.Name, n, cost, b.limit)
	})
}

// chargeOnce refuses, with COMPLEXITY_LIMIT_EXCEEDED, the second resolution
// in one operation (or one subscription event) of the field whose context
// ctx is: a field holding a whole list in one value (Account.usersCsv, every
// user of the account), which no page bounds. Under an alias, or under a
// list, it would be built once per alias or item. It costs nothing else,
// since one account's list is bounded by the response size.
func chargeOnce(ctx context.Context) error {
	b, fc := budgetFrom(ctx), graphql.GetFieldContext(ctx)
	if b == nil || fc == nil {
		return nil
	}
	name := fc.Object + "." + fc.Field.Name
	b.mu.Lock()
	again := b.once[name]
	if b.once == nil {
		b.once = map[string]bool{}
	}
	b.once[name] = true
	b.mu.Unlock()
	if !again {
		return b.charge(0, nil)
	}
	return b.charge(b.limit+1, func() string {
		return fmt.Sprintf("%s is asked for more than once in this operation (an alias, or under a list); "+
			"it holds a whole list in one value and may be asked for once", name)
	})
}

// sharesBound is the most shares a batch of n folders' members may hold in
// the operation of ctx, 0 for no bound: beyond the limit and one share per
// folder, their members certainly take the operation over the limit (each
// item costs at least 1), so they are refused without being read.
func sharesBound(ctx context.Context, n int) int {
	if b := budgetFrom(ctx); b != nil {
		return b.limit + n
	}
	return 0
}

// chargedList returns a list loaded with err, once chargeList has counted it.
func chargedList[T any](ctx context.Context, list []T, err error) ([]T, error) {
	var tooMany *sharing.TooManyShares
	if errors.As(err, &tooMany) {
		b, fc := budgetFrom(ctx), graphql.GetFieldContext(ctx)
		return nil, b.charge(b.limit+1, func() string {
			return fmt.Sprintf("the operation's complexity is over %d once its unpaged lists are counted "+
				"(%s.%s: the folders asked for are shared more than %d times in all, and each share counts); the limit is %d: ask for fewer items",
				b.limit, fc.Object, fc.Field.Name, tooMany.Max, b.limit)
		})
	}
	if err != nil {
		return list, err
	}
	if err := chargeList(ctx, len(list)); err != nil {
		return nil, err
	}
	return list, nil
}

// introspectionDepth is the depth limit of an operation that only
// introspects: the standard introspection query of graphql-js and the tools
// built on it (graphql-codegen, GraphiQL, Apollo's and Relay's compilers)
// nests type references 15 levels deep. Such an operation reads the schema,
// never data, and the size and complexity limits still apply to it.
const introspectionDepth = 24

// introspectionOnly reports whether every root field of set (fragments
// expanded) is __schema, __type or __typename.
func introspectionOnly(set ast.SelectionSet, frags ast.FragmentDefinitionList, depth int) bool {
	if depth > 8 {
		return false
	}
	for _, s := range set {
		switch s := s.(type) {
		case *ast.Field:
			if s.Name != "__schema" && s.Name != "__type" && s.Name != "__typename" {
				return false
			}
		case *ast.InlineFragment:
			if !introspectionOnly(s.SelectionSet, frags, depth+1) {
				return false
			}
		case *ast.FragmentSpread:
			f := frags.ForName(s.Name)
			if f == nil || !introspectionOnly(f.SelectionSet, frags, depth+1) {
				return false
			}
		}
	}
	return true
}

// selectionCost stops counting once over max, so it also ends quickly.
func selectionCost(set ast.SelectionSet, frags ast.FragmentDefinitionList, vars map[string]any, max, depth int) int {
	if depth > 64 {
		return max + 1
	}
	total := 0
	for _, s := range set {
		switch s := s.(type) {
		case *ast.Field:
			total += 1 + pageItems(s, vars)*selectionCost(s.SelectionSet, frags, vars, max, depth+1)
		case *ast.InlineFragment:
			total += selectionCost(s.SelectionSet, frags, vars, max, depth+1)
		case *ast.FragmentSpread:
			if f := frags.ForName(s.Name); f != nil {
				total += selectionCost(f.SelectionSet, frags, vars, max, depth+1)
			}
		}
		if total > max {
			return total
		}
	}
	return total
}

// pageItems is how many items a field may return: its `first` (or `last`),
// tenant.DefaultPageSize for a paged field without one, 1 otherwise.
func pageItems(f *ast.Field, vars map[string]any) int {
	paged := false
	n := 0
	for _, name := range []string{"first", "last"} {
		a := f.Arguments.ForName(name)
		if a == nil && f.Definition != nil && f.Definition.Arguments.ForName(name) != nil {
			paged = true
			continue
		}
		if a == nil {
			continue
		}
		paged = true
		v, err := a.Value.Value(vars)
		if err != nil {
			continue
		}
		switch v := v.(type) {
		case int64:
			n = max(n, int(min(max(v, 0), tenant.MaxPageSize)))
		case int:
			n = max(n, min(max(v, 0), tenant.MaxPageSize))
		case json.Number:
			if i, err := v.Int64(); err == nil {
				n = max(n, int(min(max(i, 0), tenant.MaxPageSize)))
			}
		}
	}
	switch {
	case !paged:
		return 1
	case n == 0:
		return tenant.DefaultPageSize
	}
	return n
}

// responseLimit replaces a response whose data is larger than max bytes by
// an error.
func responseLimit(max int) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		resp := next(ctx)
		if resp != nil && len(resp.Data) > max {
			requestInfoFrom(ctx).addCode("RESPONSE_TOO_LARGE")
			return &graphql.Response{Errors: gqlerror.List{limitError("RESPONSE_TOO_LARGE",
				"the response is larger than %d bytes; ask for fewer items or fields", max)}}
		}
		return resp
	}
}
