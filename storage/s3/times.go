package s3

import (
	"context"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/skiffhq/skiff/storage"
)

// Modification times set by clients ("put -p", rclone, scp -p). An object's
// own time is when it was written, and S3 cannot change it without writing
// the object again; listings do not return an object's metadata either. So
// the times clients set are kept beside the bucket, in a storage.Times
// (Skiff's database), keyed by tree and path, each with the ETag the object
// had when its time was set (as the time's Version): a time applies while the object is that version, and
// an object written again afterwards (without a new time) shows when it was
// written, as on a disk. A folder's time has no ETag and applies while the
// folder exists. Without a Times (Store.KeepTimes), times set are accepted
// and not kept.

// KeepTimes makes the store keep the times clients set in times. Call it
// before the store is used.
func (s *Store) KeepTimes(times storage.Times) { s.times = times }

// applies reports whether a kept time describes fi: a folder's always, a
// file's while the object is the version it was set on.
func applies(tm storage.Time, fi *fileInfo) bool {
	if fi.dir {
		return tm.Version == ""
	}
	return tm.Version != "" && tm.Version == fi.etag
}

// withTime gives fi (name's) the time kept for it, if any. A Times that
// cannot be read leaves the object's own time: a listing or a stat does
// not fail for it.
func (t *Tree) withTime(ctx context.Context, name string, fi *fileInfo) *fileInfo {
	if t.s.times == nil || name == "." {
		return fi
	}
	if tm, ok := t.keptTime(ctx, name); ok && applies(tm, fi) {
		fi.mtime = tm.ModTime
	}
	return fi
}

// timeAnswer is what the memo keeps of the Times' answer for a name.
type timeAnswer struct {
	tm storage.Time
	ok bool
}

// keptTime asks the Times for name's time; within a span of the tree's
// memo, once per name (a download's OPEN stats the file, then opens it).
func (t *Tree) keptTime(ctx context.Context, name string) (storage.Time, bool) {
	key := "time of " + t.key(name)
	v, known, token := t.memo.Look(key)
	if a, isAnswer := v.(timeAnswer); known && isAnswer {
		return a.tm, a.ok
	}
	tm, ok, err := t.s.times.Get(ctx, t.ref, name)
	if err != nil {
		return storage.Time{}, false
	}
	t.memo.Keep(token, key, timeAnswer{tm, ok})
	return tm, ok
}

// withTimes gives the entries of dir listed in fis the times kept for them.
func (t *Tree) withTimes(ctx context.Context, dir string, fis []*fileInfo) {
	if t.s.times == nil || len(fis) == 0 {
		return
	}
	times, err := t.s.times.List(ctx, t.ref, dir)
	if err != nil {
		return
	}
	for _, fi := range fis {
		if tm, ok := times[fi.name]; ok && applies(tm, fi) {
			fi.mtime = tm.ModTime
		}
	}
}

// setTime keeps mtime for name, as it is now (fi). The tree's top has no
// time of its own on S3 (it is the tree's key prefix): one set on it is
// accepted and not kept.
func (t *Tree) setTime(ctx context.Context, op, name string, fi *fileInfo, mtime time.Time) error {
	if name == "." {
		return nil
	}
	tm := storage.Time{ModTime: mtime.UTC()}
	if !fi.dir {
		tm.Version = fi.etag
	}
	err := t.s.times.Set(ctx, t.ref, map[string]storage.Time{name: tm})
	t.changed()
	if err != nil {
		return mapErr(op, name, err)
	}
	return nil
}

// setTimeNow keeps mtime for the object now at name (a file just
// written).
func (t *Tree) setTimeNow(ctx context.Context, op, name string, mtime time.Time) error {
	if t.s.times == nil {
		return nil
	}
	head, err := t.s.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: t.s.bucket, Key: aws.String(t.key(name))})
	if err != nil {
		return mapErr(op, name, err)
	}
	return t.setTime(ctx, op, name, &fileInfo{name: path.Base(name), etag: aws.ToString(head.ETag)}, mtime)
}

// forgetTimes drops what is kept for name and under it (removed).
func (t *Tree) forgetTimes(ctx context.Context, name string) {
	if t.s.times != nil {
		_ = t.s.times.Delete(ctx, t.ref, name)
		t.changed()
	}
}

// movedTimes carries the times kept for name and under it over to newName
// in dst once moved: for the files whose objects were still the versions
// the times were set on (moved gives each file's ETags before and after
// the move, by path under name), and for folders. What newName had kept (a
// file replaced) goes.
func (t *Tree) movedTimes(ctx context.Context, name string, kept map[string]storage.Time, moved map[string]versions, dst *Tree, newName string) error {
	defer dst.changed()
	carried := map[string]storage.Time{}
	for p, tm := range kept {
		rel := strings.TrimPrefix(strings.TrimPrefix(p, name), "/")
		if tm.Version != "" {
			v := moved[rel]
			if v.old != tm.Version || v.now == "" {
				continue // written again since its time was set
			}
			tm.Version = v.now
		}
		carried[path.Join(newName, rel)] = tm
	}
	if err := dst.s.times.Delete(ctx, dst.ref, newName); err != nil {
		return err
	}
	if err := dst.s.times.Set(ctx, dst.ref, carried); err != nil {
		return err
	}
	if len(kept) == 0 {
		return nil
	}
	return t.s.times.Delete(ctx, t.ref, name)
}
