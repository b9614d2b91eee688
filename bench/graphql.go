package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/jmoiron/sqlx"
	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/graph"
	"github.com/skiffhq/skiff/internal/sqlcount"
	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/domain"
)

// usersPageQuery is an administrator's users screen: a page of users with
// their group, SFTP credentials and SSH keys.
const usersPageQuery = `query Users($first: Int!) {
  account {
    users(first: $first) {
      edges { node {
        id name email role
        group { id name }
        sftp { enabled credentials { login customLogin } }
        sshKeys { id title algorithm bits fingerprint createdAt lastUsedAt }
      } }
      pageInfo { endCursor hasNextPage }
    }
  }
}`

// usersPageSQL is the same page written by hand: one statement, keys
// aggregated per user, in the same kind of account-scoped transaction.
const usersPageSQL = `
SELECT u.id, u.name, u.email, u.role, g.id AS group_id, g.name AS group_name, u.sftp_enabled,
       c.login, c.custom_login,
       coalesce((SELECT json_agg(json_build_object('id', k.id, 'title', k.title, 'algorithm', k.algorithm,
                        'bits', k.bits, 'fingerprint', k.fingerprint, 'createdAt', k.created_at,
                        'lastUsedAt', k.last_used_at) ORDER BY k.created_at, k.id)
                 FROM ssh_keys k WHERE k.account_id = u.account_id AND k.user_id = u.id), '[]') AS keys
FROM users u
LEFT JOIN groups g ON g.account_id = u.account_id AND g.id = u.group_id
LEFT JOIN sftp_credentials c ON c.user_id = u.id
WHERE u.account_id = $1 AND u.deleted_at IS NULL
ORDER BY lower(u.name), u.id
LIMIT $2`

type handWrittenRow struct {
	ID          string          `db:"id" json:"id"`
	Name        string          `db:"name" json:"name"`
	Email       string          `db:"email" json:"email"`
	Role        string          `db:"role" json:"role"`
	GroupID     *string         `db:"group_id" json:"groupId"`
	GroupName   *string         `db:"group_name" json:"groupName"`
	SFTPEnabled bool            `db:"sftp_enabled" json:"sftpEnabled"`
	Login       *string         `db:"login" json:"login"`
	CustomLogin *string         `db:"custom_login" json:"customLogin"`
	Keys        json.RawMessage `db:"keys" json:"sshKeys"`
}

// graphQL measures the users page through the real GraphQL handler against
// the hand-written SQL, and counts the statements each request sends.
func (r *runner) graphQL(ctx context.Context) error {
	db, err := r.startDatabase(ctx)
	if err != nil {
		return err
	}
	var counter sqlcount.Counter
	x, err := counter.Open(db.url)
	if err != nil {
		return err
	}
	defer x.Close()
	svc := domain.New(tenant.NewDB(x))
	// One enforcer that hears changes through PostgreSQL notifications, as
	// skiff serve wires it: without Listen it re-reads an account's whole
	// policy every second, which is not what production pays.
	enforcer, err := policy.New(svc.DB, policy.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	svc.Sharing.Policy = enforcer
	lctx, stopListen := context.WithCancel(ctx)
	defer stopListen()
	go func() { _ = enforcer.Listen(lctx, db.url) }()
	for deadline := time.Now().Add(10 * time.Second); !enforcer.Listening(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return errors.New("the policy enforcer did not start listening for changes")
		}
	}

	const ownerEmail, ownerPassword = "owner@graphql.bench.example", "benchmark owner password"
	acct, _, err := svc.Accounts.CreateAccount(tenant.SystemContext(ctx), account.CreateAccountInput{
		Name: "GraphQL bench", OwnerEmail: ownerEmail, OwnerName: "Bench Owner", OwnerPassword: ownerPassword,
	})
	if err != nil {
		return fmt.Errorf("create account: %w", err)
	}
	n, keys := r.cfg.GraphQLUsers, r.cfg.GraphQLKeysPerUser
	if _, err := db.admin.ExecContext(ctx, `UPDATE accounts SET sftp_status = 'ACTIVE', sftp_licences = $2 WHERE id = $1`,
		acct.ID, n+10); err != nil {
		return err
	}
	if err := loadAccountUsers(ctx, db, acct.ID, n, keys); err != nil {
		return err
	}
	// From a documentation address of its own: the password benchmark's
	// refused attempts from loopback have the login throttle on 127.0.0.1.
	login, err := svc.People.Login(ctx, ownerEmail, ownerPassword, netip.MustParseAddr("198.51.100.7"))
	if err != nil {
		return fmt.Errorf("owner login: %w", err)
	}
	api := httptest.NewServer(graph.NewHandler(&graph.Resolver{Tenant: svc},
		graph.Config{Logger: slog.New(slog.DiscardHandler)}))
	defer api.Close()

	sec := r.report.section(fmt.Sprintf("GraphQL: an administrator's page of users with group, credentials and keys (account of %d users, %d keys)",
		n, n*keys),
		"request", "page", "p50", "p99", "SQL statements / request", "transactions / request",
		"Go CPU / request", "PostgreSQL CPU / request")
	pgPID := postmasterPID(db)
	// CPU per request is steadier than latency on a shared machine. Go's is
	// this process's: server and client for GraphQL, query, scan and JSON for
	// the hand-written SQL.
	cpuPerRequest := func(cpu0, pg0 time.Duration) (string, string) {
		n := time.Duration(r.cfg.GraphQLRequests)
		return ms((selfCPU() - cpu0) / n), ms((treeCPU(pgPID) - pg0) / n)
	}
	var gqlP50, sqlP50 time.Duration
	for _, page := range []int{10, 100} {
		if page == 100 && r.cfg.ProfileDir != "" {
			// The handler runs in this process: profile it here, on an
			// extra, uncounted round of requests.
			if err := profileSelf(filepath.Join(r.cfg.ProfileDir, "cpu-graphql.pprof"), func() error {
				for range r.cfg.GraphQLRequests / 4 {
					if _, err := graphQLPage(ctx, api.URL, login.Token, page, keys); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				return err
			}
		}
		var lat []time.Duration
		s0, t0 := counter.Snapshot()
		cpu0, pg0 := selfCPU(), treeCPU(pgPID)
		for range r.cfg.GraphQLRequests {
			d, err := graphQLPage(ctx, api.URL, login.Token, page, keys)
			if err != nil {
				return err
			}
			lat = append(lat, d)
		}
		goCPU, pgCPU := cpuPerRequest(cpu0, pg0)
		s1, t1 := counter.Snapshot()
		reqs := int64(r.cfg.GraphQLRequests)
		sec.row("GraphQL", fmt.Sprint(page), ms(percentile(lat, 50)), ms(percentile(lat, 99)),
			fmt.Sprintf("%.1f", float64(s1-s0)/float64(reqs)), fmt.Sprintf("%.1f", float64(t1-t0)/float64(reqs)), goCPU, pgCPU)
		if page == 100 {
			gqlP50 = percentile(lat, 50)
		}
	}
	{
		var lat []time.Duration
		tdb := tenant.NewDB(x)
		s0, t0 := counter.Snapshot()
		cpu0, pg0 := selfCPU(), treeCPU(pgPID)
		for range r.cfg.GraphQLRequests {
			start := time.Now()
			var rows []handWrittenRow
			err := tdb.InAccount(ctx, acct.ID, func(tx *sqlx.Tx) error {
				return tx.SelectContext(ctx, &rows, usersPageSQL, acct.ID, 100)
			})
			if err != nil {
				return fmt.Errorf("hand-written SQL: %w", err)
			}
			// Encode as the API would, so both sides pay for JSON.
			if _, err := json.Marshal(rows); err != nil {
				return err
			}
			lat = append(lat, time.Since(start))
			if len(rows) != 100 {
				return fmt.Errorf("hand-written SQL returned %d rows", len(rows))
			}
		}
		goCPU, pgCPU := cpuPerRequest(cpu0, pg0)
		s1, t1 := counter.Snapshot()
		reqs := int64(r.cfg.GraphQLRequests)
		sqlP50 = percentile(lat, 50)
		sec.row("hand-written SQL", "100", ms(sqlP50), ms(percentile(lat, 99)),
			fmt.Sprintf("%.1f", float64(s1-s0)/float64(reqs)), fmt.Sprintf("%.1f", float64(t1-t0)/float64(reqs)), goCPU, pgCPU)
	}
	sec.note("GraphQL p50 / hand-written SQL p50 at 100 users: %s. GraphQL requests go over HTTP on loopback with the "+
		"owner's bearer token, through the production handler (limits, error presenter, dataloaders); each is checked for "+
		"errors and for every user's keys. Statements are counted by a wrapper around lib/pq's connections (BEGIN/COMMIT "+
		"counted as transactions). Go CPU is this process's, where the handler runs (for GraphQL it includes the client's "+
		"HTTP and JSON decoding); PostgreSQL CPU is the server's processes'. %d requests per row.",
		ratio(float64(gqlP50), float64(sqlP50)), r.cfg.GraphQLRequests)
	return r.transferBytes(ctx, api.URL, login.Token)
}

// graphQLPage fetches one page and checks it.
func graphQLPage(ctx context.Context, url, token string, page, keys int) (time.Duration, error) {
	body, err := json.Marshal(map[string]any{"query": usersPageQuery, "variables": map[string]any{"first": page}})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/graphql", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	var out struct {
		Errors []json.RawMessage `json:"errors"`
		Data   struct {
			Account struct {
				Users struct {
					Edges []struct {
						Node struct {
							SSHKeys []json.RawMessage `json:"sshKeys"`
						} `json:"node"`
					} `json:"edges"`
				} `json:"users"`
			} `json:"account"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return 0, fmt.Errorf("GraphQL answer %s: %w", resp.Status, err)
	}
	if len(out.Errors) > 0 {
		return 0, fmt.Errorf("GraphQL errors: %s", out.Errors[0])
	}
	edges := out.Data.Account.Users.Edges
	if len(edges) != page {
		return 0, fmt.Errorf("GraphQL page of %d users, want %d", len(edges), page)
	}
	for _, e := range edges {
		// The owner (no keys) sorts among the users; everyone else has keys.
		if k := len(e.Node.SSHKeys); k != keys && k != 0 {
			return 0, fmt.Errorf("a user with %d keys, want %d", k, keys)
		}
	}
	return d, nil
}

// loadAccountUsers bulk-loads n users with SFTP on, credentials and keys
// into one account.
func loadAccountUsers(ctx context.Context, db *benchDatabase, accountID string, n, keys int) error {
	user := func(i int) string { return syntheticID(0x9a11, 0, uint64(i)) }
	if err := copyRows(ctx, db.admin, "users", []string{"id", "account_id", "email", "name", "role", "sftp_enabled"}, n,
		func(i int) []any {
			return []any{user(i), accountID, fmt.Sprintf("gql%d@bench.example", i), fmt.Sprintf("Person %05d", i), "USER", true}
		}); err != nil {
		return err
	}
	if err := copyRows(ctx, db.admin, "sftp_credentials", []string{"user_id", "account_id", "login"}, n,
		func(i int) []any { return []any{user(i), accountID, fmt.Sprintf("gql%07d", i)} }); err != nil {
		return err
	}
	if err := copyRows(ctx, db.admin, "ssh_keys",
		[]string{"id", "account_id", "user_id", "title", "algorithm", "bits", "fingerprint", "public_key"}, n*keys,
		func(j int) []any {
			i, k := j/keys, j%keys
			pk := syntheticKey(1_000_000_000+i, k) // distinct from the auth-at-scale keys
			return []any{syntheticID(0x9a12, uint64(k), uint64(i)), accountID, user(i), fmt.Sprintf("key %d", k),
				pk.Type(), 256, ssh.FingerprintSHA256(pk), pk.Marshal()}
		}); err != nil {
		return err
	}
	_, err := db.admin.ExecContext(ctx, "ANALYZE")
	return err
}

// profileSelf writes a CPU profile of this process while fn runs.
func profileSelf(path string, fn func() error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	err = fn()
	pprof.StopCPUProfile()
	return err
}
