package sftplogin

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/outbox"
)

// MaxDedicatedIPPool bounds the pool: every address of it is listed and
// searched in memory, and no real deployment owns more (a /16).
const MaxDedicatedIPPool = 1 << 16

// dedicatedIPLock is the transaction-level advisory lock every provisioning
// and release takes, so that two support requests cannot pick the same free
// address at once. They are rare; serialising them costs nothing.
const dedicatedIPLock = 0x736b6966665f6970 // "skiff_ip"

// DedicatedIPConfig is what the deployment owns for dedicated IPs.
type DedicatedIPConfig struct {
	// Pool lists the addresses support may provision; nil means none.
	Pool *DedicatedIPPool
	// Cooldown is how long a released address is kept from other accounts,
	// so that clients still pointed at it by the old account do not reach
	// another tenant. The account that released it may take it back at any
	// time. Zero means no cool-down.
	Cooldown time.Duration
	// Changed, when set, is called after a provisioning or a release
	// commits: Directory.DedicatedIPsChanged, so that this node's SFTP
	// listener routes by the change at once, and ends the sessions logged in
	// through a released address (other nodes hear of it through
	// Directory.Listen).
	Changed func()
}

// dedicatedIPsChanged tells this node's directory that the dedicated IPs in
// use changed.
func (c DedicatedIPConfig) dedicatedIPsChanged() {
	if c.Changed != nil {
		c.Changed()
	}
}

// DedicatedIPPool is the deployment's set of addresses for dedicated IPs:
// each address once, in order. The zero value and nil are an empty pool.
type DedicatedIPPool struct {
	addrs []netip.Addr
}

// NewDedicatedIPPool makes a pool of every address of the given prefixes (a
// single address is a /32 or /128). IPv4-mapped IPv6 prefixes count as
// IPv4; overlaps count once. It refuses invalid prefixes and pools of more
// than MaxDedicatedIPPool addresses.
func NewDedicatedIPPool(prefixes []netip.Prefix) (*DedicatedIPPool, error) {
	var addrs []netip.Addr
	for _, p := range prefixes {
		if !p.IsValid() {
			return nil, fmt.Errorf("dedicated IP pool: %v is not an address or CIDR", p)
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return nil, fmt.Errorf("dedicated IP pool: %v mixes IPv4 and IPv6", p)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		p = p.Masked()
		if hostBits := p.Addr().BitLen() - p.Bits(); hostBits > 16 || len(addrs)+1<<hostBits > MaxDedicatedIPPool {
			return nil, fmt.Errorf("dedicated IP pool: more than %d addresses", MaxDedicatedIPPool)
		}
		for a := p.Addr(); a.IsValid() && p.Contains(a); a = a.Next() {
			addrs = append(addrs, a)
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	return &DedicatedIPPool{addrs: slices.Compact(addrs)}, nil
}

// Len is how many addresses the pool has.
func (p *DedicatedIPPool) Len() int {
	if p == nil {
		return 0
	}
	return len(p.addrs)
}

// Addrs returns the pool's addresses in order.
func (p *DedicatedIPPool) Addrs() []netip.Addr {
	if p == nil {
		return nil
	}
	return slices.Clone(p.addrs)
}

// Contains reports whether a is one of the pool's addresses.
func (p *DedicatedIPPool) Contains(a netip.Addr) bool {
	if p == nil {
		return false
	}
	_, found := slices.BinarySearchFunc(p.addrs, a, netip.Addr.Compare)
	return found
}

// DedicatedIP is an account's dedicated IP: the SFTP address where its users
// may log in with their custom logins and where the server presents the
// account's own host keys.
type DedicatedIP struct {
	AccountID     string
	Address       netip.Addr
	ProvisionedAt time.Time
	ReleasedAt    *time.Time // set on what ReleaseDedicatedIP returns
}

// DedicatedIPState is where an address of the pool stands.
type DedicatedIPState string

const (
	DedicatedIPFree        DedicatedIPState = "FREE"         // support may provision it to any account
	DedicatedIPCoolingDown DedicatedIPState = "COOLING_DOWN" // released; only its last account may take it back
	DedicatedIPAssigned    DedicatedIPState = "ASSIGNED"     // an account's dedicated IP
)

// Valid reports whether st is one of the known states.
func (st DedicatedIPState) Valid() bool {
	return st == DedicatedIPFree || st == DedicatedIPCoolingDown || st == DedicatedIPAssigned
}

// PoolAddress is one address of the dedicated IP pool, as support sees it.
type PoolAddress struct {
	Address netip.Addr
	State   DedicatedIPState
	// AccountID is the account holding the address (ASSIGNED) or the one
	// that released it and may take it back (COOLING_DOWN); empty when FREE.
	AccountID     string
	ProvisionedAt *time.Time // ASSIGNED and COOLING_DOWN
	ReleasedAt    *time.Time // COOLING_DOWN
	AvailableAt   *time.Time // COOLING_DOWN: when another account may get it
	// InPool is false for an address still assigned to an account although
	// the deployment's pool no longer lists it. It keeps working until
	// support releases it.
	InPool bool
}

// dedicatedIPRow is a stored dedicated_ips row.
type dedicatedIPRow struct {
	Address       string     `db:"address"`
	AccountID     string     `db:"account_id"`
	ProvisionedAt time.Time  `db:"provisioned_at"`
	ReleasedAt    *time.Time `db:"released_at"`
}

const dedicatedIPColumns = `host(address) AS address, account_id, provisioned_at, released_at`

func (r dedicatedIPRow) dedicatedIP() (*DedicatedIP, error) {
	a, err := netip.ParseAddr(r.Address)
	if err != nil {
		return nil, &tenant.Error{Code: tenant.EInternal, Message: "internal error", Err: fmt.Errorf("stored dedicated IP %q: %w", r.Address, err)}
	}
	return &DedicatedIP{AccountID: r.AccountID, Address: a, ProvisionedAt: r.ProvisionedAt, ReleasedAt: r.ReleasedAt}, nil
}

// ActiveDedicatedIPTx returns the account's dedicated IP, or nil when it has
// none, in the caller's transaction (the account's, or the staff scope).
func ActiveDedicatedIPTx(ctx context.Context, q tenant.Queryer, accountID string) (*DedicatedIP, error) {
	var rows []dedicatedIPRow
	if err := q.SelectContext(ctx, &rows, `SELECT `+dedicatedIPColumns+` FROM dedicated_ips
		WHERE account_id = $1 AND released_at IS NULL`, accountID); err != nil {
		return nil, tenant.DBError(err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return rows[0].dedicatedIP()
}

// DedicatedHostTx returns the account's dedicated IP and the fingerprints of
// the host keys the server presents there, or nil when it has none.
func DedicatedHostTx(ctx context.Context, q tenant.Queryer, accountID string) (*DedicatedIP, []outbox.HostKeyFingerprint, error) {
	ip, err := ActiveDedicatedIPTx(ctx, q, accountID)
	if err != nil || ip == nil {
		return nil, nil, err
	}
	fps, err := HostKeyFingerprintsTx(ctx, q, accountID)
	if err != nil {
		return nil, nil, err
	}
	return ip, fps, nil
}

// DedicatedIP returns the account's dedicated IP, or nil when it has none.
// Support staff and the account's owners and administrators may see it;
// another user of the account is FORBIDDEN; anyone else gets "account not
// found". Users see the address in their own SFTP credentials.
func (s *Service) DedicatedIP(ctx context.Context, accountID string) (*DedicatedIP, error) {
	m, refused, err := s.DedicatedIPsOf(ctx, []string{accountID})
	return tenant.OneOf(accountID, m, refused, err, "")
}

// DedicatedIPsOf is DedicatedIP for many accounts in one statement (support
// staff's page of accounts), by account ID: accounts without a dedicated IP
// are absent; accounts the principal may not see are refused as DedicatedIP
// refuses them.
func (s *Service) DedicatedIPsOf(ctx context.Context, accountIDs []string) (map[string]*DedicatedIP, map[string]error, error) {
	out := make(map[string]*DedicatedIP, len(accountIDs))
	refused, err := s.ReadAdminAccounts(ctx, accountIDs, "the account's dedicated IP", func(q tenant.Queryer, ids []string) error {
		var rows []dedicatedIPRow
		if err := q.SelectContext(ctx, &rows, `SELECT `+dedicatedIPColumns+` FROM dedicated_ips
			WHERE account_id = ANY($1::uuid[]) AND released_at IS NULL`, tenant.UUIDArray(ids)); err != nil {
			return tenant.DBError(err)
		}
		for _, r := range rows {
			ip, err := r.dedicatedIP()
			if err != nil {
				return err
			}
			out[r.AccountID] = ip
		}
		return nil
	})
	return out, refused, err
}

// ProvisionDedicatedIP gives the account a dedicated IP from the deployment's
// pool: address when it is not empty, otherwise the address the account
// released last if no one else has it, otherwise the first free one. The
// first provisioning generates the account's host keys (Ed25519, ECDSA
// P-256, RSA 3072); later ones reuse them, so clients that trusted the
// account's server keep trusting it. Custom logins the account kept from an
// earlier dedicated IP work again at once. The account's open dedicated IP
// request, if any, is closed as PROVISIONED and its requester emailed.
//
// Support staff only. An unknown account is not found. User errors: an
// address that is not one or not in the pool (EInvalid); an account that
// already has a dedicated IP, an address of another account or cooling down
// from one, no pool configured (EConflict); no free address (ELimit).
func (s *Service) ProvisionDedicatedIP(ctx context.Context, accountID, address string) (*DedicatedIP, error) {
	if _, err := tenant.RequireStaff(ctx); err != nil {
		return nil, err
	}
	if !tenant.IsUUID(accountID) {
		return nil, tenant.NotFound("account")
	}
	var requested netip.Addr
	if address != "" {
		a, err := netip.ParseAddr(address)
		if err != nil || a.Zone() != "" {
			return nil, tenant.Invalid("address", "%q is not an IP address", address)
		}
		requested = a.Unmap()
	}

	// Generate the account's missing host keys before the transaction that
	// stores them: RSA generation is slow, and the pool lock is shared.
	var have []string
	if err := s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		if _, err := tenant.LockAccount(ctx, tx, accountID); err != nil {
			return err
		}
		if s.Config.Pool.Len() == 0 {
			return tenant.Errorf(tenant.EConflict, "this deployment has no dedicated IP pool; configure one with --dedicated-ip-pool first")
		}
		return tenant.DBError(tx.SelectContext(ctx, &have, `SELECT algorithm FROM host_keys WHERE account_id = $1`, accountID))
	}); err != nil {
		return nil, err
	}
	keys, err := generateHostKeys(missingHostKeyTypes(have), s.HostKeyCipher)
	if err != nil {
		return nil, err
	}

	var ip *DedicatedIP
	err = s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		rows, err := lockDedicatedIPs(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tenant.LockAccount(ctx, tx, accountID); err != nil {
			return err
		}
		for _, r := range rows {
			if r.AccountID == accountID && r.ReleasedAt == nil {
				return tenant.Errorf(tenant.EConflict, "this account already has the dedicated IP %s; release it first", r.Address)
			}
		}
		addr, err := s.pickDedicatedIP(rows, accountID, requested)
		if err != nil {
			return err
		}
		var row dedicatedIPRow
		if err := tx.GetContext(ctx, &row, `INSERT INTO dedicated_ips (address, account_id, provisioned_at)
			VALUES ($1::inet, $2, $3)
			ON CONFLICT (address) DO UPDATE SET account_id = EXCLUDED.account_id,
				provisioned_at = EXCLUDED.provisioned_at, released_at = NULL
			RETURNING `+dedicatedIPColumns, addr.String(), accountID, s.Time()); err != nil {
			return tenant.DBError(err)
		}
		if ip, err = row.dedicatedIP(); err != nil {
			return err
		}
		if err := insertHostKeysTx(ctx, tx, accountID, keys); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, accountID, audit.Event{Kind: "dedicated_ip.provisioned", TargetKind: "Account", TargetID: accountID,
			After: map[string]any{"address": ip.Address.String()}}); err != nil {
			return err
		}
		return s.provisionedRequestTx(ctx, tx, ip)
	})
	if err != nil {
		return nil, err
	}
	s.Config.dedicatedIPsChanged()
	return ip, nil
}

// lockDedicatedIPs takes the pool's lock for the rest of the transaction and
// reads every stored address (a staff-scope transaction).
func lockDedicatedIPs(ctx context.Context, q tenant.Queryer) ([]dedicatedIPRow, error) {
	if _, err := q.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(dedicatedIPLock)); err != nil {
		return nil, tenant.DBError(err)
	}
	var rows []dedicatedIPRow
	if err := q.SelectContext(ctx, &rows, `SELECT `+dedicatedIPColumns+` FROM dedicated_ips`); err != nil {
		return nil, tenant.DBError(err)
	}
	return rows, nil
}

// poolState is where an address with stored row r (nil: never provisioned)
// stands now, and until when it cools down.
func (s *Service) poolState(r *dedicatedIPRow) (DedicatedIPState, time.Time) {
	switch {
	case r == nil:
		return DedicatedIPFree, time.Time{}
	case r.ReleasedAt == nil:
		return DedicatedIPAssigned, time.Time{}
	}
	until := r.ReleasedAt.Add(s.Config.Cooldown)
	if s.Time().Before(until) {
		return DedicatedIPCoolingDown, until
	}
	return DedicatedIPFree, time.Time{}
}

// pickDedicatedIP chooses the address to provision to accountID among the
// pool, given the stored rows: requested if valid, or the one it chooses.
func (s *Service) pickDedicatedIP(rows []dedicatedIPRow, accountID string, requested netip.Addr) (netip.Addr, error) {
	pool := s.Config.Pool
	stored := make(map[netip.Addr]*dedicatedIPRow, len(rows))
	for i := range rows {
		if a, err := netip.ParseAddr(rows[i].Address); err == nil {
			stored[a] = &rows[i]
		}
	}
	if requested.IsValid() {
		if !pool.Contains(requested) {
			return netip.Addr{}, tenant.Invalid("address", "%s is not in this deployment's dedicated IP pool", requested)
		}
		r := stored[requested]
		if r == nil || r.AccountID == accountID {
			return requested, nil
		}
		switch st, until := s.poolState(r); st {
		case DedicatedIPAssigned:
			return netip.Addr{}, &tenant.Error{Code: tenant.EConflict, Field: "address", Message: requested.String() + " is the dedicated IP of another account"}
		case DedicatedIPCoolingDown:
			return netip.Addr{}, &tenant.Error{Code: tenant.EConflict, Field: "address", Message: fmt.Sprintf(
				"another account released %s recently; it cools down until %s before another account can have it",
				requested, until.UTC().Format(time.RFC3339))}
		}
		return requested, nil
	}
	// The address this account released last, unless someone else took it
	// since (its row would name them): the account's clients, DNS records
	// and firewall rules keep working.
	var (
		back    netip.Addr
		backRow *dedicatedIPRow
	)
	for a, r := range stored {
		if r.AccountID == accountID && pool.Contains(a) && (backRow == nil || r.ReleasedAt.After(*backRow.ReleasedAt)) {
			back, backRow = a, r
		}
	}
	if backRow != nil {
		return back, nil
	}
	var next time.Time
	for _, a := range pool.addrs {
		switch st, until := s.poolState(stored[a]); st {
		case DedicatedIPFree:
			return a, nil
		case DedicatedIPCoolingDown:
			if next.IsZero() || until.Before(next) {
				next = until
			}
		}
	}
	msg := "every address of the dedicated IP pool is in use; add addresses to --dedicated-ip-pool"
	if !next.IsZero() {
		msg += ", or wait for a released one to cool down (the next at " + next.UTC().Format(time.RFC3339) + ")"
	}
	return netip.Addr{}, &tenant.Error{Code: tenant.ELimit, Message: msg}
}

// ReleaseDedicatedIP takes the account's dedicated IP back into the pool.
// From then on the address serves like a shared one (login IDs only, the
// deployment's host keys); it cools down before another account can get it,
// and this account may take it back meanwhile. The account's custom logins
// and host keys are kept, inactive until it has a dedicated IP again. Live
// SFTP sessions are not cut: they end when their clients disconnect.
//
// Support staff only. An unknown account is not found; an account without a
// dedicated IP is an EConflict user error.
func (s *Service) ReleaseDedicatedIP(ctx context.Context, accountID string) (*DedicatedIP, error) {
	if _, err := tenant.RequireStaff(ctx); err != nil {
		return nil, err
	}
	if !tenant.IsUUID(accountID) {
		return nil, tenant.NotFound("account")
	}
	var ip *DedicatedIP
	err := s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		if _, err := lockDedicatedIPs(ctx, tx); err != nil {
			return err
		}
		if _, err := tenant.LockAccount(ctx, tx, accountID); err != nil {
			return err
		}
		var rows []dedicatedIPRow
		if err := tx.SelectContext(ctx, &rows, `UPDATE dedicated_ips SET released_at = $2
			WHERE account_id = $1 AND released_at IS NULL RETURNING `+dedicatedIPColumns, accountID, s.Time()); err != nil {
			return tenant.DBError(err)
		}
		if len(rows) == 0 {
			return tenant.Errorf(tenant.EConflict, "this account has no dedicated IP")
		}
		var err error
		if ip, err = rows[0].dedicatedIP(); err != nil {
			return err
		}
		var inactive int
		if err := tx.GetContext(ctx, &inactive, `SELECT count(*) FROM sftp_credentials
			WHERE account_id = $1 AND custom_login IS NOT NULL`, accountID); err != nil {
			return tenant.DBError(err)
		}
		return audit.Record(ctx, tx, accountID, audit.Event{Kind: "dedicated_ip.released", TargetKind: "Account", TargetID: accountID,
			Before: map[string]any{"address": ip.Address.String()},
			After:  map[string]any{"inactiveCustomLogins": inactive}})
	})
	if err != nil {
		return nil, err
	}
	s.Config.dedicatedIPsChanged()
	return ip, nil
}

// DedicatedIPPool lists the pool's addresses in address order, each with its
// state and account, followed in order by any address still assigned though
// the pool no longer lists it; only those in state when it is not empty.
// Support staff only.
func (s *Service) DedicatedIPPool(ctx context.Context, state DedicatedIPState, page tenant.Page) (*tenant.Connection[*PoolAddress], error) {
	if _, err := tenant.RequireStaff(ctx); err != nil {
		return nil, err
	}
	if state != "" && !state.Valid() {
		return nil, tenant.Invalid("state", "unknown dedicated IP state %q", state)
	}
	ks, err := poolSorts.NewKeyset(tenant.Order{}, page)
	if err != nil {
		return nil, err
	}
	var rows []dedicatedIPRow
	if err := s.DB.CrossTenant(ctx, tenant.ScopeStaff, func(tx *sqlx.Tx) error {
		return tenant.DBError(tx.SelectContext(ctx, &rows, `SELECT `+dedicatedIPColumns+` FROM dedicated_ips`))
	}); err != nil {
		return nil, err
	}
	pool := s.Config.Pool
	stored := make(map[netip.Addr]*dedicatedIPRow, len(rows))
	addrs := pool.Addrs()
	for i := range rows {
		a, err := netip.ParseAddr(rows[i].Address)
		if err != nil {
			continue
		}
		stored[a] = &rows[i]
		if rows[i].ReleasedAt == nil && !pool.Contains(a) {
			addrs = append(addrs, a)
		}
	}
	var list []*PoolAddress
	for _, a := range addrs {
		pa := s.poolAddress(a, stored[a], pool.Contains(a))
		if state == "" || pa.State == state {
			list = append(list, pa)
		}
	}
	return tenant.SlicePage(ks, list), nil
}

// poolSorts is the order of DedicatedIPPool: by address (IPv4 first, as
// netip.Addr.Compare orders them).
var poolSorts = &tenant.Sorts[*PoolAddress]{
	List: "dedicatedIpPool",
	Keys: []tenant.SortKey[*PoolAddress]{{Field: "ADDRESS", Expr: "address", Type: "text", Of: func(p *PoolAddress) string {
		b := p.Address.As16()
		return fmt.Sprintf("%03d-%x", p.Address.BitLen(), b[:])
	}}},
	Default: tenant.Order{Field: "ADDRESS"},
	IDType:  "inet",
	IDOf:    func(p *PoolAddress) string { return p.Address.String() },
}

func (s *Service) poolAddress(a netip.Addr, r *dedicatedIPRow, inPool bool) *PoolAddress {
	pa := &PoolAddress{Address: a, InPool: inPool}
	st, until := s.poolState(r)
	pa.State = st
	switch st {
	case DedicatedIPAssigned:
		pa.AccountID, pa.ProvisionedAt = r.AccountID, &r.ProvisionedAt
	case DedicatedIPCoolingDown:
		pa.AccountID, pa.ProvisionedAt, pa.ReleasedAt, pa.AvailableAt = r.AccountID, &r.ProvisionedAt, r.ReleasedAt, &until
	}
	return pa
}
