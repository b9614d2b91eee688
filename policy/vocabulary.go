package policy

import (
	"slices"
	"strings"
)

// Permission is something a group lets its members do in their account. The
// values are what the GraphQL enum GroupPermission and the groups table hold.
type Permission string

const (
	// SFTPMyFiles gives SFTP access to /My Files/. Members of a group without it
	// are jailed: they see only /Projects Shared With Me/. Jailed Users never
	// has it.
	SFTPMyFiles Permission = "SFTP_MY_FILES"
	// CreateProjectFolders lets members create project folders.
	CreateProjectFolders Permission = "CREATE_PROJECT_FOLDERS"
	// ShareProjectFolders lets members share project folders on which they
	// have the SHARE right.
	ShareProjectFolders Permission = "SHARE_PROJECT_FOLDERS"
	// ManageContacts lets members manage the account's contacts.
	ManageContacts Permission = "MANAGE_CONTACTS"
)

// Permissions returns the whole vocabulary, in the order clients show it.
func Permissions() []Permission {
	return []Permission{SFTPMyFiles, CreateProjectFolders, ShareProjectFolders, ManageContacts}
}

// Valid reports whether p is in the vocabulary.
func (p Permission) Valid() bool {
	switch p {
	case SFTPMyFiles, CreateProjectFolders, ShareProjectFolders, ManageContacts:
		return true
	}
	return false
}

// Right is something a user may do in one project folder. The first six are
// the SFTP operations; Share and Manage are used by the GraphQL API only.
type Right string

const (
	List     Right = "LIST"     // list the folder's entries and stat them
	Download Right = "DOWNLOAD" // read files (get)
	Upload   Right = "UPLOAD"   // create and write files (put, resume, set times)
	Mkdir    Right = "MKDIR"    // create directories
	Delete   Right = "DELETE"   // remove files and empty directories
	Rename   Right = "RENAME"   // rename or move entries
	Share    Right = "SHARE"    // share the folder with others, up to the SHARE preset
	// Manage renames or deletes the project folder itself, grants OWNER and
	// changes or removes any share, OWNER shares included.
	Manage Right = "MANAGE"
)

// Rights returns every right, in the order clients show them.
func Rights() []Right {
	return []Right{List, Download, Upload, Mkdir, Delete, Rename, Share, Manage}
}

// Preset is a named set of rights a project folder is shared with. Presets are
// nested: each grants everything the one before it does.
type Preset string

const (
	PresetList  Preset = "LIST"  // see what is in the folder
	PresetRead  Preset = "READ"  // LIST + download
	PresetWrite Preset = "WRITE" // READ + upload, mkdir, delete, rename
	PresetShare Preset = "SHARE" // WRITE + share
	PresetOwner Preset = "OWNER" // SHARE + manage: everything
)

// presets are in increasing order; each entry's rights add to the previous.
var presets = []struct {
	preset Preset
	adds   []Right
}{
	{PresetList, []Right{List}},
	{PresetRead, []Right{Download}},
	{PresetWrite, []Right{Upload, Mkdir, Delete, Rename}},
	{PresetShare, []Right{Share}},
	{PresetOwner, []Right{Manage}},
}

// Presets returns the presets from the smallest to the largest.
func Presets() []Preset {
	out := make([]Preset, len(presets))
	for i, p := range presets {
		out[i] = p.preset
	}
	return out
}

// rank is the preset's position in Presets, or -1 if it is not one.
func (p Preset) rank() int {
	for i, x := range presets {
		if x.preset == p {
			return i
		}
	}
	return -1
}

// Valid reports whether p is one of the presets.
func (p Preset) Valid() bool { return p.rank() >= 0 }

// Rights returns what the preset grants, in the order of Rights; none for an
// unknown preset.
func (p Preset) Rights() []Right {
	var out []Right
	for i := 0; i <= p.rank(); i++ {
		out = append(out, presets[i].adds...)
	}
	return out
}

// PresetOf returns the largest preset whose rights are all in rights: what
// a set of rights amounts to; "" if not even LIST's. It allocates nothing
// (a page of shared folders asks it for every row).
func PresetOf(rights []Right) Preset {
	var best Preset
	for _, p := range presets { // nested: once one is missing, so are the rest
		for _, r := range p.adds {
			if !slices.Contains(rights, r) {
				return best
			}
		}
		best = p.preset
	}
	return best
}

// Covers reports whether p grants at least everything q does.
func (p Preset) Covers(q Preset) bool { return p.Valid() && p.rank() >= q.rank() }

// Max returns the larger of two presets; an invalid one counts as nothing.
func Max(a, b Preset) Preset {
	if a.rank() >= b.rank() {
		return a
	}
	return b
}

// Objects of the policy. Folder objects are FolderObject(id).
const (
	// AccountObject carries the group permissions: May(…, AccountObject, string(SFTPMyFiles)).
	AccountObject = "account"
	// GroupsObject is the account's groups; the one action is ManageGroups.
	GroupsObject = "groups"
	// FoldersObject is every live project folder of the account at once:
	// May(…, FoldersObject, string(Manage)) asks whether the user manages
	// them all (owners and administrators do).
	FoldersObject = "folders"
	// ManageGroups creates, changes and deletes groups and moves users between them.
	ManageGroups = "MANAGE"
)

const folderPrefix = "folder:"

// FolderObject is the object naming one project folder.
func FolderObject(folderID string) string { return folderPrefix + folderID }

// folderID returns the ID in a folder object, and false for other objects.
func folderID(object string) (string, bool) {
	id, ok := strings.CutPrefix(object, folderPrefix)
	return id, ok && id != ""
}

// Subjects of the policy.
const (
	userPrefix  = "user:"
	groupPrefix = "group:"
	roleAdmin   = "role:admin"
)

// roleRules are what owners and administrators may do in their account,
// whatever their group: manage its groups and every project folder (though
// their own SFTP view still comes from their group and their shares), and
// manage contacts as they always could. The account ID is the domain.
var roleRules = [][2]string{
	{GroupsObject, ManageGroups},
	{FoldersObject, string(Manage)},
	{FoldersObject, string(Share)},
	{AccountObject, string(ShareProjectFolders)},
	{AccountObject, string(ManageContacts)},
}
