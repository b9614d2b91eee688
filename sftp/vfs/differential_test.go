package vfs_test

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/sftp/vfs"
)

// The differential conformance suite: every case's script (its language is
// in diffharness_test.go) runs against OpenSSH's sftp-server and against
// Skiff, from the same tree, and every reply must be the same, but for the
// steps marked "=> REPLY": there Skiff differs on purpose, as the row of the
// differences table in docs/SFTP-SERVER.md that the case names says, and
// must answer exactly REPLY (and OpenSSH something else). After the script
// of a case without differences the two trees on disk must hold the same
// entries.
//
// The fixture: files f ("0123456789"), empty, big (64 KiB), "name with
// space", d/a ("A"), d/b ("BB"); directories d, d/sub, e (empty).

// On S3 (SKIFF_TEST_STORAGE=s3) the cases run on the S3 store, and its
// folders' sizes, link counts and times are left out of the comparison
// (s3Shape). These cases cannot hold there; docs/OPERATIONS.md#files-on-s3
// lists why.
var s3Differs = map[string]string{
	"rename open file":                   "an open file reads its object by key: renamed away, it is not there",
	"remove open file":                   "an open file reads its object by key: removed, it is gone",
	"list setgid and sticky directories": "the script sets modes on the disk; objects have none",
	"list setgid without execute":        "the script sets modes on the disk; objects have none",
}

type diffCase struct {
	name   string
	row    string // the differences table row a "=>" step relies on
	script string
}

// Rows of the differences table the cases rely on.
const (
	rowAtomic  = "new file or truncating open"
	rowLinks   = "symbolic and hard links, `readlink`"
	rowVirtual = "`/`, `/Projects Shared With Me`"
	rowChmod   = "permissions and ownership in setstat"
	rowModes   = "mode of created files and folders"
	rowExts    = "extensions offered"
	rowNames   = "NUL, names starting `.skiff-upload-`"
	rowDirOpen = "opening a directory as a file"
	rowBadPkt  = "malformed requests"
	rowUnknown = "unknown request types"
	rowLexical = "`..` after a file or a missing name (`f/../d`)"
)

var diffCases = []diffCase{
	// The version exchange and extensions.
	{"version", rowExts, "version => VERSION 3 check-file-handle=1 check-file-name=1 copy-data=1 expand-path@openssh.com=1 fstatvfs@openssh.com=2 fsync@openssh.com=1 home-directory=1 limits@openssh.com=1 lsetstat@openssh.com=1 posix-rename@openssh.com=1 statvfs@openssh.com=2 users-groups-by-id@openssh.com=1"},
	{"fstatvfs", "", "open f r @h; ext fstatvfs@openssh.com @h; close @h"},
	{"fstatvfs of a directory handle", "", "opendir d @h; ext fstatvfs@openssh.com @h; close @h"},
	{"fstatvfs of a bad handle", "", "ext fstatvfs@openssh.com @nope"},
	{"lsetstat times", "", "ext lsetstat@openssh.com f u32:8 u32:1600000000 u32:1600000000; stat f"},
	{"lsetstat size", "", "ext lsetstat@openssh.com f u32:1 u64:3; stat f"},
	{"lsetstat missing", "", "ext lsetstat@openssh.com missing u32:8 u32:1600000000 u32:1600000000"},
	{"lsetstat permissions", rowChmod, "ext lsetstat@openssh.com f u32:4 u32:0600; stat f => ATTRS size=10,owner,mode=100640,mtime=1700000000"},
	{"expand-path dot", "", "ext expand-path@openssh.com ."},
	{"expand-path tilde", "", "ext expand-path@openssh.com ~"},
	{"expand-path tilde slash", "", "ext expand-path@openssh.com ~/d/a"},
	{"expand-path relative", "", "ext expand-path@openssh.com d/sub/.."},
	{"expand-path missing below missing", "", "ext expand-path@openssh.com missing/x/y"},
	{"expand-path other user", "", "ext expand-path@openssh.com ~nobody-here/x"},
	{"home-directory of an unknown user", "", "ext home-directory nobody-here"},
	{"copy-data whole", "", "open f r @s; open g wc @d; ext copy-data @s u64:0 u64:0 @d u64:0; close @d; close @s; stat g"},
	{"copy-data range", "", "open big r @s; open g wc @d; ext copy-data @s u64:100 u64:1000 @d u64:5; close @d; close @s; stat g"},
	{"copy-data past the end", "", "open f r @s; open g wc @d; ext copy-data @s u64:20 u64:5 @d u64:0; close @d; close @s; stat g"},
	{"copy-data to a read handle", "", "open f r @s; open empty r @d; ext copy-data @s u64:0 u64:0 @d u64:0; close @d; close @s"},
	{"copy-data from a write handle", "", "open f w @s; open g wc @d; ext copy-data @s u64:0 u64:0 @d u64:0; close @d; close @s"},
	{"copy-data bad handle", "", "open g wc @d; ext copy-data @nope u64:0 u64:0 @d u64:0; close @d"},
	{"copy-data within one file", "", "open f rw @h; ext copy-data @h u64:0 u64:4 @h u64:6; close @h; stat f"},
	{"copy-data appending", "", "open f r @s; open empty wa @d; ext copy-data @s u64:0 u64:0 @d u64:0; ext copy-data @s u64:0 u64:3 @d u64:0; close @d; close @s; stat empty"},
	{"users-groups-by-id empty", "", "ext users-groups-by-id@openssh.com \"\" \"\""},
	{"check-file-name", rowExts, "ext check-file-name f md5 u64:0 u64:0 u32:0 => EXTENDED 0000000a636865636b2d66696c65000000036d6435781e5e245d69b566979b86e28d23f2c7"}, // md5 of "0123456789"
	{"limits", "", "ext limits@openssh.com"},
	{"statvfs", "", "ext statvfs@openssh.com ."},
	{"statvfs of a file", "", "ext statvfs@openssh.com f"},
	{"statvfs of a missing path", "", "ext statvfs@openssh.com missing"},
	{"fsync", "", "open f rw @h; ext fsync@openssh.com @h; close @h"},
	{"fsync of a read handle", "", "open f r @h; ext fsync@openssh.com @h; close @h"},
	{"fsync of a bad handle", "", "ext fsync@openssh.com @nope"},
	{"posix-rename", "", "ext posix-rename@openssh.com f g; stat g; stat f"},
	{"posix-rename over a file", "", "ext posix-rename@openssh.com f empty; stat empty"},
	{"posix-rename missing source", "", "ext posix-rename@openssh.com missing g"},
	{"posix-rename over a directory", "", "ext posix-rename@openssh.com f e"},
	{"posix-rename directory", "", "ext posix-rename@openssh.com d d2; ls d2"},
	{"posix-rename into itself", "", "ext posix-rename@openssh.com d d/sub/x"},
	{"hardlink", rowLinks, "ext hardlink@openssh.com f g => STATUS OP_UNSUPPORTED links are not supported; stat g => STATUS NO_SUCH_FILE No such file"},
	{"unknown extension", "", "ext nonsense@example.com x"},
	{"extension without a name", rowBadPkt, "pkt 200 => STATUS BAD_MESSAGE Bad message"},

	// Packet types.
	{"unknown packet type", rowUnknown, "pkt 99 x => STATUS OP_UNSUPPORTED Operation unsupported; stat f"},
	{"packet type 0", rowUnknown, "pkt 0 => STATUS OP_UNSUPPORTED Operation unsupported"},
	{"reply type as a request", rowUnknown, "pkt 101 x => STATUS OP_UNSUPPORTED Operation unsupported"},
	{"second init", rowBadPkt, "pkt 1 u32:3 => CLOSED"},

	// STAT, LSTAT, FSTAT.
	{"stat file", "", "stat f"},
	{"stat empty file", "", "stat empty"},
	{"stat directory", "", "stat d"},
	{"stat start directory", "", "stat ."},
	{"stat missing", "", "stat missing"},
	{"stat below a file", "", "stat f/x"},
	{"stat below missing", "", "stat missing/x"},
	{"stat with trailing slash", "", "stat d/"},
	{"stat file with trailing slash", "", "stat f/"},
	{"stat with dot elements", "", "stat ./d/./a"},
	{"stat with dot-dot", "", "stat d/sub/../a"},
	{"stat with dot-dot after a file", rowLexical, "stat f/../d => ATTRS size=4096,owner,mode=40750,mtime=1700000000"},
	{"stat with dot-dot after a missing name", rowLexical, "stat missing/../f => ATTRS size=10,owner,mode=100640,mtime=1700000000"},
	{"stat with repeated slashes", "", "stat d//a"},
	{"stat name with space", "", `stat "name with space"`},
	{"stat empty path", "", `stat ""`},
	{"lstat file", "", "lstat f"},
	{"lstat directory", "", "lstat d"},
	{"lstat missing", "", "lstat missing"},
	{"fstat", "", "open f r @h; fstat @h; close @h"},
	{"fstat write handle", "", "open f w @h; fstat @h; close @h"},
	{"fstat after rename", "", "open f r @h; rename f g; fstat @h; close @h"},
	{"fstat of a directory handle", "", "opendir d @h; fstat @h; close @h"},
	{"fsetstat of a directory handle", "", "opendir d @h; fsetstat @h mtime=1600000000; close @h; stat d"},
	{"fsync of a directory handle", "", "opendir d @h; ext fsync@openssh.com @h; close @h"},
	{"fstat bad handle", "", "fstat @nope"},

	// SETSTAT, FSETSTAT.
	{"setstat times", "", "setstat f mtime=1600000000; stat f"},
	{"setstat size shrinks", "", "setstat f size=4; stat f"},
	{"setstat size grows", "", "setstat f size=20; stat f; open f r @h; read @h 0 64; close @h"},
	{"setstat size zero", "", "setstat big size=0; stat big"},
	{"setstat no attributes", "", "setstat f -; stat f"},
	{"setstat missing", "", "setstat missing mtime=1600000000"},
	{"setstat directory times", "", "setstat d mtime=1600000000; stat d"},
	{"setstat directory size", "", "setstat d size=0"},
	{"setstat permissions", rowChmod, "setstat f perm=0600; stat f => ATTRS size=10,owner,mode=100640,mtime=1700000000"},
	{"setstat permissions and times", rowChmod, "setstat f perm=0600,mtime=1600000000; stat f => ATTRS size=10,owner,mode=100640,mtime=1600000000"},
	{"fsetstat size", "", "open f rw @h; fsetstat @h size=3; fstat @h; close @h; stat f"},
	{"fsetstat times", "", "open f r @h; fsetstat @h mtime=1600000000; close @h; stat f"},
	{"fsetstat times on write handle", "", "open f w @h; fsetstat @h mtime=1600000000; close @h; stat f"},
	{"fsetstat size on read handle", "", "open f r @h; fsetstat @h size=3; close @h; stat f"},
	{"fsetstat bad handle", "", "fsetstat @nope mtime=1600000000"},
	{"fsetstat none", "", "open f r @h; fsetstat @h -; close @h"},

	// OPEN: see the generated flag cases too.
	{"open missing for read", "", "open missing r @h"},
	{"open directory for read", rowDirOpen, "open d r @h => STATUS FAILURE Failure; read @h 0 10"},
	{"open directory for write", "", "open d w @h"},
	{"open directory create", "", "open d wc @h"},
	{"open start directory", rowDirOpen, "open . r @h => STATUS FAILURE Failure"},
	{"open below a file", "", "open f/x r @h"},
	{"open create below a file", "", "open f/x wc @h"},
	{"open create in missing directory", "", "open missing/x wc @h"},
	{"open create name with trailing slash", "", "open newdir/ wc @h; tree"},
	{"open existing with trailing slash", "", "open f/ r @h"},
	{"open create with mode", "", "open new wct perm=0640 @h; close @h; stat new"},
	{"open create with other mode", rowModes, "open new wct perm=0600 @h; close @h; stat new => ATTRS size=0,owner,mode=100640,mtime=recent"},
	{"open create with times", "", "open new wct mtime=1600000000 @h; close @h; stat new"},
	{"open create name with space", "", `open "new name" wc @h; write @h 0 x; close @h; stat "new name"`},
	{"open create name with backslash", "", `open "back\\slash" wc @h; write @h 0 x; close @h; stat "back\\slash"; ls .`},
	{"open create unicode name", "", `open "żółw" wc @h; write @h 0 x; close @h; stat "żółw"`},
	{"open create name too long", "", "open " + long256 + " wc @h"},
	{"path with NUL", rowNames, `stat "f\x00x" => STATUS FAILURE invalid path: invalid character in path`},
	{"name of a hidden upload", rowNames, "open .skiff-upload-x wc @h => STATUS FAILURE invalid path: reserved file name"},
	{"open create name of 255 bytes", "", "open " + long255 + " wc @h; close @h"},
	{"open twice", "", "open f r @a; open f r @b; read @a 0 3; read @b 3 3; close @a; close @b"},
	{"open handles are distinct", "", "open f r @a; close @a; close @a"},
	{"truncating upload replaces", "", "open f wt @h; write @h 0 new; close @h; stat f; open f r @r; read @r 0 20; close @r"},
	{"new upload visible after close", "", "open new wc @h; write @h 0 abc; close @h; ls ."},
	{"new upload not visible before close", rowAtomic, "open new wc @h; write @h 0 abc; ls . => " + skiffTop + "; close @h; ls ."},
	{"truncating upload not visible before close", rowAtomic, "open f wt @h; write @h 0 abc; stat f; ls . => " + skiffTop + "; close @h; stat f; open f r @r; read @r 0 10; close @r"},
	{"stat own upload", "", "open new wc @h; write @h 0 abc; stat new; lstat new; close @h"},
	{"read own upload", "", "open new wc @h; write @h 0 abc; open new r @r; read @r 0 10; close @r; close @h"},
	{"read own re-upload", "", "open f wt @h; write @h 0 abc; open f r @r; read @r 0 10; close @r; close @h"},
	{"read own upload after more writes", "", "open new wc @h; open new r @r; write @h 0 abc; read @r 0 10; write @h 3 def; read @r 0 10; close @h; read @r 0 10; close @r"},
	{"rename own upload", "", "open new wc @h; write @h 0 abc; rename new g; stat new; stat g; write @h 3 def; close @h; stat g; open g r @r; read @r 0 10; close @r"},
	{"rename own upload into a directory", "", "open new wc @h; write @h 0 abc; rename new d/sub/g; close @h; stat d/sub/g; stat new"},
	{"rename own upload over a file", "", "open new wc @h; write @h 0 abc; rename new f; close @h; stat f"},
	{"posix-rename own upload over a file", "", "open new wc @h; write @h 0 abc; ext posix-rename@openssh.com new f; close @h; stat f; stat new"},
	{"rename own re-upload", "", "open f wt @h; write @h 0 abc; rename f g; stat f; close @h; stat g; stat f"},
	{"rename own upload twice", "", "open new wc @h; write @h 0 abc; rename new g; rename g k; close @h; stat k; stat g; stat new"},
	{"remove own upload", "", "open new wc @h; write @h 0 abc; remove new; stat new; write @h 3 x; close @h; stat new"},
	{"remove own re-upload", "", "open f wt @h; write @h 0 abc; remove f; stat f; close @h; stat f"},
	{"setstat own upload", "", "open new wc @h; write @h 0 abcdef; setstat new size=2; fstat @h; close @h; stat new"},
	{"statvfs of own upload", "", "open new wc @h; ext statvfs@openssh.com new; close @h"},

	// READ.
	{"read whole", "", "open f r @h; read @h 0 10; close @h"},
	{"read more than there is", "", "open f r @h; read @h 0 100; close @h"},
	{"read at offset", "", "open f r @h; read @h 4 3; close @h"},
	{"read at end", "", "open f r @h; read @h 10 5; close @h"},
	{"read past end", "", "open f r @h; read @h 100 5; close @h"},
	{"read zero length", "", "open f r @h; read @h 3 0; close @h"},
	{"read zero length at end", "", "open f r @h; read @h 10 0; close @h"},
	{"read empty file", "", "open empty r @h; read @h 0 10; close @h"},
	{"read big", "", "open big r @h; read @h 0 65536; close @h"},
	{"read huge offset", "", "open f r @h; read @h 0xffffffffffffffff 5; close @h"},
	{"read bad handle", "", "read @nope 0 5"},
	{"read directory handle", "", "opendir d @h; read @h 0 5; close @h"},
	{"read closed handle", "", "open f r @h; close @h; read @h 0 5"},
	{"read write-only handle", "", "open f w @h; read @h 0 5; close @h"},

	// WRITE.
	{"write in place", "", "open f w @h; write @h 2 XY; close @h; stat f"},
	{"write past end", "", "open f w @h; write @h 20 XY; close @h; stat f"},
	{"write empty", "", "open f w @h; write @h 0 \"\"; close @h; stat f"},
	{"write read-only handle", "", "open f r @h; write @h 0 XY; close @h"},
	{"write bad handle", "", "write @nope 0 XY"},
	{"write directory handle", "", "opendir d @h; write @h 0 XY; close @h"},
	{"write then read same handle", "", "open f rw @h; write @h 0 XY; read @h 0 10; close @h"},
	{"write big", "", "open new wc @h; write @h 0 rep:200000; close @h; stat new"},
	{"write append", "", "open f wa @h; write @h 0 XY; write @h 0 Z; close @h"},
	{"write append new", "", "open new wac @h; write @h 5 XY; write @h 0 Z; close @h"},
	{"write huge offset", "", "open f w @h; write @h 0xfffffffffffffff0 XY; close @h"},

	// Pipelining.
	{"pipelined reads", "", "open big r @h; &read @h 0 1000; &read @h 1000 1000; &read @h 65000 1000; read @h 70000 10; close @h"},
	{"pipelined writes", "", "open new wc @h; &write @h 0 aaa; &write @h 3 bbb; &write @h 6 ccc; write @h 9 d; close @h"},
	{"pipelined write then read", "", "open f rw @h; &write @h 0 XY; read @h 0 4; close @h"},
	{"pipelined stats", "", "&stat f; &stat missing; &lstat d; stat e"},
	{"pipelined mkdir then stat", "", "&mkdir x; &stat x; rmdir x"},
	{"pipelined close and reuse", "", "open f r @h; &close @h; read @h 0 3"},
	{"pipelined out of order ids", "", "&stat big; &realpath d; &ext limits@openssh.com; stat empty"},

	// OPENDIR, READDIR.
	{"list start directory", "", "ls ."},
	{"list directory", "", "ls d"},
	{"list empty directory", "", "ls e"},
	{"list a file", "", "ls f"},
	{"list missing", "", "ls missing"},
	{"list below a file", "", "ls f/x"},
	{"readdir after end", "", "opendir e @h; readdir @h; readdir @h; readdir @h; close @h"},
	{"readdir bad handle", "", "readdir @nope"},
	{"readdir file handle", "", "open f r @h; readdir @h; close @h"},
	{"close directory handle twice", "", "opendir d @h; close @h; close @h"},
	{"list after changes", "", "mkdir d/new; remove d/a; open d/c wc @h; close @h; ls d"},
	{"list many", "", manyFiles + "ls e"},
	{"list with trailing slash", "", "ls d/"},
	{"list dot-dot", "", "ls d/sub/.."},

	// REMOVE.
	{"remove file", "", "remove f; stat f"},
	{"remove missing", "", "remove missing"},
	{"remove directory", "", "remove e"},
	{"remove below a file", "", "remove f/x"},
	{"remove start directory", "", "remove ."},
	{"remove with trailing slash", "", "remove f/; stat f"},
	{"remove open file", "", "open f r @h; remove f; read @h 0 4; close @h; stat f"},

	// MKDIR, RMDIR.
	{"mkdir", "", "mkdir x; stat x"},
	{"mkdir nested", "", "mkdir d/sub/x; ls d/sub"},
	{"mkdir existing", "", "mkdir d"},
	{"mkdir over a file", "", "mkdir f"},
	{"mkdir in missing", "", "mkdir missing/x"},
	{"mkdir below a file", "", "mkdir f/x"},
	{"mkdir with trailing slash", "", "mkdir x/; stat x"},
	{"mkdir with mode", "", "mkdir x perm=0750; stat x"},
	{"mkdir with other mode", rowModes, "mkdir x perm=0700; stat x => ATTRS size=4096,owner,mode=40750,mtime=recent"},
	{"mkdir start directory", "", "mkdir ."},
	{"mkdir name with backslash", "", `mkdir "a\\b"; stat "a\\b"`},
	{"list setgid and sticky directories", "", "chmod d 02750; chmod e 01777; chmod f 04750; ls .; stat d; stat e; stat f"},
	{"list setgid without execute", "", "chmod d 02740; chmod f 02640; ls .; ls d"},
	{"rmdir", "", "rmdir e; stat e"},
	{"rmdir not empty", "", "rmdir d"},
	{"rmdir missing", "", "rmdir missing"},
	{"rmdir file", "", "rmdir f"},
	{"rmdir with trailing slash", "", "rmdir e/"},

	// RENAME.
	{"rename", "", "rename f g; stat g; stat f"},
	{"rename over a file", "", "rename f empty"},
	{"rename over itself", "", "rename f f"},
	{"rename over a directory", "", "rename f e"},
	{"rename directory", "", "rename d x; ls x"},
	{"rename directory over empty directory", "", "rename d e"},
	{"rename into itself", "", "rename d d/sub/x"},
	{"rename missing", "", "rename missing g"},
	{"rename into missing directory", "", "rename f missing/g"},
	{"rename below a file", "", "rename f empty/g"},
	{"rename to name with backslash", "", `rename f "x\\y"; ls .`},
	{"rename start directory", "", "rename . x"},
	{"rename open file", "", "open f r @h; rename f g; read @h 0 4; close @h"},

	// REALPATH.
	{"realpath dot", "", "realpath ."},
	{"realpath empty", "", `realpath ""`},
	{"realpath file", "", "realpath f"},
	{"realpath directory", "", "realpath d/sub"},
	{"realpath missing", "", "realpath missing"},
	{"realpath missing below missing", "", "realpath missing/x/y"},
	{"realpath dot-dot inside", "", "realpath d/sub/../a"},
	{"realpath dot-dot after a missing name", rowLexical, "realpath missing/../d => NAME ~/d"},
	{"realpath trailing slash", "", "realpath d/"},
	{"realpath absolute", "", "realpath ~/d"},
	{"realpath root", "", "realpath /"},
	{"realpath above the start", rowVirtual, "realpath ../.. => NAME /"},

	// Links.
	{"symlink", rowLinks, "symlink f l => STATUS OP_UNSUPPORTED links are not supported; lstat l => STATUS NO_SUCH_FILE No such file"},
	{"readlink of a file", rowLinks, "readlink f => STATUS OP_UNSUPPORTED links are not supported"},

	// Malformed requests: OpenSSH's server exits, Skiff answers.
	{"open without fields", rowBadPkt, "pkt 3 => STATUS BAD_MESSAGE Bad message"},
	{"open without flags", rowBadPkt, "pkt 3 f => STATUS BAD_MESSAGE Bad message"},
	{"stat without a path", rowBadPkt, "pkt 17 => STATUS BAD_MESSAGE Bad message"},
	{"read without length", rowBadPkt, "open f r @h; pkt 5 @h u64:0 => STATUS BAD_MESSAGE Bad message; close @h => STATUS OK Success"},
	{"write without data", rowBadPkt, "open f w @h; pkt 6 @h u64:0 => STATUS BAD_MESSAGE Bad message"},
	{"rename without target", rowBadPkt, "pkt 18 f => STATUS BAD_MESSAGE Bad message"},
	{"posix-rename without target", rowBadPkt, "ext posix-rename@openssh.com f => STATUS BAD_MESSAGE Bad message"},
	{"statvfs without a path", rowBadPkt, "ext statvfs@openssh.com => STATUS BAD_MESSAGE Bad message"},
	{"string longer than the packet", rowBadPkt, "pkt 17 u32:1000 => STATUS BAD_MESSAGE Bad message"},
	{"bad requests leave the channel working", rowBadPkt, "pkt 3 => STATUS BAD_MESSAGE Bad message; stat f => ATTRS size=10,owner,mode=100640,mtime=1700000000"},
}

// long255 and long256 are names of 255 and 256 bytes.
var (
	long255 = fmt.Sprintf("%0255d", 0)
	long256 = fmt.Sprintf("%0256d", 0)
)

// skiffTop is the start directory's listing as Skiff shows it while an
// upload to a new name or to f is in progress: the fixture as it was (the
// directory itself changed: it holds the hidden file).
var skiffTop = "NAME . size=4096,owner,mode=40750,mtime=recent [drwxr-x--- 4 4096 " + time.Now().Format("Jan 2") + " hh:mm .] | .. (parent) | " +
	"big size=65536,owner,mode=100640,mtime=1700000000 [-rw-r----- 1 65536 Nov 14 2023 big] | " +
	"d size=4096,owner,mode=40750,mtime=1700000000 [drwxr-x--- 3 4096 Nov 14 2023 d] | " +
	"e size=4096,owner,mode=40750,mtime=1700000000 [drwxr-x--- 2 4096 Nov 14 2023 e] | " +
	"empty size=0,owner,mode=100640,mtime=1700000000 [-rw-r----- 1 0 Nov 14 2023 empty] | " +
	"f size=10,owner,mode=100640,mtime=1700000000 [-rw-r----- 1 10 Nov 14 2023 f] | " +
	"name with space size=1,owner,mode=100640,mtime=1700000000 [-rw-r----- 1 1 Nov 14 2023 name with space]"

// manyFiles creates 150 files in e, more than one READDIR reply holds on
// OpenSSH.
var manyFiles = func() string {
	var s string
	for i := range 150 {
		s += fmt.Sprintf("open e/%03d wc @h%d; close @h%d; ", i, i, i)
	}
	return s
}()

// openFlagCases opens an existing and a missing file with every
// combination of open flags, then writes, reads, and looks at the result.
func openFlagCases() []diffCase {
	var out []diffCase
	letters := "rwactx"
	for bits := range 1 << len(letters) {
		flags := ""
		for i := range letters {
			if bits&(1<<i) != 0 {
				flags += letters[i : i+1]
			}
		}
		if flags == "" {
			flags = "-"
		}
		for _, target := range []string{"f", "new"} {
			out = append(out, diffCase{
				name:   fmt.Sprintf("open flags %s on %s", flags, target),
				script: fmt.Sprintf("open %[1]s %[2]s @h; write @h 2 XY; read @h 0 20; fstat @h; close @h; stat %[1]s", target, flags),
			})
		}
	}
	return out
}

func TestDifferential(t *testing.T) {
	if _, err := os.Stat(sftpServerPath); err != nil {
		t.Skipf("OpenSSH's sftp-server is not installed (Debian: apt-get install openssh-sftp-server): %v", err)
	}
	rows := differencesTable(t)
	cases := append(slices.Clip(diffCases), openFlagCases()...)
	names := map[string]bool{}
	for _, c := range cases {
		if names[c.name] {
			t.Fatalf("two cases named %q", c.name)
		}
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			if why, ok := s3Differs[c.name]; ok {
				skipOnS3(t, why)
			}
			t.Parallel()
			runDiffCase(t, c, rows)
		})
	}
	t.Logf("%d cases", len(cases))
}

func runDiffCase(t *testing.T, c diffCase, rows []string) {
	steps := parseScript(t, c.script)
	differs := slices.ContainsFunc(steps, func(s step) bool { return s.hasSkiff })
	switch {
	case differs && c.row == "":
		t.Fatal("a step differs (=>) but the case names no row of the differences table")
	case c.row != "" && !differs:
		t.Fatal("the case names a difference but no step differs (=>)")
	case c.row != "" && !slices.Contains(rows, c.row):
		t.Fatalf("docs/SFTP-SERVER.md's differences table has no row %q (rows: %q)", c.row, rows)
	}
	o, s := startOpenSSH(t), startSkiff(t)
	want, got := o.run(c.script), s.run(c.script)
	if onS3 {
		for i := range steps {
			want[i], got[i], steps[i].skiff = s3Shape(want[i]), s3Shape(got[i]), s3Shape(steps[i].skiff)
		}
	}
	if os.Getenv("DIFF_SHOW") != "" {
		t.Logf("OpenSSH: %q\nSkiff:   %q", want, got)
	}
	for i, st := range steps {
		switch {
		case !st.hasSkiff && got[i] != want[i]:
			t.Errorf("step %d (%s %q):\n  OpenSSH: %s\n  Skiff:   %s", i+1, st.op, st.args, want[i], got[i])
		case st.hasSkiff && got[i] != st.skiff:
			t.Errorf("step %d (%s %q), a documented difference:\n  Skiff:    %s\n  expected: %s\n  OpenSSH:  %s", i+1, st.op, st.args, got[i], st.skiff, want[i])
		case st.hasSkiff && want[i] == st.skiff:
			t.Errorf("step %d (%s %q): OpenSSH answers as Skiff, %s: not a difference", i+1, st.op, st.args, want[i])
		}
	}
	if c.row == "" {
		if ot, st := treeState(t, o.dir), treeState(t, s.dir); ot != st {
			t.Errorf("the trees differ after the script:\n  OpenSSH: %s\n  Skiff:   %s", ot, st)
		}
	}
}

// Long names are OpenSSH's ls_file lines, column for column, but for the
// owner and group, which are the session's login (the owner-and-group row
// of the differences table). The fixture's entries are older than six
// months (a year shows); a new one shows its time of day.
func TestLongNamesAsOpenSSH(t *testing.T) {
	skipOnS3(t, "the fixture sets modes on the disk; objects have none, and folders no link counts")
	if _, err := os.Stat(sftpServerPath); err != nil {
		t.Skipf("OpenSSH's sftp-server is not installed (Debian: apt-get install openssh-sftp-server): %v", err)
	}
	me, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	grp, err := user.LookupGroupId(me.Gid)
	if err != nil {
		t.Skip(err)
	}
	o, s := startOpenSSH(t), startSkiff(t)
	for _, p := range []*peer{o, s} {
		p.run("chmod d 02750; chmod e 01777; open new wc @h; write @h 0 hello; close @h")
	}
	want, got := o.longNames("."), s.longNames(".")
	if len(got) != len(want) || len(got) < 9 {
		t.Fatalf("Skiff lists %d entries, OpenSSH %d", len(got), len(want))
	}
	from := fmt.Sprintf(" %-8s %-8s ", me.Username, grp.Name)
	to := fmt.Sprintf(" %-8s %-8s ", diffLogin, diffLogin)
	for name, line := range want {
		if name == ".." {
			continue // outside the fixture
		}
		if exp := strings.Replace(line, from, to, 1); got[name] != exp {
			t.Errorf("long name of %q:\n  Skiff:    %q\n  expected: %q\n  OpenSSH:  %q", name, got[name], exp, line)
		}
	}
}

// Modes show what the session may do: a folder shared read-only, and its
// files, have no write bits, in listings and in stat; a folder where the
// user may upload shows them.
func TestModesShowRights(t *testing.T) {
	e := newEnv(t, func(c *vfs.Config) { c.Login = diffLogin })
	e.shares.set(
		vfs.SharedFolder{ID: folderA, Name: "Read", Rights: vfs.List | vfs.Download},
		vfs.SharedFolder{ID: folderB, Name: "Write", Rights: vfs.AllRights},
	)
	for _, id := range []string{folderA, folderB} {
		mustWrite(t, filepath.Join(e.folder(id), "f.txt"), "x")
		mustMkdir(t, filepath.Join(e.folder(id), "sub"))
	}
	r := newRawInit(t, e.session)
	p := &peer{name: "skiff", r: r}
	for dir, want := range map[string]map[string]string{
		mount + "/Read":  {"f.txt": "-r--r----- ", "sub": "dr-xr-x--- ", ".": "dr-xr-xr-x "},
		mount + "/Write": {"f.txt": "-rw-r----- ", "sub": "drwxr-x--- ", ".": "drwxr-xr-x "},
	} {
		got := p.longNames(dir)
		for name, mode := range want {
			if !strings.HasPrefix(got[name], mode) || !strings.Contains(got[name], diffLogin+" "+diffLogin) {
				t.Errorf("%s/%s listed %q, want mode %q and owner %s", dir, name, got[name], mode, diffLogin)
			}
		}
	}
	r.send(packet(typeStat, u32(9), str(mount+"/Read/f.txt")))
	if typ, b := r.recv(); typ != typeAttrs || !strings.Contains(mustAttrs(t, b[4:]), "mode=100440") {
		t.Errorf("stat of a read-only shared file: %d %x, want mode 100440", typ, b)
	}
}

func mustAttrs(t *testing.T, b []byte) string {
	s, _ := attrString(t, b)
	return s
}

// A file deleted by another session while this one re-uploads it: the
// delete removes the version that is there, and the upload, when closed,
// puts the new version in its place, as if the delete had come first
// (docs/SFTP-SERVER.md, "Uploads"). Nobody sees a partial file meanwhile.
func TestDeleteDuringReupload(t *testing.T) {
	e := newEnv(t)
	mustWrite(t, filepath.Join(e.home(), "f.txt"), "old version")
	second, err := vfs.NewSession(context.Background(), vfs.Config{
		AccountID: accountID, UserID: userID, Storage: e.store, Gate: e.gate, Shares: e.shares,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	uploader, other := newRawInit(t, e.session), newRawInit(t, second)
	h := uploader.open(1, "f.txt", fxfWrite|fxfCreat|fxfTrunc)
	if got := uploader.write(2, h, 0, "new"); got != codeOK {
		t.Fatalf("write: status %d", got)
	}
	other.send(packet(13, u32(1), str("f.txt")))
	if got := other.status(1); got != codeOK {
		t.Fatalf("the other session's remove: status %d", got)
	}
	if exists(filepath.Join(e.home(), "f.txt")) {
		t.Error("f.txt still there after the remove")
	}
	other.send(packet(typeStat, u32(2), str("f.txt")))
	if got := other.status(2); got != codeNoSuchFile {
		t.Errorf("the other session's stat while the upload runs: status %d, want NO_SUCH_FILE", got)
	}
	uploader.closeHandle(3, h)
	if got := mustRead(t, filepath.Join(e.home(), "f.txt")); got != "new" {
		t.Errorf("f.txt holds %q after the upload closed, want %q", got, "new")
	}
}
