package sftplogin

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/jmoiron/sqlx"
	"github.com/skiffhq/skiff/internal/pglisten"
	"github.com/skiffhq/skiff/tenant"
)

// DedicatedIPChannel is the PostgreSQL notification channel on which every
// provisioning, release and host-key change is announced (a trigger on
// dedicated_ips and host_keys, migration 00007).
const DedicatedIPChannel = "skiff_dedicated_ips"

// How long a Directory trusts its copy of the dedicated IPs in use.
const (
	// routesFallbackMaxAge applies while Listen runs but its connection is
	// down: changes on other nodes then apply within about a second.
	routesFallbackMaxAge = time.Second
	// routesListeningMaxAge bounds the copy while notifications arrive, as
	// a safety net.
	routesListeningMaxAge = 10 * time.Minute
)

// dedicatedRoute is where an account's dedicated IP leads.
type dedicatedRoute struct {
	accountID string
	// signers are the account's host keys in the order the server presents
	// them; empty means the deployment's.
	signers []ssh.Signer
}

// routeTable is a copy of the dedicated IPs in use, by address.
type routeTable struct {
	byAddr map[netip.Addr]*dedicatedRoute
	gen    uint64    // dedicatedRoutes.gen when the read began
	read   time.Time // when the read began
}

// DedicatedIPReads is how many times the directory has read the dedicated
// IPs in use from the database: each change it hears of, and each copy that
// grew too old, costs one.
func (d *Directory) DedicatedIPReads() uint64 { return d.routes.reads.Load() }

// DedicatedIPsReadAt is when the read of the directory's copy of the
// dedicated IPs in use began (zero before the first): the copy holds every
// change committed before then.
func (d *Directory) DedicatedIPsReadAt() time.Time {
	if t := d.routes.table.Load(); t != nil {
		return t.read
	}
	return time.Time{}
}

// dedicatedRoutes is a Directory's copy of the dedicated IPs in use. Before
// Listen is called there is no copy to trust: every connection reads the
// list (tests and tools that never listen see every change at once).
type dedicatedRoutes struct {
	table     atomic.Pointer[routeTable]
	reads     atomic.Uint64 // copies read from the database
	gen       atomic.Uint64 // bumped by every invalidation
	listened  atomic.Bool   // Listen was called: copies may be kept
	listening atomic.Bool   // notifications arrive: copies may be kept long
	loadMu    sync.Mutex    // one read at a time; others wait for it
	// onChange, when set, is called after a read finds a dedicated IP
	// leading to another account than before, or to none (see
	// OnDedicatedIPsChange).
	onChange atomic.Pointer[func()]
}

func (r *dedicatedRoutes) maxAge() time.Duration {
	switch {
	case r.listening.Load():
		return routesListeningMaxAge
	case r.listened.Load():
		return routesFallbackMaxAge
	}
	return 0
}

// fresh returns the copy if it may be used now, else nil.
func (r *dedicatedRoutes) fresh(now time.Time) *routeTable {
	t := r.table.Load()
	if t == nil || t.gen != r.gen.Load() || now.Sub(t.read) >= r.maxAge() {
		return nil
	}
	return t
}

// DedicatedIPsChanged makes the next connection read the dedicated IPs in
// use again. The service calls it after committing a provisioning or a
// release (see DedicatedIPConfig.Changed), so the node that made the change
// routes by it at once; Listen does it for changes made on other nodes.
//
// When a change callback is set (OnDedicatedIPsChange), it also reads them
// again at once, so that this node's sessions on a released address end
// before the release returns; if the read fails, the next connection
// retries it.
func (d *Directory) DedicatedIPsChanged() {
	d.routes.gen.Add(1)
	if d.routes.onChange.Load() == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = d.routeTable(ctx)
}

// OnDedicatedIPsChange sets fn to be called whenever this Directory's copy
// of the dedicated IPs in use changes which account an address leads to (a
// release, a provisioning, an address given to another account), whether
// the change was made through this node or heard of from another; host-key
// changes alone do not call it. fn runs on the goroutine that read the
// list, while no other read can start: it must be quick, and may call
// DedicatedIPAccount but nothing that reads the list. Once it is set,
// DedicatedIPsChanged and Listen read the list again without waiting for
// a connection (Listen every second while its notification connection is
// down), so fn runs within about a second of any change. Set it before
// serving.
func (d *Directory) OnDedicatedIPsChange(fn func()) {
	if fn == nil {
		d.routes.onChange.Store(nil)
		return
	}
	d.routes.onChange.Store(&fn)
}

// DedicatedIPAccount returns the account whose dedicated IP dest is, by
// this Directory's last copy of the dedicated IPs in use, or "" (a shared
// address, a released or never provisioned one, or no copy read yet). It
// never queries the database.
func (d *Directory) DedicatedIPAccount(dest netip.Addr) string {
	t := d.routes.table.Load()
	if t == nil || !dest.IsValid() {
		return ""
	}
	if r := t.byAddr[dest.Unmap().WithZone("")]; r != nil {
		return r.accountID
	}
	return ""
}

// ListeningForDedicatedIPs reports whether Listen is connected, so that
// other nodes' provisionings and releases apply within moments.
func (d *Directory) ListeningForDedicatedIPs() bool { return d.routes.listening.Load() }

// LoadDedicatedIPs reads the dedicated IPs in use and their accounts' host
// keys, so that a start-up fails on a database it cannot read them from,
// and the first connections need not wait for the read.
func (d *Directory) LoadDedicatedIPs(ctx context.Context) error {
	_, err := d.routeTable(ctx)
	return err
}

// Listen keeps the Directory's copy of the dedicated IPs in use current
// with changes committed on any node, through notifications on
// DedicatedIPChannel at dsn, until ctx ends: each one makes the Directory
// read them again at once. While its connection is down, the copy is read
// again when older than a second; once it is back, at once. Listen returns
// ctx.Err() when ctx ends, or an error if the server refused to LISTEN (the
// one-second fallback then stays). Call it (or ListenOn) once per Directory,
// in a goroutine.
func (d *Directory) Listen(ctx context.Context, dsn string, log *slog.Logger) error {
	return d.ListenOn(ctx, pglisten.Start(ctx, dsn, log), log)
}

// ListenOn is Listen on the node's shared notification connection l.
func (d *Directory) ListenOn(ctx context.Context, l *pglisten.Listener, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	d.routes.listened.Store(true)
	// reread reads the list again now, on the calling goroutine, rather
	// than in the next connection. Not DedicatedIPsChanged: that would read
	// on a context Listen's end does not cancel.
	reread := func(retry string) {
		d.routes.gen.Add(1)
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := d.routeTable(rctx); err != nil && ctx.Err() == nil {
			log.Warn("dedicated IPs: cannot read them again; "+retry, "err", err)
		}
	}
	// With a change callback, read again every second while the
	// notification connection is down, rather than at the next connection.
	// Every tick reads: skipping a copy not yet a second old (one read at
	// the last tick, a moment after it) would read every other second. It
	// outlives Listen only when the server refused to LISTEN, until ctx
	// ends.
	fallbackDone := make(chan struct{})
	defer func() {
		if ctx.Err() != nil {
			<-fallbackDone
		}
	}()
	go func() {
		defer close(fallbackDone)
		t := time.NewTicker(routesFallbackMaxAge)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if !d.routes.listening.Load() && d.routes.onChange.Load() != nil {
				reread("retrying in a second")
			}
		}
	}()
	return l.Listen(ctx, DedicatedIPChannel, pglisten.Handler{
		Name:      "dedicated IPs",
		Notify:    func(string) { reread("the next connection retries") },
		Resync:    func() { reread("the next connection retries") },
		Listening: d.routes.listening.Store,
		Fallback:  "re-reading them every " + routesFallbackMaxAge.String(),
		Log:       log,
	})
}

// dedicatedRoute returns where dest leads when it is an account's dedicated
// IP, or nil (a shared address, a released or never provisioned one).
func (d *Directory) dedicatedRoute(ctx context.Context, dest netip.Addr) (*dedicatedRoute, error) {
	if !dest.IsValid() {
		return nil, nil
	}
	t, err := d.routeTable(ctx)
	if err != nil {
		return nil, err
	}
	// Stored addresses have no zone; IPv4-mapped ones count as IPv4.
	return t.byAddr[dest.Unmap().WithZone("")], nil
}

// routeTable returns a copy of the dedicated IPs in use that may be trusted
// now, reading one if need be. Its age is real time, not the Directory's
// clock, which tests move by days.
func (d *Directory) routeTable(ctx context.Context) (*routeTable, error) {
	r := &d.routes
	if t := r.fresh(time.Now()); t != nil {
		return t, nil
	}
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	// Another caller may have read it while this one waited.
	if t := r.fresh(time.Now()); t != nil {
		return t, nil
	}
	// Taken before the read: a change committed during it bumps gen, and
	// the copy is then read again on next use.
	t := &routeTable{gen: r.gen.Load(), read: time.Now()}
	var err error
	if t.byAddr, err = d.readRoutes(ctx); err != nil {
		return nil, err
	}
	old := r.table.Swap(t)
	r.reads.Add(1)
	if fn := r.onChange.Load(); fn != nil && old != nil && !sameAccounts(old.byAddr, t.byAddr) {
		(*fn)()
	}
	return t, nil
}

// sameAccounts reports whether every address leads to the same account in
// a and b.
func sameAccounts(a, b map[netip.Addr]*dedicatedRoute) bool {
	if len(a) != len(b) {
		return false
	}
	for addr, ra := range a {
		if rb := b[addr]; rb == nil || rb.accountID != ra.accountID {
			return false
		}
	}
	return true
}

// routeRow is a dedicated IP in use with one of its account's host keys
// (none: algorithm and key are NULL).
type routeRow struct {
	Address    string  `db:"address"`
	AccountID  string  `db:"account_id"`
	Algorithm  *string `db:"algorithm"`
	PrivateKey []byte  `db:"private_key"`
}

// readRoutes reads every dedicated IP in use and its account's host keys, in
// one statement of the narrow directory scope. Keys already parsed are
// reused (see accountKeys).
func (d *Directory) readRoutes(ctx context.Context) (map[netip.Addr]*dedicatedRoute, error) {
	var rows []routeRow
	err := d.DB.CrossTenant(ctx, tenant.ScopeDirectory, func(tx *sqlx.Tx) error {
		return tenant.DBError(tx.SelectContext(ctx, &rows, `SELECT host(ip.address) AS address, ip.account_id, k.algorithm, k.private_key
			FROM dedicated_ips ip LEFT JOIN host_keys k ON k.account_id = ip.account_id
			WHERE ip.released_at IS NULL`))
	})
	if err != nil {
		return nil, err
	}
	keys := map[string][]hostKeyRow{} // by account
	addrs := map[netip.Addr]string{}  // account by address
	for _, row := range rows {
		a, err := netip.ParseAddr(row.Address)
		if err != nil {
			return nil, &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: fmt.Errorf("dedicated IP %q: %w", row.Address, err)}
		}
		if addrs[a.Unmap()] == "" {
			addrs[a.Unmap()] = row.AccountID
		}
		if row.Algorithm != nil {
			keys[row.AccountID] = append(keys[row.AccountID], hostKeyRow{Algorithm: *row.Algorithm, PrivateKey: row.PrivateKey})
		} else if _, ok := keys[row.AccountID]; !ok {
			keys[row.AccountID] = nil
		}
	}
	routes := make(map[string]*dedicatedRoute, len(keys))
	for accountID, ks := range keys {
		signers, err := d.accountSigners(accountID, ks)
		if err != nil {
			return nil, err
		}
		routes[accountID] = &dedicatedRoute{accountID: accountID, signers: signers}
	}
	d.forgetAccountKeys(routes)
	out := make(map[netip.Addr]*dedicatedRoute, len(addrs))
	for a, accountID := range addrs {
		out[a] = routes[accountID]
	}
	return out, nil
}

// accountSigners parses an account's stored host keys, in presentation
// order, reusing the signers parsed last time if the keys are the same.
func (d *Directory) accountSigners(accountID string, rows []hostKeyRow) ([]ssh.Signer, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	slices.SortFunc(rows, func(a, b hostKeyRow) int { return hostKeyRank(a.Algorithm) - hostKeyRank(b.Algorithm) })
	stored := make([][]byte, len(rows))
	for i, r := range rows {
		stored[i] = r.PrivateKey
	}
	d.accountKeysMu.Lock()
	defer d.accountKeysMu.Unlock()
	if c, ok := d.accountKeys[accountID]; ok && slices.EqualFunc(c.stored, stored, bytes.Equal) {
		return c.signers, nil
	}
	signers := make([]ssh.Signer, 0, len(rows))
	for _, r := range rows {
		s, err := hostKeySigner(r, d.Cipher)
		if err != nil {
			return nil, &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: fmt.Errorf("account %s: %w", accountID, err)}
		}
		signers = append(signers, s)
	}
	if d.accountKeys == nil {
		d.accountKeys = make(map[string]accountHostKeys)
	}
	d.accountKeys[accountID] = accountHostKeys{stored: stored, signers: signers}
	return signers, nil
}

// forgetAccountKeys drops the parsed keys of accounts that no longer have a
// dedicated IP in use.
func (d *Directory) forgetAccountKeys(keep map[string]*dedicatedRoute) {
	d.accountKeysMu.Lock()
	defer d.accountKeysMu.Unlock()
	for accountID := range d.accountKeys {
		if keep[accountID] == nil {
			delete(d.accountKeys, accountID)
		}
	}
}
