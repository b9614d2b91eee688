package s3

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/skiffhq/skiff/internal/bytesize"
	"github.com/skiffhq/skiff/storage"
)

// maxKeyLen is S3's longest key, in bytes.
const maxKeyLen = 1024

// Tree is a user's home or a project folder: the objects under one key
// prefix. It is safe for concurrent use and holds no resources.
type Tree struct {
	s    *Store
	root string          // key prefix, ending in "/"
	ref  storage.TreeRef // names the tree for the store's Times
	memo *storage.Memo   // what the store said within the current request (WithMemo)
	gone <-chan struct{} // closed when nobody is left to hear (WithGone); nil: never
}

var _ storage.Tree = (*Tree)(nil)

// Root returns the key prefix of the tree (for tests and tools).
func (t *Tree) Root() string { return t.root }

// WithMemo returns the tree answering a name's stat from m within one of
// m's spans, as the store answered it earlier in the span (storage.Memo).
func (t *Tree) WithMemo(m *storage.Memo) storage.Tree {
	c := *t
	c.memo = m
	return &c
}

// WithGone returns the tree giving up an upload's wait for memory once
// gone is closed (storage.Unheard).
func (t *Tree) WithGone(gone <-chan struct{}) storage.Tree {
	c := *t
	c.gone = gone
	return &c
}

// changed is called after every request that changes the store: what the
// memo holds may be out of date.
func (t *Tree) changed() { t.memo.Forget() }

// check validates a tree-relative name (see storage.Tree): clean, relative,
// no "." or ".." element, no NUL, and short enough for a key.
func (t *Tree) check(op, name string) error {
	if name == "." {
		return nil
	}
	if name == "" || strings.HasPrefix(name, "/") || path.Clean(name) != name ||
		name == ".." || strings.HasPrefix(name, "../") || strings.ContainsRune(name, 0) {
		return pathErr(op, name, fs.ErrInvalid)
	}
	if len(t.root)+len(name)+1 > maxKeyLen {
		return pathErr(op, name, syscall.ENAMETOOLONG)
	}
	return nil
}

// key is the object key of a file; dirKey that of a folder's marker (and
// the prefix of what the folder holds).
func (t *Tree) key(name string) string { return t.root + name }

func (t *Tree) dirKey(name string) string {
	if name == "." {
		return t.root
	}
	return t.root + name + "/"
}

var ctxBG = context.Background()

// Stat implements storage.Tree: a HEAD for a file, then a one-key listing
// for a folder (its marker, or any object under it).
func (t *Tree) Stat(name string) (fs.FileInfo, error) {
	if err := t.check("stat", name); err != nil {
		return nil, err
	}
	fi, err := t.stat(ctxBG, name)
	if err != nil {
		return nil, err
	}
	return t.withTime(ctxBG, name, fi), nil
}

// Lstat implements storage.Tree. Objects have no symbolic links.
func (t *Tree) Lstat(name string) (fs.FileInfo, error) { return t.Stat(name) }

// statAnswer is what the memo keeps of a stat: the store's answer, found
// or not found (other errors are not kept).
type statAnswer struct {
	fi  fileInfo
	err error
}

// stat describes name as the store does, without the kept times; within a
// span of the tree's memo, once per name.
func (t *Tree) stat(ctx context.Context, name string) (*fileInfo, error) {
	if name == "." {
		return &fileInfo{name: ".", dir: true}, nil
	}
	key := t.key(name)
	a, known, token := t.knownStat(key)
	if known {
		if a.err != nil {
			return nil, a.err
		}
		fi := a.fi
		return &fi, nil
	}
	fi, err := t.statStore(ctx, name)
	t.keepAnswer(token, key, fi, err)
	return fi, err
}

// knownStat is what the memo holds of the stat of key, and a token for
// keepAnswer.
func (t *Tree) knownStat(key string) (statAnswer, bool, uint64) {
	v, ok, token := t.memo.Look(key)
	a, isAnswer := v.(statAnswer)
	return a, ok && isAnswer, token
}

// keepAnswer keeps what the store said of key in the memo: found, or not
// found (other errors are not kept).
func (t *Tree) keepAnswer(token uint64, key string, fi *fileInfo, err error) {
	switch {
	case err == nil:
		t.memo.Keep(token, key, statAnswer{fi: *fi})
	case errors.Is(err, fs.ErrNotExist):
		t.memo.Keep(token, key, statAnswer{err: err})
	}
}

// PrefetchStat implements storage.StatPrefetcher: the names the memo does
// not know are asked about at once, the first (an upload's name, most
// likely new) with its object and its folder asked at once (statEager).
func (t *Tree) PrefetchStat(names ...string) {
	if !t.memo.Open() {
		return
	}
	var wg sync.WaitGroup
	for i, name := range names {
		if name == "." || t.check("stat", name) != nil {
			continue
		}
		key := t.key(name)
		if _, known, token := t.knownStat(key); !known {
			ask := t.statStore
			if i == 0 {
				ask = t.statEager
			}
			wg.Go(func() {
				fi, err := ask(ctxBG, name)
				t.keepAnswer(token, key, fi, err)
			})
		}
	}
	wg.Wait()
}

// statEager is statStore with the object and the listing of the folder of
// the same name asked at once: one round trip whatever the answer, where
// statStore takes two for a missing name with an extension. It costs a
// listing when the object exists, so it is for names expected missing.
func (t *Tree) statEager(ctx context.Context, name string) (*fileInfo, error) {
	type result struct {
		fi  *fileInfo
		err error
	}
	folder := make(chan result, 1)
	go func() {
		fi, err := t.statDir(ctx, name)
		folder <- result{fi, err}
	}()
	fi, err := t.head(ctx, name)
	d := <-folder
	switch {
	case err == nil:
		return fi, nil
	case !isNotFound(err):
		return nil, mapErr("stat", name, err)
	}
	return d.fi, d.err
}

// FileSize implements storage.FileSizer: one HEAD, or none when the memo
// knows the name.
func (t *Tree) FileSize(name string) (int64, bool) {
	if t.check("stat", name) != nil || name == "." {
		return 0, false
	}
	key := t.key(name)
	a, known, token := t.knownStat(key)
	if known {
		if a.err != nil || a.fi.dir {
			return 0, false
		}
		return a.fi.size, true
	}
	fi, err := t.head(ctxBG, name)
	if err != nil {
		return 0, false // missing (or a folder: not asked), or no answer
	}
	t.memo.Keep(token, key, statAnswer{fi: *fi})
	return fi.size, true
}

// head describes the object at name, if there is one.
func (t *Tree) head(ctx context.Context, name string) (*fileInfo, error) {
	head, err := t.s.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: t.s.bucket, Key: aws.String(t.key(name))})
	if err != nil {
		return nil, err
	}
	return &fileInfo{name: path.Base(name), size: aws.ToInt64(head.ContentLength), mtime: aws.ToTime(head.LastModified), etag: aws.ToString(head.ETag)}, nil
}

// statStore asks the store.
func (t *Tree) statStore(ctx context.Context, name string) (*fileInfo, error) {
	// A name without an extension is as likely a folder as a file: its
	// folder marker is asked for at the same time as the object, so that a
	// folder with a marker (every folder Skiff makes) is one round trip to
	// the store, as a file is. Other names ask for the object alone, and
	// then list: a folder is two round trips, as is a missing name (a new
	// upload's), and no request is spent on markers of files. The order of
	// the requests never changes the answer.
	type result struct {
		out *awss3.HeadObjectOutput
		err error
	}
	var marker chan result
	if path.Ext(name) == "" {
		// Not cancelled when the object is found: a cancelled request
		// closes its connection, and a new one costs a handshake.
		marker = make(chan result, 1)
		go func() {
			out, err := t.s.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: t.s.bucket, Key: aws.String(t.dirKey(name))})
			marker <- result{out, err}
		}()
	}
	fi, err := t.head(ctx, name)
	if err == nil {
		return fi, nil
	}
	if !isNotFound(err) {
		return nil, mapErr("stat", name, err)
	}
	if marker != nil {
		if m := <-marker; m.err == nil {
			return &fileInfo{name: path.Base(name), dir: true, mtime: aws.ToTime(m.out.LastModified)}, nil
		} else if !isNotFound(m.err) {
			return nil, mapErr("stat", name, m.err)
		}
	}
	return t.statDir(ctx, name)
}

// statDir describes name if it is a folder: its marker or anything under it.
func (t *Tree) statDir(ctx context.Context, name string) (*fileInfo, error) {
	prefix := t.dirKey(name)
	out, err := t.s.client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: t.s.bucket, Prefix: aws.String(prefix), MaxKeys: aws.Int32(1)})
	if err != nil {
		return nil, mapErr("stat", name, err)
	}
	if len(out.Contents) == 0 {
		return nil, pathErr("stat", name, fs.ErrNotExist)
	}
	fi := &fileInfo{name: path.Base(name), dir: true}
	if o := out.Contents[0]; aws.ToString(o.Key) == prefix {
		fi.mtime = aws.ToTime(o.LastModified)
	}
	return fi, nil
}

// parentDir checks that the folder holding name exists.
func (t *Tree) parentDir(ctx context.Context, op, name string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	fi, err := t.stat(ctx, dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return pathErr(op, name, fs.ErrNotExist)
		}
		return err
	}
	if !fi.dir {
		return pathErr(op, name, syscall.ENOTDIR)
	}
	return nil
}

// Open implements storage.Tree.
func (t *Tree) Open(name string) (storage.File, error) {
	return t.OpenFile(name, os.O_RDONLY)
}

// OpenFile implements storage.Tree. A file opened for writing is rewritten
// as a whole when closed (see modify.go); reads go to the object.
func (t *Tree) OpenFile(name string, flag int) (storage.File, error) {
	if err := t.check("open", name); err != nil {
		return nil, err
	}
	fi, err := t.stat(ctxBG, name)
	if err != nil {
		return nil, err
	}
	// The kept time is taken now, with the object: a handle describes the
	// file as opened, also after a rename moved its time elsewhere.
	fi = t.withTime(ctxBG, name, fi)
	if fi.dir {
		if flag&(os.O_WRONLY|os.O_RDWR) != 0 {
			return nil, pathErr("open", name, errIsDir)
		}
		return &dir{t: t, name: name, prefix: t.dirKey(name), fi: fi}, nil
	}
	if flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return newReader(t, name, fi), nil
	}
	return newModify(t, name, fi), nil
}

// Create implements storage.Tree with a multipart upload (upload.go).
func (t *Tree) Create(name string, flag int) (storage.Upload, error) {
	if err := t.check("create", name); err != nil {
		return nil, err
	}
	if name == "." {
		return nil, pathErr("create", name, errIsDir)
	}
	ctx := ctxBG
	if err := t.parentDir(ctx, "create", name); err != nil {
		return nil, err
	}
	fi, err := t.stat(ctx, name)
	switch {
	case err == nil && fi.dir:
		return nil, pathErr("create", name, errIsDir)
	case err == nil && flag&os.O_EXCL != 0:
		return nil, pathErr("create", name, fs.ErrExist)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	u := newUpload(t, name, flag)
	u.fresh = err != nil // nothing at name: no time kept for it to forget
	if u.excl {
		if err := u.claim(ctx); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// Mkdir implements storage.Tree: an empty marker object, written only if
// none exists (If-None-Match), so two Mkdirs cannot both succeed.
func (t *Tree) Mkdir(name string) error {
	if err := t.check("mkdir", name); err != nil {
		return err
	}
	if name == "." {
		return pathErr("mkdir", name, fs.ErrExist)
	}
	ctx := ctxBG
	if err := t.parentDir(ctx, "mkdir", name); err != nil {
		return err
	}
	if _, err := t.stat(ctx, name); err == nil {
		return pathErr("mkdir", name, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	_, err := t.s.client.PutObject(ctx, &awss3.PutObjectInput{Bucket: t.s.bucket, Key: aws.String(t.dirKey(name)),
		Body: strings.NewReader(""), ContentLength: aws.Int64(0), IfNoneMatch: aws.String("*")})
	t.changed()
	return mapErr("mkdir", name, err)
}

// Remove implements storage.Tree.
func (t *Tree) Remove(name string) error {
	if err := t.check("remove", name); err != nil {
		return err
	}
	if name == "." {
		return pathErr("remove", name, fs.ErrInvalid)
	}
	ctx := ctxBG
	fi, err := t.stat(ctx, name)
	if err != nil {
		return err
	}
	if !fi.dir {
		_, err := t.s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: t.s.bucket, Key: aws.String(t.key(name))})
		t.changed()
		if err != nil {
			return mapErr("remove", name, err)
		}
		t.forgetTimes(ctx, name)
		return nil
	}
	prefix := t.dirKey(name)
	out, err := t.s.client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: t.s.bucket, Prefix: aws.String(prefix), MaxKeys: aws.Int32(2)})
	if err != nil {
		return mapErr("remove", name, err)
	}
	for _, o := range out.Contents {
		if aws.ToString(o.Key) != prefix {
			return pathErr("remove", name, syscall.ENOTEMPTY)
		}
	}
	_, err = t.s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: t.s.bucket, Key: aws.String(prefix)})
	t.changed()
	if err != nil {
		return mapErr("remove", name, err)
	}
	t.forgetTimes(ctx, name)
	return nil
}

// Chtimes implements storage.Tree: the modification time is kept in the
// store's Times (times.go), the access time is not. Without a Times it is
// accepted and not kept (the name must exist all the same).
func (t *Tree) Chtimes(name string, atime, mtime time.Time) error {
	if err := t.check("chtimes", name); err != nil {
		return err
	}
	fi, err := t.stat(ctxBG, name)
	if err != nil || t.s.times == nil {
		return err
	}
	return t.setTime(ctxBG, "chtimes", name, fi, mtime)
}

// Close implements storage.Tree.
func (t *Tree) Close() error { return nil }

// Move implements storage.Tree: a server-side copy, then a delete. A
// folder is moved object by object, and refused above Config.MoveMaxFiles
// objects or Config.MoveMaxBytes bytes. Should a folder move fail midway,
// the copies made so far are deleted again, and name keeps everything.
func (t *Tree) Move(name string, to storage.Tree, newName string, replace bool) error {
	dst, ok := to.(*Tree)
	if !ok || dst.s != t.s {
		return unsupported("rename", "files cannot be moved between these two storages")
	}
	if err := t.check("rename", name); err != nil {
		return err
	}
	if err := dst.check("rename", newName); err != nil {
		return err
	}
	if name == "." || newName == "." {
		return pathErr("rename", name, fs.ErrInvalid)
	}
	ctx := ctxBG
	fi, err := t.stat(ctx, name)
	if err != nil {
		return err
	}
	if t == dst || t.root == dst.root {
		if name == newName { // rename(2) does nothing; without replacing, the name exists
			if replace {
				return nil
			}
			return pathErr("rename", newName, fs.ErrExist)
		}
		if fi.dir && strings.HasPrefix(newName, name+"/") {
			return pathErr("rename", name, fs.ErrInvalid)
		}
	}
	if err := dst.parentDir(ctx, "rename", newName); err != nil {
		return err
	}
	target, err := dst.stat(ctx, newName)
	switch {
	case err == nil && !replace:
		return pathErr("rename", newName, fs.ErrExist)
	case err == nil && target.dir && !fi.dir:
		return pathErr("rename", newName, errIsDir)
	case err == nil && !target.dir && fi.dir:
		return pathErr("rename", newName, syscall.ENOTDIR)
	case err == nil && target.dir:
		if err := dst.Remove(newName); err != nil { // only if empty
			return err
		}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	}
	var kept map[string]storage.Time
	if t.s.times != nil {
		if kept, err = t.s.times.Under(ctx, t.ref, name); err != nil {
			return mapErr("rename", name, err)
		}
	}
	defer func() { // also when it failed midway
		t.changed()
		dst.changed()
	}()
	var moved map[string]versions
	if !fi.dir {
		etag, err := t.s.copyObject(ctx, t.key(name), dst.key(newName), fi.size)
		if err != nil {
			return mapErr("rename", name, err)
		}
		if _, err := t.s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: t.s.bucket, Key: aws.String(t.key(name))}); err != nil {
			return mapErr("rename", name, err)
		}
		moved = map[string]versions{"": {fi.etag, etag}}
	} else if moved, err = t.moveDir(ctx, name, dst, newName); err != nil {
		return err
	}
	if t.s.times != nil {
		// The rename happened whatever this says: a time that cannot be
		// carried over (the database was reachable a moment ago) is lost,
		// and the file shows when it was written.
		_ = t.movedTimes(ctx, name, kept, moved, dst, newName)
	}
	return nil
}

// versions are a moved file's ETags before and after the move.
type versions struct{ old, now string }

// moveDir moves the folder name, and returns its files' ETags before and
// after, by path relative to it.
func (t *Tree) moveDir(ctx context.Context, name string, dst *Tree, newName string) (map[string]versions, error) {
	from, to := t.dirKey(name), dst.dirKey(newName)
	var objs []types.Object
	var total int64
	p := awss3.NewListObjectsV2Paginator(t.s.client, &awss3.ListObjectsV2Input{Bucket: t.s.bucket, Prefix: aws.String(from)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, mapErr("rename", name, err)
		}
		for _, o := range page.Contents {
			objs = append(objs, o)
			total += aws.ToInt64(o.Size)
		}
		if len(objs) > t.s.cfg.MoveMaxFiles || total > t.s.cfg.MoveMaxBytes {
			return nil, unsupported("rename", fmt.Sprintf("folders with more than %d files or %s cannot be renamed on this storage: "+
				"move their contents in smaller parts", t.s.cfg.MoveMaxFiles, bytesize.Exact(t.s.cfg.MoveMaxBytes)))
		}
	}
	hasMarker := false
	var copied []string
	moved := map[string]versions{}
	undo := func(err error) error {
		_ = t.s.deleteKeys(ctx, copied)
		return mapErr("rename", name, err)
	}
	for _, o := range objs {
		k := aws.ToString(o.Key)
		hasMarker = hasMarker || k == from
		nk := to + strings.TrimPrefix(k, from)
		var err error
		if strings.HasSuffix(k, "/") { // a folder marker: written anew
			_, err = t.s.client.PutObject(ctx, &awss3.PutObjectInput{Bucket: t.s.bucket, Key: aws.String(nk),
				Body: strings.NewReader(""), ContentLength: aws.Int64(0)})
		} else {
			var etag string
			etag, err = t.s.copyObject(ctx, k, nk, aws.ToInt64(o.Size))
			moved[k[len(from):]] = versions{aws.ToString(o.ETag), etag}
		}
		if err != nil {
			return nil, undo(err)
		}
		copied = append(copied, nk)
	}
	if !hasMarker { // keep the moved folder even if it ends up empty
		if _, err := t.s.client.PutObject(ctx, &awss3.PutObjectInput{Bucket: t.s.bucket, Key: aws.String(to),
			Body: strings.NewReader(""), ContentLength: aws.Int64(0)}); err != nil {
			return nil, undo(err)
		}
	}
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = aws.ToString(o.Key)
	}
	if err := t.s.deleteKeys(ctx, keys); err != nil {
		return nil, mapErr("rename", name, err)
	}
	return moved, nil
}

// copyObject copies an object server-side, CopyObject up to 5 GiB and a
// multipart upload of UploadPartCopy ranges beyond, and returns the copy's
// ETag.
func (s *Store) copyObject(ctx context.Context, from, to string, size int64) (string, error) {
	src := aws.String(s.cfg.Bucket + "/" + urlPathEscape(from))
	if size <= maxCopyPart {
		out, err := s.client.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: s.bucket, Key: aws.String(to), CopySource: src})
		if err != nil || out.CopyObjectResult == nil {
			return "", err
		}
		return aws.ToString(out.CopyObjectResult.ETag), nil
	}
	mp, err := s.startMultipart(ctx, to, false)
	if err != nil {
		return "", err
	}
	for off := int64(0); off < size; off += maxCopyPart {
		if err := mp.copyPart(ctx, from, "", off, min(maxCopyPart, size-off)); err != nil {
			mp.abort()
			return "", err
		}
	}
	etag, err := mp.complete(ctx, false, "")
	if err != nil {
		mp.abort()
		return "", err
	}
	return etag, nil
}

// urlPathEscape escapes a key for x-amz-copy-source, keeping the slashes.
func urlPathEscape(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// fileInfo describes an object or a folder.
type fileInfo struct {
	name  string
	size  int64
	mtime time.Time
	dir   bool
	etag  string
}

func (fi *fileInfo) Name() string { return fi.name }
func (fi *fileInfo) Size() int64 {
	if fi.dir {
		return 0
	}
	return fi.size
}
func (fi *fileInfo) Mode() fs.FileMode {
	if fi.dir {
		return fs.ModeDir | 0o750
	}
	return 0o640
}
func (fi *fileInfo) ModTime() time.Time { return fi.mtime }
func (fi *fileInfo) IsDir() bool        { return fi.dir }
func (fi *fileInfo) Sys() any           { return nil }
