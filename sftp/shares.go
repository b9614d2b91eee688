package sftp

import (
	"context"

	"github.com/skiffhq/skiff/policy"
	"github.com/skiffhq/skiff/sftp/vfs"
	"github.com/skiffhq/skiff/tenant/sharing"
)

// SharedFolders lists the project folders a user works in over SFTP and
// their rights there (the sharing room's Service).
type SharedFolders interface {
	SharedFolders(ctx context.Context, accountID, userID string) ([]sharing.SharedFolder, error)
}

var _ SharedFolders = (*sharing.Service)(nil)

// SessionShares is one session's vfs.Shares: the user's shared folders, with
// the domain's folder rights turned into the SFTP tree's.
func SessionShares(src SharedFolders, accountID, userID string) vfs.Shares {
	return vfs.SharesFunc(func(ctx context.Context) ([]vfs.SharedFolder, error) {
		folders, err := src.SharedFolders(ctx, accountID, userID)
		if err != nil {
			return nil, err
		}
		out := make([]vfs.SharedFolder, len(folders))
		for i, f := range folders {
			out[i] = vfs.SharedFolder{ID: f.ID, Name: f.Name, Rights: vfsRights(f.Rights), InMyFiles: f.Mine}
		}
		return out, nil
	})
}

// sftpRights are the SFTP tree's rights for folder rights; Manage has no
// SFTP operation.
var sftpRights = map[policy.Right]vfs.Rights{
	policy.List:     vfs.List,
	policy.Download: vfs.Download,
	policy.Upload:   vfs.Upload,
	policy.Mkdir:    vfs.Mkdir,
	policy.Delete:   vfs.Delete,
	policy.Rename:   vfs.Rename,
	policy.Share:    vfs.Share,
}

func vfsRights(rights []policy.Right) vfs.Rights {
	var r vfs.Rights
	for _, x := range rights {
		r |= sftpRights[x]
	}
	return r
}
