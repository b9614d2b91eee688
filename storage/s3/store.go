// Package s3 keeps an account's files in an S3-compatible object store
// (AWS S3, MinIO, Ceph RGW, versitygw, …) behind the storage.Storage
// interface, through aws-sdk-go-v2.
//
// Layout. Keys mirror the local disk's layout under the configured prefix:
//
//	<prefix>/<accountID>/users/<userID>/<path>     a file in a user's home
//	<prefix>/<accountID>/folders/<folderID>/<path> a file in a project folder
//	…/<path>/                                      a folder's marker object
//
// The IDs are validated UUIDs in canonical form and <path> is a cleaned,
// tree-relative path (no "..", no empty or "." element, no leading slash),
// checked again here, so no client path can name a key outside its tree.
//
// Folders are key prefixes; Mkdir writes an empty marker object whose key
// ends in "/", so an empty folder survives. A folder that holds objects but
// no marker (written by another tool) is listed and usable all the same.
//
// What an object store cannot do as a disk does, and what this package does
// instead, is listed in docs/OPERATIONS.md ("Files on S3"): uploads become
// visible only when complete (as on disk); writes out of order are accepted
// within the parts held in memory and refused with a clear error beyond;
// resume and append rewrite the object with server-side copies of what it
// kept; folder rename copies every object and is refused above a size;
// the times clients set are kept in the database (times.go).
package s3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/google/uuid"

	"github.com/skiffhq/skiff/storage"
)

// Store is a storage.Storage on one bucket (and prefix) of an object
// store. It is safe for concurrent use.
type Store struct {
	client *awss3.Client
	cfg    Config
	bucket *string
	// parts holds part buffers (cfg.PartSize bytes) for reuse by uploads,
	// outside the Go heap (partbuf.go).
	parts  *partBuffers
	chunks *partBuffers // downloads' whole chunks (read.go)
	mem    *memBudget   // the node's transfers' memory: parts and read-ahead
	// times keeps the times clients set (times.go); nil: not kept.
	times storage.Times
}

var _ storage.Storage = (*Store)(nil)

// New returns a Store using client (configured by the caller: endpoint,
// credentials, addressing) for c's bucket and prefix. c's Endpoint, Region
// and PathStyle are not used.
func New(client *awss3.Client, c Config) (*Store, error) {
	if err := c.defaults(); err != nil {
		return nil, err
	}
	s := &Store{client: client, cfg: c, bucket: aws.String(c.Bucket)}
	s.parts = newPartBuffers(c.PartSize, c.PartsInFlight)
	s.chunks = newPartBuffers(readChunk, readAhead+2)
	s.mem = newMemBudget(c.Memory, c.MemoryPerAccount, c.MemoryWait)
	return s, nil
}

// Config returns the store's configuration, defaults filled in.
func (s *Store) Config() Config { return s.cfg }

// Check's failures, told apart so that a caller can act on each (serve's
// exit codes: a restart helps only while the store cannot be reached).
// Each error also says what to do; storage.ErrUnavailable is the fourth
// kind, a store that cannot be reached or answers with a server error.
var (
	// ErrNoBucket: the URL names a bucket the store does not have.
	ErrNoBucket = errors.New("s3: no such bucket")
	// ErrDenied: the store refused the credentials, or their right to
	// list the bucket.
	ErrDenied = errors.New("s3: access denied")
	// ErrCertificate: the store's TLS certificate is not trusted here.
	ErrCertificate = errors.New("s3: the store's certificate is not trusted")
)

// Check makes sure the bucket can be reached with the credentials given:
// a start-up check, so that a wrong URL or key fails at once, with an
// error that matches ErrNoBucket, ErrDenied, ErrCertificate or
// storage.ErrUnavailable when it is one of those.
func (s *Store) Check(ctx context.Context) error {
	_, err := s.client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: s.bucket, Prefix: aws.String(s.accountPrefix("")), MaxKeys: aws.Int32(1)})
	if err == nil {
		return nil
	}
	at := "AWS"
	if s.cfg.Endpoint != "" {
		at = s.cfg.Endpoint
	}
	status := 0 // no answer: the SDK gives a transport error status 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	code := apiCode(err)
	switch {
	case code == "NoSuchBucket" || status == http.StatusNotFound && code == "":
		return fmt.Errorf("%w: %s has no bucket %q (%s): create it, or name the right one in the URL", ErrNoBucket, at, s.cfg.Bucket, apiReason(err))
	case status == http.StatusForbidden || status == http.StatusUnauthorized || credentialCodes[code]:
		return fmt.Errorf("%w: %s refused to list bucket %q (%s): check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the instance's role) and that they may list the bucket",
			ErrDenied, at, s.cfg.Bucket, apiReason(err))
	case status == 0 && noCredentials(err):
		return fmt.Errorf("%w: found no credentials for %s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or give the instance a role (%v)", ErrDenied, at, err)
	case status == 0 && untrusted(err):
		return fmt.Errorf("%w: %s (%s): if the store's certificate is issued by a CA of your own, give its certificate in AWS_CA_BUNDLE; else correct the endpoint",
			ErrCertificate, at, transportReason(err))
	case status == 0 || status >= 500:
		return &wrapped{sentinel: storage.ErrUnavailable, err: fmt.Errorf("s3: cannot reach bucket %q at %s (%s): is the store running, and is the endpoint right?",
			s.cfg.Bucket, at, transportReason(err))}
	}
	return fmt.Errorf("s3: bucket %q at %s: %w", s.cfg.Bucket, at, err)
}

// credentialCodes are the S3 error codes of credentials the store does not
// take, whatever HTTP status comes with them (versitygw answers an unknown
// access key with 404 XAdminUserNotFound).
var credentialCodes = map[string]bool{
	"AccessDenied": true, "InvalidAccessKeyId": true, "SignatureDoesNotMatch": true,
	"ExpiredToken": true, "InvalidToken": true, "XAdminUserNotFound": true,
}

// untrusted reports whether a request failed because the store's TLS
// certificate could not be verified: crypto/tls wraps every verification
// failure (an unknown authority, a name that does not match, an expired
// certificate) in tls.CertificateVerificationError.
func untrusted(err error) bool {
	var cv *tls.CertificateVerificationError
	return errors.As(err, &cv)
}

// transportReason is why a request got no answer: the certificate or
// network error when there is one (a refused or timed-out connection), else
// the whole error.
func transportReason(err error) string {
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return cv.Error()
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return ne.Error()
	}
	if apiCode(err) != "" {
		return apiReason(err)
	}
	return err.Error()
}

// apiReason is an S3 error's code and message, without the SDK's request
// details.
func apiReason(err error) string {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err.Error()
	}
	if m := ae.ErrorMessage(); m != "" {
		return ae.ErrorCode() + ": " + m
	}
	return ae.ErrorCode()
}

// noCredentials reports whether the SDK found no credentials to sign with.
func noCredentials(err error) bool {
	return strings.Contains(err.Error(), "failed to retrieve credentials") ||
		strings.Contains(err.Error(), "failed to refresh cached credentials")
}

// accountPrefix is the key prefix of an account ("" gives the store's
// whole prefix), ending in "/" unless the store's prefix is empty and so is
// acct.
func (s *Store) accountPrefix(acct string) string {
	p := s.cfg.Prefix
	if p != "" {
		p += "/"
	}
	if acct != "" {
		p += acct + "/"
	}
	return p
}

func (s *Store) treePrefix(accountID, kind, id string) (string, error) {
	acct, err := canonicalID(accountID)
	if err != nil {
		return "", err
	}
	leaf, err := canonicalID(id)
	if err != nil {
		return "", err
	}
	return s.accountPrefix(acct) + kind + "/" + leaf + "/", nil
}

// treeRef names a tree for the Times (IDs already checked by treePrefix).
func treeRef(accountID, id string) storage.TreeRef {
	acct, _ := canonicalID(accountID)
	leaf, _ := canonicalID(id)
	return storage.TreeRef{Account: acct, ID: leaf}
}

// UserHome implements storage.Storage. Nothing is written until the first
// file or folder: a tree's top always exists.
func (s *Store) UserHome(accountID, userID string) (storage.Tree, error) {
	return s.tree(accountID, "users", userID)
}

// ProjectFolder implements storage.Storage.
func (s *Store) ProjectFolder(accountID, folderID string) (storage.Tree, error) {
	return s.tree(accountID, "folders", folderID)
}

func (s *Store) tree(accountID, kind, id string) (*Tree, error) {
	root, err := s.treePrefix(accountID, kind, id)
	if err != nil {
		return nil, err
	}
	return &Tree{s: s, root: root, ref: treeRef(accountID, id)}, nil
}

// FreeSpace implements storage.Storage. An object store has no fixed
// capacity: it reports 1 PiB free of 1 PiB, and 2^40 files, so that clients
// that check before uploading go ahead; quotas are Skiff's own.
func (s *Store) FreeSpace(accountID string) (storage.Space, error) {
	if _, err := canonicalID(accountID); err != nil {
		return storage.Space{}, err
	}
	const blockSize = 4096
	const blocks = (1 << 50) / blockSize
	return storage.Space{
		BlockSize: blockSize, Blocks: blocks, BlocksFree: blocks, BlocksAvail: blocks,
		Files: 1 << 40, FilesFree: 1 << 40, NameMax: 255,
	}, nil
}

// RemoveUserHome deletes a user's home and everything in it, for good.
func (s *Store) RemoveUserHome(accountID, userID string) error {
	return s.removeTree(accountID, "users", userID)
}

// RemoveProjectFolder deletes a project folder's files, for good.
func (s *Store) RemoveProjectFolder(accountID, folderID string) error {
	return s.removeTree(accountID, "folders", folderID)
}

func (s *Store) removeTree(accountID, kind, id string) error {
	root, err := s.treePrefix(accountID, kind, id)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := s.deletePrefix(ctx, root); err != nil {
		return fmt.Errorf("storage: remove %s directory: %w", kind, err)
	}
	// Unfinished uploads under the tree would otherwise wait for the sweep.
	if _, err := s.abortUploads(ctx, root, time.Time{}); err != nil {
		return err
	}
	if s.times != nil {
		if err := s.times.Delete(ctx, treeRef(accountID, id), "."); err != nil {
			return fmt.Errorf("storage: remove %s directory: the times kept: %w", kind, err)
		}
	}
	return nil
}

// deletePrefix deletes every object whose key starts with prefix, a page
// (up to 1,000 keys) per request.
func (s *Store) deletePrefix(ctx context.Context, prefix string) error {
	p := awss3.NewListObjectsV2Paginator(s.client, &awss3.ListObjectsV2Input{Bucket: s.bucket, Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return mapErr("list", prefix, err)
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]types.ObjectIdentifier, len(page.Contents))
		for i, o := range page.Contents {
			ids[i] = types.ObjectIdentifier{Key: o.Key}
		}
		if err := s.deleteObjects(ctx, ids); err != nil {
			return err
		}
	}
	return nil
}

// deleteKeys deletes keys, up to 1,000 (what DeleteObjects takes) per request.
func (s *Store) deleteKeys(ctx context.Context, keys []string) error {
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		ids := make([]types.ObjectIdentifier, n)
		for i, k := range keys[:n] {
			ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		if err := s.deleteObjects(ctx, ids); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

func (s *Store) deleteObjects(ctx context.Context, ids []types.ObjectIdentifier) error {
	out, err := s.client.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: s.bucket,
		Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
	if err != nil {
		return mapErr("delete", "", err)
	}
	if len(out.Errors) > 0 {
		e := out.Errors[0]
		return fmt.Errorf("s3: delete %s: %s: %s", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
	}
	return nil
}

// SweepOrphans aborts the unfinished multipart uploads under the store's
// prefix that started more than Config.OrphanAge ago: those a node that
// crashed or was killed left behind (a node aborts its own when a transfer
// fails or its session ends). It returns how many it aborted.
func (s *Store) SweepOrphans(ctx context.Context) (int, error) {
	return s.abortUploads(ctx, s.accountPrefix(""), time.Now().Add(-s.cfg.OrphanAge))
}

// RunSweeper calls SweepOrphans every interval until ctx ends, reporting
// errors to logf.
func (s *Store) RunSweeper(ctx context.Context, interval time.Duration, logf func(n int, err error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.SweepOrphans(ctx)
		if (n > 0 || err != nil) && ctx.Err() == nil {
			logf(n, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// abortUploads aborts the multipart uploads under prefix started before
// before (all of them if before is zero).
func (s *Store) abortUploads(ctx context.Context, prefix string, before time.Time) (int, error) {
	in := &awss3.ListMultipartUploadsInput{Bucket: s.bucket, Prefix: aws.String(prefix)}
	n := 0
	for {
		out, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return n, mapErr("list uploads", prefix, err)
		}
		for _, u := range out.Uploads {
			if !before.IsZero() && (u.Initiated == nil || !u.Initiated.Before(before)) {
				continue
			}
			_, err := s.client.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: s.bucket, Key: u.Key, UploadId: u.UploadId})
			if err != nil && !isNotFound(err) {
				return n, mapErr("abort upload", aws.ToString(u.Key), err)
			}
			n++
		}
		if !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// canonicalID validates a UUID and returns its canonical lower-case form,
// as the local disk's storage does.
func canonicalID(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil || u == uuid.Nil {
		return "", fmt.Errorf("%w: %q", storage.ErrInvalidID, id)
	}
	return u.String(), nil
}

// mapErr turns an S3 error into one that errors.Is matches against the
// io/fs sentinels, as storage.Tree's contract asks.
func mapErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch {
	case isNotFound(err):
		sentinel = fs.ErrNotExist
	case isStatus(err, http.StatusPreconditionFailed), apiCode(err) == "PreconditionFailed":
		sentinel = fs.ErrExist
	case isStatus(err, http.StatusForbidden), apiCode(err) == "AccessDenied":
		sentinel = fs.ErrPermission
	case apiCode(err) == "EntityTooLarge", apiCode(err) == "QuotaExceeded":
		sentinel = syscall.EFBIG
	}
	if sentinel == nil {
		return &fs.PathError{Op: op, Path: name, Err: err}
	}
	return &fs.PathError{Op: op, Path: name, Err: &wrapped{sentinel: sentinel, err: err}}
}

// changedErr is mapErr for a request conditional on the version a file was
// opened at (If-Match): a failed condition means the file was replaced
// since (storage.ErrChanged).
func changedErr(op, name string, err error) error {
	if isStatus(err, http.StatusPreconditionFailed) || apiCode(err) == "PreconditionFailed" {
		return &fs.PathError{Op: op, Path: name, Err: &wrapped{sentinel: storage.ErrChanged, err: err}}
	}
	return mapErr(op, name, err)
}

// wrapped is an S3 error that also matches an io/fs sentinel.
type wrapped struct {
	sentinel error
	err      error
}

func (w *wrapped) Error() string        { return w.err.Error() }
func (w *wrapped) Unwrap() []error      { return []error{w.sentinel, w.err} }
func (w *wrapped) Is(target error) bool { return target == w.sentinel }

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isStatus(err error, code int) bool {
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == code
}

func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var nsu *types.NoSuchUpload
	return errors.As(err, &nsk) || errors.As(err, &nf) || errors.As(err, &nsu) ||
		isStatus(err, http.StatusNotFound) || apiCode(err) == "NoSuchKey" || apiCode(err) == "NotFound"
}

// unsupported is the error for what the store cannot do.
func unsupported(op, reason string) error { return storage.Unsupported(op, reason) }

var errIsDir = syscall.EISDIR

func pathErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// keyName reports the tree-relative name of key (under root) and whether
// it is a folder marker.
func keyName(root, key string) (string, bool) {
	name := strings.TrimPrefix(key, root)
	if n, ok := strings.CutSuffix(name, "/"); ok {
		return n, true
	}
	return name, false
}

// Close implements what serve and the tests close a storage with. A Store
// holds no resources of its own; the idle connections of its HTTP client
// are closed where the client can (an *http.Client).
func (s *Store) Close() error {
	if c, ok := s.client.Options().HTTPClient.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	return nil
}
