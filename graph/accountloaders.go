package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vikstrous/dataloadgen"

	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/outbox"
	"github.com/skiffhq/skiff/tenant/sftpaccess"
	"github.com/skiffhq/skiff/tenant/sftplogin"
	"github.com/skiffhq/skiff/tenant/storageuse"
)

// accountLoaders batch the per-account fields of a page of accounts
// (support staff's `accounts`), by account ID: one statement per field for
// the whole page, in the staff scope (an owner's or administrator's one
// account reads in its own transaction, as before).
type accountLoaders struct {
	licences    *dataloadgen.Loader[string, *sftpaccess.Licences]
	storage     *dataloadgen.Loader[string, *storageuse.Storage]
	dedicatedIP *dataloadgen.Loader[string, *sftplogin.DedicatedIP]
	hostKeys    *dataloadgen.Loader[string, []outbox.HostKeyFingerprint]
}

// accountBatch is a room's batch behind an account's field: each account's
// value, or the refusal the one-account method would give it.
type accountBatch[V any] func(context.Context, []string) (map[string]V, map[string]error, error)

func newAccountLoaders(svc *domain.Domain) accountLoaders {
	return accountLoaders{
		licences:    accountLoader(svc.SFTP.SFTPLicencesOf, func(string) error { return tenant.NotFound("account") }),
		storage:     accountLoader(svc.Storage.AccountStorageOf, func(string) error { return tenant.NotFound("account") }),
		dedicatedIP: accountLoader(svc.DedicatedIPs.DedicatedIPsOf, nil), // absent: none
		hostKeys:    accountLoader(svc.DedicatedIPs.HostKeyFingerprintsOf, nil),
	}
}

func accountLoader[V any](load accountBatch[V], missing func(string) error) *dataloadgen.Loader[string, V] {
	return dataloadgen.NewLoader(func(ctx context.Context, ids []string) ([]V, []error) {
		m, refused, err := load(ctx, ids)
		return perKey(ids, m, refused, err, missing)
	}, dataloadgen.WithWait(batchWait))
}

// prefetchAccounts is prefetchUsers for a page of accounts: the licences,
// storage and dedicated IPs (with their host keys) the query asks for,
// loaded at once and one batch each.
func (r *Resolver) prefetchAccounts(ctx context.Context, accounts []*tenant.Account) {
	if len(accounts) == 0 || graphql.GetFieldContext(ctx) == nil {
		return
	}
	ids := make([]string, len(accounts))
	for i, a := range accounts {
		ids[i] = a.ID
	}
	l := &r.loaders(ctx).acct
	if selected(ctx, "edges", "node", "sftpLicences") {
		primeAccounts(ctx, l.licences, ids, r.Tenant.SFTP.SFTPLicencesOf)
	}
	if selected(ctx, "edges", "node", "storage") {
		primeAccounts(ctx, l.storage, ids, r.Tenant.Storage.AccountStorageOf)
	}
	if selected(ctx, "edges", "node", "dedicatedIp") {
		ips := primeAccounts(ctx, l.dedicatedIP, ids, r.Tenant.DedicatedIPs.DedicatedIPsOf)
		var with []string
		for _, id := range ids {
			if ips[id] != nil {
				with = append(with, id)
			}
		}
		if len(with) > 0 && selected(ctx, "edges", "node", "dedicatedIp", "hostKeyFingerprints") {
			primeAccounts(ctx, l.hostKeys, with, r.Tenant.DedicatedIPs.HostKeyFingerprintsOf)
		}
	}
}

// primeAccounts loads ids with load in one batch and caches each answer
// but refusals (those load, and report, their own) in l; it returns the
// values, none if the batch failed.
func primeAccounts[V any](ctx context.Context, l *dataloadgen.Loader[string, V], ids []string, load accountBatch[V]) map[string]V {
	m, refused, err := load(ctx, ids)
	if err != nil {
		return nil
	}
	for _, id := range ids {
		if refused[id] == nil {
			l.Prime(id, m[id])
		}
	}
	return m
}
