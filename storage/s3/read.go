package s3

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/skiffhq/skiff/storage"
)

// Read-ahead. A reader keeps one ranged GET open from the offset of the
// last read to the object's end and reads on from it while the client
// reads sequentially, so a download is one streamed request, not one per
// SFTP packet. SFTP clients keep many reads in flight and they can arrive
// slightly out of order: reads up to readBehind before the stream's
// position are served from the bytes it last delivered, and reads up to
// readSkip ahead of it by reading on; anything else starts a new GET.
const (
	readBehind = 1 << 20
	readSkip   = 8 << 20
)

// reader is an object open for reading.
type reader struct {
	t    *Tree
	name string
	key  string
	fi   *fileInfo

	mu   sync.Mutex
	body io.ReadCloser
	pos  int64  // offset of body's next byte
	win  []byte // the bytes body delivered last: [pos-len(win), pos)
	done bool
}

var _ storage.File = (*reader)(nil)

func newReader(t *Tree, name string, fi *fileInfo) *reader {
	return &reader{t: t, name: name, key: t.key(name), fi: fi}
}

// ReadAt implements storage.File. Every GET asks for the version the file
// had when opened (If-Match on its ETag): should the object be replaced
// meanwhile, the read fails rather than mixing two versions.
func (r *reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, pathErr("read", r.name, fs.ErrInvalid)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return 0, pathErr("read", r.name, fs.ErrClosed)
	}
	size := r.fi.size
	if off >= size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), size)
	if r.body == nil || off < r.pos-int64(len(r.win)) || off > r.pos+readSkip {
		if err := r.open(off); err != nil {
			return 0, err
		}
	}
	if err := r.fill(end); err != nil {
		r.closeBody()
		return 0, err
	}
	n := copy(p, r.win[int64(len(r.win))-(r.pos-off):])
	n = min(n, int(end-off))
	if off+int64(n) == size && n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// open starts a GET of the object from off to its end.
func (r *reader) open(off int64) error {
	r.closeBody()
	in := &awss3.GetObjectInput{Bucket: r.t.s.bucket, Key: aws.String(r.key), Range: aws.String(fmt.Sprintf("bytes=%d-", off))}
	if r.fi.etag != "" {
		in.IfMatch = aws.String(r.fi.etag)
	}
	out, err := r.t.s.client.GetObject(ctxBG, in, quietChecksums)
	if err != nil {
		return mapErr("read", r.name, err)
	}
	r.body, r.pos, r.win = out.Body, off, r.win[:0]
	return nil
}

// fill reads the stream on to end, keeping the last readBehind bytes (and
// at least what lies beyond the offset asked for).
func (r *reader) fill(end int64) error {
	if end <= r.pos {
		return nil
	}
	need := int(end - r.pos)
	if r.win == nil {
		r.win = make([]byte, 0, readBehind+64<<10)
	}
	if len(r.win)+need > cap(r.win) {
		keep := min(len(r.win), max(0, cap(r.win)-need))
		if need > cap(r.win) {
			r.win = make([]byte, 0, need)
			keep = 0
		}
		r.win = r.win[:copy(r.win[:cap(r.win)], r.win[len(r.win)-keep:])]
	}
	buf := r.win[len(r.win) : len(r.win)+need]
	n, err := io.ReadFull(r.body, buf)
	r.win = r.win[:len(r.win)+n]
	r.pos += int64(n)
	if err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return pathErr("read", r.name, fmt.Errorf("object ended at %d of %d bytes: %w", r.pos, r.fi.size, io.ErrUnexpectedEOF))
		}
		return mapErr("read", r.name, err)
	}
	return nil
}

func (r *reader) closeBody() {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
}

func (r *reader) Stat() (fs.FileInfo, error) { return r.fi, nil }

func (r *reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeBody()
	r.win = nil
	r.done = true
	return nil
}

func (r *reader) WriteAt(p []byte, off int64) (int, error) {
	return 0, pathErr("write", r.name, syscall.EBADF)
}
func (r *reader) Write(p []byte) (int, error)  { return 0, pathErr("write", r.name, syscall.EBADF) }
func (r *reader) Truncate(size int64) error    { return pathErr("truncate", r.name, syscall.EBADF) }
func (r *reader) Chtimes(a, m time.Time) error { return nil }
func (r *reader) Sync() error                  { return nil }
func (r *reader) Readdir(int) ([]fs.FileInfo, error) {
	return nil, pathErr("readdir", r.name, syscall.ENOTDIR)
}

// dir is a folder open for listing: pages of up to 1,000 keys, one request
// each, fetched as Readdir asks for them.
type dir struct {
	t      *Tree
	name   string
	prefix string
	fi     *fileInfo

	mu      sync.Mutex
	token   *string
	ended   bool
	pending []fs.FileInfo
}

var _ storage.File = (*dir)(nil)

// listPage is how many keys a listing asks for per request (S3's most).
const listPage = 1000

func (d *dir) Readdir(n int) ([]fs.FileInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for (n <= 0 || len(d.pending) < n) && !d.ended {
		if err := d.next(); err != nil {
			return nil, err
		}
	}
	if len(d.pending) == 0 {
		if n <= 0 {
			return nil, nil
		}
		return nil, io.EOF
	}
	k := len(d.pending)
	if n > 0 {
		k = min(k, n)
	}
	out := d.pending[:k:k]
	d.pending = d.pending[k:]
	return out, nil
}

func (d *dir) next() error {
	out, err := d.t.s.client.ListObjectsV2(ctxBG, &awss3.ListObjectsV2Input{Bucket: d.t.s.bucket,
		Prefix: aws.String(d.prefix), Delimiter: aws.String("/"), ContinuationToken: d.token, MaxKeys: aws.Int32(listPage)})
	if err != nil {
		return mapErr("readdir", d.name, err)
	}
	for _, o := range out.Contents {
		k := aws.ToString(o.Key)
		if k == d.prefix {
			continue // the folder's own marker
		}
		name := k[len(d.prefix):]
		if storage.IsUploadTemp(name) {
			continue
		}
		d.pending = append(d.pending, &fileInfo{name: name, size: aws.ToInt64(o.Size), mtime: aws.ToTime(o.LastModified), etag: aws.ToString(o.ETag)})
	}
	var dirs []*fileInfo
	for _, cp := range out.CommonPrefixes {
		name, _ := keyName(d.prefix, aws.ToString(cp.Prefix))
		if name == "" || storage.IsUploadTemp(name) {
			continue
		}
		fi := &fileInfo{name: path.Base(name), dir: true}
		dirs = append(dirs, fi)
		d.pending = append(d.pending, fi)
	}
	d.markerTimes(dirs)
	d.token = out.NextContinuationToken
	d.ended = !aws.ToBool(out.IsTruncated) || d.token == nil
	return nil
}

// markerTimes gives listed folders the time of their marker object, which
// a delimited listing does not tell (a HEAD each, 16 at a time).
func (d *dir) markerTimes(dirs []*fileInfo) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, fi := range dirs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			head, err := d.t.s.client.HeadObject(ctxBG, &awss3.HeadObjectInput{Bucket: d.t.s.bucket, Key: aws.String(d.prefix + fi.name + "/")})
			if err == nil {
				fi.mtime = aws.ToTime(head.LastModified)
			}
		}()
	}
	wg.Wait()
}

func (d *dir) Stat() (fs.FileInfo, error) { return d.fi, nil }
func (d *dir) Close() error               { return nil }
func (d *dir) ReadAt(p []byte, off int64) (int, error) {
	return 0, pathErr("read", d.name, errIsDir)
}
func (d *dir) WriteAt(p []byte, off int64) (int, error) {
	return 0, pathErr("write", d.name, errIsDir)
}
func (d *dir) Write(p []byte) (int, error)  { return 0, pathErr("write", d.name, errIsDir) }
func (d *dir) Truncate(int64) error         { return pathErr("truncate", d.name, errIsDir) }
func (d *dir) Chtimes(a, m time.Time) error { return nil }
func (d *dir) Sync() error                  { return nil }

// quietChecksums keeps the SDK from logging, on every GET of an object
// uploaded in parts, that it cannot check a composite checksum on the
// fly (it checks whole-object checksums; ranged reads have none).
func quietChecksums(o *awss3.Options) { o.DisableLogOutputChecksumValidationSkipped = true }
