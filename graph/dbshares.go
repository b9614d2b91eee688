package graph

import (
	"context"
	"net/http"
	"sync"

	"github.com/99designs/gqlgen/graphql"

	"github.com/skiffhq/skiff/tenant"
)

// DefaultRequestConnections is the most database connections one GraphQL
// operation (or activity export) holds at once: its shared read
// transaction and three more for the reads that find it busy.
const DefaultRequestConnections = 4

// dbShares divides the database pool (tenant.Share) so that no request,
// tenant or crowd of strangers takes all of it:
//
//   - the API as a whole holds at most the pool less a reserve, a quarter of
//     it and at least two, which SFTP logins and sessions, the policy's loads
//     and the workers always find;
//   - one account's users' requests hold at most half of the API's share, so
//     another tenant's admins always get the rest;
//   - requests without a login (login, password reset) hold at most a
//     quarter of it, together;
//   - one operation holds at most DefaultRequestConnections.
//
// A request beyond its shares waits for a slot (tenant.Share), not refused.
// Staff requests are bounded by the API's share and their own only.
type dbShares struct {
	api, anonymous *tenant.Share
	perAccount     int
	perRequest     int

	mu       sync.Mutex
	accounts map[string]*accountShare // of accounts with requests in flight
}

type accountShare struct {
	share *tenant.Share
	ops   int // operations holding it
}

// newDBShares divides a pool of pool connections; 0 or less means
// tenant.Open's default pool.
func newDBShares(pool int) *dbShares {
	if pool <= 0 {
		pool = tenant.DefaultMaxConnections
	}
	api := max(pool-max(2, pool/4), 1)
	return &dbShares{
		api:        tenant.NewShare(api),
		anonymous:  tenant.NewShare(max(api/4, 1)),
		perAccount: max(api/2, 1),
		perRequest: min(DefaultRequestConnections, max(api/2, 1)),
		accounts:   map[string]*accountShare{},
	}
}

// forAuth is the context in which a request's token is checked: it is
// counted in the API's share, whoever sends it.
func (s *dbShares) forAuth(ctx context.Context) context.Context {
	return tenant.WithShares(ctx, s.api)
}

// enter returns ctx with the shares of its principal's operation, and the
// function to call when the operation is over.
func (s *dbShares) enter(ctx context.Context) (context.Context, func()) {
	request := tenant.NewShare(s.perRequest)
	p := tenant.PrincipalFrom(ctx)
	switch {
	case p == nil:
		return tenant.WithShares(ctx, request, s.anonymous, s.api), func() {}
	case p.AccountID == "" || p.Kind != tenant.KindUser:
		return tenant.WithShares(ctx, request, s.api), func() {}
	}
	s.mu.Lock()
	a := s.accounts[p.AccountID]
	if a == nil {
		a = &accountShare{share: tenant.NewShare(s.perAccount)}
		s.accounts[p.AccountID] = a
	}
	a.ops++
	s.mu.Unlock()
	var once sync.Once
	return tenant.WithShares(ctx, request, a.share, s.api), func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if a.ops--; a.ops == 0 {
				delete(s.accounts, p.AccountID)
			}
		})
	}
}

// operations is the AroundOperations step that gives each operation its
// shares until its context ends: with the HTTP request, or with the
// subscription.
func (s *dbShares) operations(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	ctx, leave := s.enter(ctx)
	context.AfterFunc(ctx, leave)
	return next(ctx)
}

// handler gives an HTTP request's handler (the activity export) its shares.
func (s *dbShares) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx, leave := s.enter(req.Context())
		defer leave()
		next.ServeHTTP(w, req.WithContext(ctx))
	})
}
