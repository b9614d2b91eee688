-- +goose Up
-- A folder's shares are paged oldest first (ProjectFolder.shares,
-- sharing.FolderSharesOf): each page a keyset read of this index, at the same
-- cost at the start and deep in a folder shared thousands of times.
CREATE INDEX folder_shares_folder_created ON folder_shares (folder_id, created_at, id);

-- +goose Down
DROP INDEX folder_shares_folder_created;
