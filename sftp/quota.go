package sftp

import (
	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/tenant/storageuse"
)

// StorageFiles is what the storage reconcile pass walks
// (storageuse.Files): the account storage, leaving out uploads in
// progress, which sessions hold reservations for instead.
type StorageFiles struct{ Store StorageWalker }

// StorageWalker is a storage backend's count of what it holds: the local
// disk (*storage.Local) walks its trees, an object store lists its keys.
type StorageWalker interface {
	Accounts() ([]string, error)
	TreeSizes(accountID string, skip func(name string) bool) (map[string]int64, error)
}

var (
	_ storageuse.Files = StorageFiles{}
	_ StorageWalker    = (*storage.Local)(nil)
)

// Accounts implements storageuse.Files.
func (f StorageFiles) Accounts() ([]string, error) { return f.Store.Accounts() }

// TreeSizes implements storageuse.Files.
func (f StorageFiles) TreeSizes(accountID string) (map[string]int64, error) {
	return f.Store.TreeSizes(accountID, vfs.IsUploadTemp)
}

// sessionQuota is the Quota of a new session of accountID: nil without
// quotas.
func (b *TenantBackend) sessionQuota(accountID string) vfs.Quota {
	if b.Quotas == nil {
		return nil
	}
	return b.Quotas.Meter(accountID)
}
