package tenant

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Lists are keyset-paged in both directions, in one of a few orders each.
// A list names its orders (SortKey) and the SQL of its rows (ListQuery); the
// client names an order (Order) and a window (Page); ListPage runs the page,
// and the count of the whole list when asked, in the caller's transaction,
// so the same row-level security scopes both.

// Order is the sort order a client asks for: a field of the list and a
// direction. The zero Order is the list's default.
type Order struct {
	Field string // as the API names it, e.g. NAME; "" for the list's default
	Desc  bool
}

func (o Order) String() string {
	if o.Desc {
		return o.Field + " DESC"
	}
	return o.Field + " ASC"
}

// SortKey is one field a list sorts by: ties are broken by the row's ID in
// the same direction, and an index should hold (filters…, Expr, id).
type SortKey[T any] struct {
	Field string // as the API names it, e.g. NAME
	Expr  string // its SQL, e.g. lower(u.name); NOT NULL
	Type  string // the SQL type cursors are cast to: text, timestamptz
	// Of is a row's key as its cursor holds it, the way Type reads it back
	// (see TimeKey), e.g. strings.ToLower(u.Name).
	Of func(T) string
	// DescExpr and DescOf, when set, replace Expr and Of in descending
	// order: a key of a nullable column puts the rows without a value last
	// in both directions with a stand-in that is NOT NULL, e.g.
	// coalesce(at, 'infinity') ascending and coalesce(at, '-infinity')
	// descending, each read from an index of its own.
	DescExpr string
	DescOf   func(T) string
}

// TimeKey formats a time sort key for a cursor the way timestamptz reads it back.
func TimeKey(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// The keys that stand in for a missing time (see SortKey.DescExpr), as
// timestamptz reads them: after every time, and before every time.
const (
	NoTimeLast  = "infinity"
	NoTimeFirst = "-infinity"
)

// Sorts is the orders a list offers and its default.
type Sorts[T any] struct {
	List    string // the list's name, e.g. users: another list's cursors are refused
	Keys    []SortKey[T]
	Default Order
	ID      string         // SQL of the row ID, e.g. u.id
	IDType  string         // the SQL type of IDs: uuid unless set
	IDOf    func(T) string // a row's ID
}

// cursorPos is a position in one ordering of one list.
type cursorPos struct {
	O string `json:"o"` // list and order, e.g. "users NAME ASC"
	K string `json:"k"`
	I string `json:"i"`
}

// Keyset is a page request read against a list's orders.
type Keyset[T any] struct {
	sorts         *Sorts[T]
	key           SortKey[T]
	order         Order
	tag           string
	limit         int
	backward      bool
	after, before *cursorPos
	count         bool
}

// NewKeyset reads a page request for a list in order o (the list's default
// when o.Field is ""). Unknown fields, first with last, bad page sizes and
// cursors of another list or order are EInvalid on the argument at fault.
func (s *Sorts[T]) NewKeyset(o Order, p Page) (*Keyset[T], error) {
	if o.Field == "" {
		o = s.Default
	}
	i := slices.IndexFunc(s.Keys, func(k SortKey[T]) bool { return k.Field == o.Field })
	if i < 0 {
		return nil, Invalid("orderBy", "%s cannot be sorted by %s", s.List, o.Field)
	}
	ks := &Keyset[T]{sorts: s, key: s.Keys[i], order: o, tag: s.List + " " + o.String(), count: p.Count}
	if o.Desc && ks.key.DescExpr != "" {
		ks.key.Expr, ks.key.Of = ks.key.DescExpr, ks.key.DescOf
	}
	var err error
	if ks.limit, ks.backward, err = p.window(); err != nil {
		return nil, err
	}
	if ks.after, err = ks.decode("after", p.After); err != nil {
		return nil, err
	}
	if ks.before, err = ks.decode("before", p.Before); err != nil {
		return nil, err
	}
	return ks, nil
}

// window is the page size and whether the page is counted back from the end
// (last/before) rather than forward (first/after).
func (p Page) window() (limit int, backward bool, err error) {
	if p.Last == 0 {
		limit, err = p.Limit()
		return limit, false, err
	}
	switch {
	case p.First != 0:
		return 0, false, Invalid("last", "first and last cannot be used together; use first with after, or last with before")
	case p.Last < 0 || p.Last > MaxPageSize:
		return 0, false, Invalid("last", "last must be between 1 and %d", MaxPageSize)
	}
	return p.Last, true, nil
}

func (ks *Keyset[T]) decode(field, c string) (*cursorPos, error) {
	if c == "" {
		return nil, nil
	}
	bad := Invalid(field, "the cursor is not valid; start from the first page")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) > 2000 {
		return nil, bad
	}
	var pos cursorPos
	if json.Unmarshal(b, &pos) != nil || pos.I == "" {
		return nil, bad
	}
	if pos.O != ks.tag {
		return nil, Invalid(field, "the cursor is from another list or another order than %s %s; start from the first page", ks.sorts.List, ks.order)
	}
	switch t := ks.sorts.IDType; {
	case (t == "" || t == "uuid") && !IsUUID(pos.I):
		return nil, bad
	case t == "bigint":
		if _, err := strconv.ParseInt(pos.I, 10, 64); err != nil {
			return nil, bad
		}
	}
	if ks.key.Type == "timestamptz" && pos.K != NoTimeLast && pos.K != NoTimeFirst {
		if _, err := time.Parse(time.RFC3339Nano, pos.K); err != nil {
			return nil, bad
		}
	}
	return &pos, nil
}

// Cursor is the cursor of a row with this sort key and ID: cursorPos as
// JSON, in base64. A page makes one per row, so the JSON is written by hand
// when no string needs escaping (json.Marshal's reflection was most of a
// cursor's cost); it is byte for byte what json.Marshal writes
// (TestCursorIsCursorPosJSON), so cursors out there stay valid.
func (ks *Keyset[T]) Cursor(key, id string) string {
	if !jsonPlain(ks.tag) || !jsonPlain(key) || !jsonPlain(id) {
		b, _ := json.Marshal(cursorPos{O: ks.tag, K: key, I: id})
		return base64.RawURLEncoding.EncodeToString(b)
	}
	var js [192]byte // on the stack for usual keys
	b := append(append(js[:0], `{"o":"`...), ks.tag...)
	b = append(append(b, `","k":"`...), key...)
	b = append(append(b, `","i":"`...), id...)
	var enc [256]byte
	return string(base64.RawURLEncoding.AppendEncode(enc[:0], append(b, `"}`...)))
}

// jsonPlain reports whether encoding/json writes s as it is between the
// quotes: printable ASCII but for the quote, the backslash and the three
// characters it escapes for HTML.
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// Order is the order the page is in.
func (ks *Keyset[T]) Order() Order { return ks.order }

// Backward tells a page counted from its end (last/before).
func (ks *Keyset[T]) Backward() bool { return ks.backward }

// Limit is the page size.
func (ks *Keyset[T]) Limit() int { return ks.limit }

// Less reports whether a row with key a and ID ai comes before one with b,
// bi in the list's order, for lists sorted in Go rather than SQL.
func (ks *Keyset[T]) Less(a, ai, b, bi string) bool {
	c := strings.Compare(a, b)
	if c == 0 {
		c = strings.Compare(ai, bi)
	}
	if ks.order.Desc {
		return c > 0
	}
	return c < 0
}

// Within reports whether a row lies strictly between the page's after and
// before cursors, for lists paged in Go.
func (ks *Keyset[T]) Within(key, id string) bool {
	return (ks.after == nil || ks.Less(ks.after.K, ks.after.I, key, id)) &&
		(ks.before == nil || ks.Less(key, id, ks.before.K, ks.before.I))
}

// ListQuery is the SQL of a list's rows without paging: Select the columns,
// From the tables and the filters (FROM … WHERE …), with Args bound to $1….
type ListQuery struct {
	Select string
	From   string
	Args   []any
	// CrossTenant marks a list read on a cross-tenant path (support staff).
	// There the row-level security policies are ORs of settings the planner
	// cannot see through, so it expects a handful of rows where there are
	// thousands and would sort them all; the page is planned without a sort,
	// which leaves it the index of the order. (No statistic helps: each
	// policy compares a STABLE function's result, estimated at the default
	// selectivity; without the hint the staff accounts pages sort, or scan
	// account_activity, in tenant/domain/listplans_test.go.)
	CrossTenant bool
}

func (lq *ListQuery) arg(v any) string {
	lq.Args = append(lq.Args, v)
	return "$" + Itoa(len(lq.Args))
}

// beyond is the SQL condition "the row is after pos" (or before it, when
// !forward) in the list's order.
func (ks *Keyset[T]) beyond(lq *ListQuery, pos *cursorPos, forward bool, inclusive bool) string {
	op := ">"
	if forward == ks.order.Desc {
		op = "<"
	}
	if inclusive {
		op += "="
	}
	idType := ks.sorts.IDType
	if idType == "" {
		idType = "uuid"
	}
	return "(" + ks.key.Expr + ", " + ks.sorts.ID + ") " + op + " (" + lq.arg(pos.K) + "::" + ks.key.Type + ", " + lq.arg(pos.I) + "::" + idType + ")"
}

// Query is the statement that reads the page's rows, in the order the page
// is read (reversed for a backward page), one more than the page size.
func (ks *Keyset[T]) Query(lq ListQuery) (string, []any) {
	q, args := ks.WindowQuery(lq)
	lq.Args = args
	return q + " LIMIT " + lq.arg(ks.limit+1), lq.Args
}

// ListPage reads one page of a list with q: the rows of lq in the page's
// window, the count of all of lq's rows when the page asks for it, and
// whether rows lie beyond the cursor the page starts from.
func ListPage[T any](ctx context.Context, q Queryer, ks *Keyset[T], lq ListQuery) (*Connection[T], error) {
	query, args := ks.Query(lq)
	if see, ok := ctx.Value(listQueriesKey{}).(func(string, []any)); ok {
		see(query, args)
	}
	var rows []T
	if err := selectPage(ctx, q, lq.CrossTenant, &rows, query, args); err != nil {
		return nil, err
	}
	conn := ks.Page(rows)
	// Rows on the other side of the cursor the page starts from: the rows
	// the page's cursor excludes (at or before after, at or after before).
	if from := ks.start(); from != nil {
		olq := ListQuery{From: lq.From, Args: slices.Clone(lq.Args)}
		cond := ks.beyond(&olq, from, ks.backward, true)
		var exists bool
		if err := q.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 `+olq.From+` AND `+cond+`)`, olq.Args...); err != nil {
			return nil, DBError(err)
		}
		if ks.backward {
			conn.HasNext = exists
		} else {
			conn.HasPrevious = exists
		}
	}
	if ks.count {
		var n int
		if err := q.GetContext(ctx, &n, `SELECT count(*) `+lq.From, lq.Args...); err != nil {
			return nil, DBError(err)
		}
		conn.Total = n
	}
	return conn, nil
}

// start is the cursor the page is read away from: after going forward,
// before going backward.
func (ks *Keyset[T]) start() *cursorPos {
	if ks.backward {
		return ks.before
	}
	return ks.after
}

// Page makes a page from rows read by Query (at most one beyond the
// page size, in reading order). HasPrevious going forward and HasNext going
// backward are left for the caller (ListPage asks the database).
func (ks *Keyset[T]) Page(rows []T) *Connection[T] {
	conn := &Connection[T]{}
	if len(rows) > ks.limit {
		rows = rows[:ks.limit]
		if ks.backward {
			conn.HasPrevious = true
		} else {
			conn.HasNext = true
		}
	}
	if ks.backward {
		slices.Reverse(rows)
	}
	conn.Items = rows
	conn.Cursors = make([]string, len(rows))
	for i, r := range rows {
		conn.Cursors[i] = ks.Cursor(ks.key.Of(r), ks.sorts.IDOf(r))
	}
	return conn
}

// SlicePage pages through a list held in memory, in any order: all is every
// row of the list (filtered); its sort keys and IDs compare as strings in
// byte order.
func SlicePage[T any](ks *Keyset[T], all []T) *Connection[T] {
	key := func(r T) (string, string) { return ks.key.Of(r), ks.sorts.IDOf(r) }
	all = slices.Clone(all)
	slices.SortFunc(all, func(a, b T) int {
		ak, ai := key(a)
		bk, bi := key(b)
		switch {
		case ks.Less(ak, ai, bk, bi):
			return -1
		case ks.Less(bk, bi, ak, ai):
			return 1
		}
		return 0
	})
	lo, hi := 0, len(all)
	for lo < hi && !ks.Within(key(all[lo])) {
		lo++
	}
	for hi > lo && !ks.Within(key(all[hi-1])) {
		hi--
	}
	window := all[lo:hi]
	var rows []T
	if ks.backward {
		rows = slices.Clone(window[max(0, len(window)-ks.limit-1):])
		slices.Reverse(rows)
	} else {
		rows = slices.Clone(window[:min(len(window), ks.limit+1)])
	}
	conn := ks.Page(rows)
	if ks.backward {
		conn.HasNext = hi < len(all) && ks.before != nil
	} else {
		conn.HasPrevious = lo > 0 && ks.after != nil
	}
	if ks.count {
		conn.Total = len(all)
	}
	return conn
}

// MapConnection is c with each item turned by f.
func MapConnection[A, B any](c *Connection[A], f func(A) B) *Connection[B] {
	out := &Connection[B]{Items: make([]B, len(c.Items)), Cursors: c.Cursors, HasNext: c.HasNext, HasPrevious: c.HasPrevious, Total: c.Total}
	for i, x := range c.Items {
		out.Items[i] = f(x)
	}
	return out
}

type listQueriesKey struct{}

// WithListQueries returns ctx in which ListPage shows see each page's
// statement before running it: a test EXPLAINs them (tenant/domain).
func WithListQueries(ctx context.Context, see func(query string, args []any)) context.Context {
	return context.WithValue(ctx, listQueriesKey{}, see)
}

// BatchQuery is the SQL of many lists of one kind at once, one per parent
// row (each group's members, each user's shared folders): Select and From
// are one parent's list, whose filters name the parent's ID as parent_id;
// Outer names the columns each row is scanned from (parent_id among them).
type BatchQuery struct {
	ListQuery
	Outer string
}

// ListPages is ListPage for many parents' lists, each paged with ks, in a
// constant number of statements: each parent's page is its own keyset read
// (a LATERAL subquery, so an index serves each), then the parents with rows
// beyond the page's cursor, then the counts when asked. item splits a
// scanned row into its parent's ID and the list's item. Every parent gets a
// page, an empty one when it has no rows.
func ListPages[S, T any](ctx context.Context, q Queryer, ks *Keyset[T], bq BatchQuery, parents []string, item func(*S) (string, T)) (map[string]*Connection[T], error) {
	lq := bq.ListQuery
	lq.Args = slices.Clone(lq.Args)
	parentsArg := lq.arg(UUIDArray(parents))
	over := `unnest(` + parentsArg + `::uuid[]) AS parent(parent_id)`
	inner := lq.Select + " " + lq.From
	if ks.after != nil {
		inner += " AND " + ks.beyond(&lq, ks.after, true, false)
	}
	if ks.before != nil {
		inner += " AND " + ks.beyond(&lq, ks.before, false, false)
	}
	inner += " ORDER BY " + ks.orderSQL() + " LIMIT " + lq.arg(ks.limit+1)
	// The page's order within each parent, numbered over the page's rows only.
	query := `SELECT ` + bq.Outer + ` FROM ` + over + ` CROSS JOIN LATERAL (
		SELECT *, row_number() OVER (ORDER BY ` + ks.orderSQL() + `) AS n FROM (` + inner + `) limited) page
		ORDER BY parent_id, n`
	if see, ok := ctx.Value(listQueriesKey{}).(func(string, []any)); ok {
		see(query, lq.Args)
	}
	// Each parent's page is planned for an average parent: a few rows, which
	// a sort would order as cheaply as the index. For the parent with
	// thousands of rows (the default group) only the index is cheap. The
	// parent is a runtime value, so statistics cannot tell the planner which
	// parents are large: without the hint, tenant/domain/listplans_test.go
	// passes or sorts every members page depending on ANALYZE's sample of
	// users.group_id (both seen on the same data).
	var rows []S
	if err := selectPage(ctx, q, true, &rows, query, lq.Args); err != nil {
		return nil, err
	}
	items := map[string][]T{}
	for i := range rows {
		parent, it := item(&rows[i])
		items[parent] = append(items[parent], it)
	}
	out := make(map[string]*Connection[T], len(parents))
	for _, p := range parents {
		out[p] = ks.Page(items[p])
	}
	base := slices.Clone(bq.Args)
	if from := ks.start(); from != nil {
		olq := ListQuery{Args: append(slices.Clone(base), UUIDArray(parents))}
		cond := ks.beyond(&olq, from, ks.backward, true)
		var beyond []string
		if err := q.SelectContext(ctx, &beyond, `SELECT parent_id FROM unnest($`+Itoa(len(base)+1)+`::uuid[]) AS parent(parent_id)
			WHERE EXISTS (SELECT 1 `+bq.From+` AND `+cond+`)`, olq.Args...); err != nil {
			return nil, DBError(err)
		}
		for _, p := range beyond {
			if c := out[p]; c != nil && ks.backward {
				c.HasNext = true
			} else if c != nil {
				c.HasPrevious = true
			}
		}
	}
	if ks.count {
		var counts []struct {
			Parent string `db:"parent_id"`
			N      int    `db:"n"`
		}
		if err := q.SelectContext(ctx, &counts, `SELECT parent_id, (SELECT count(*) `+bq.From+`) AS n
			FROM unnest($`+Itoa(len(base)+1)+`::uuid[]) AS parent(parent_id)`, append(base, UUIDArray(parents))...); err != nil {
			return nil, DBError(err)
		}
		for _, c := range counts {
			if conn := out[c.Parent]; conn != nil {
				conn.Total = c.N
			}
		}
	}
	return out, nil
}

// orderSQL is the ORDER BY list of the page's reading order.
func (ks *Keyset[T]) orderSQL() string {
	dir := " ASC"
	if ks.order.Desc != ks.backward {
		dir = " DESC"
	}
	return ks.key.Expr + dir + ", " + ks.sorts.ID + dir
}

// selectPage reads a page's rows with query; inIndexOrder plans it without a
// sort where the order's index can read it (see ListQuery.CrossTenant).
func selectPage(ctx context.Context, q Queryer, inIndexOrder bool, rows any, query string, args []any) error {
	if inIndexOrder {
		if _, err := q.ExecContext(ctx, `SET LOCAL enable_sort = off`); err != nil {
			return DBError(err)
		}
	}
	if err := q.SelectContext(ctx, rows, query, args...); err != nil {
		return DBError(err)
	}
	if inIndexOrder {
		if _, err := q.ExecContext(ctx, `SET LOCAL enable_sort = on`); err != nil {
			return DBError(err)
		}
	}
	return nil
}

// WindowQuery is Query without a limit: every row of lq in the page's window
// (between its cursors), in the page's reading order, for a caller that
// cuts several lists' pages from one read (each at most Limit()+1 rows, then
// Page; see MarkBeyond).
func (ks *Keyset[T]) WindowQuery(lq ListQuery) (string, []any) {
	lq.Args = slices.Clone(lq.Args)
	q := lq.Select + " " + lq.From
	if ks.after != nil {
		q += " AND " + ks.beyond(&lq, ks.after, true, false)
	}
	if ks.before != nil {
		q += " AND " + ks.beyond(&lq, ks.before, false, false)
	}
	return q + " ORDER BY " + ks.orderSQL(), lq.Args
}

// BeyondQuery selects the IDs of lq's rows on the other side of the cursor
// the page starts from (at or before after, at or after before); ok is
// false for a page that starts at an end of the list.
func (ks *Keyset[T]) BeyondQuery(lq ListQuery) (query string, args []any, ok bool) {
	from := ks.start()
	if from == nil {
		return "", nil, false
	}
	lq.Args = slices.Clone(lq.Args)
	cond := ks.beyond(&lq, from, ks.backward, true)
	return "SELECT " + ks.sorts.ID + " " + lq.From + " AND " + cond, lq.Args, true
}

// MarkBeyond records on a page that rows lie beyond its starting cursor
// (BeyondQuery found some).
func (ks *Keyset[T]) MarkBeyond(c *Connection[T]) {
	if ks.backward {
		c.HasNext = true
	} else {
		c.HasPrevious = true
	}
}

// Counting tells whether the page asked for the list's total.
func (ks *Keyset[T]) Counting() bool { return ks.count }
