package s3

import (
	"context"
	"fmt"
	"io"

	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// The deployment's own small objects beside the accounts (the storage
// marker, .skiff-storage): a name of one element, never a UUID, so that it
// cannot be an account's prefix.

func (s *Store) topKey(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return "", fmt.Errorf("s3: invalid top-level name %q", name)
	}
	if _, err := canonicalID(name); err == nil {
		return "", fmt.Errorf("s3: top-level name %q is an account ID", name)
	}
	return s.accountPrefix("") + name, nil
}

// ReadTop reads a top-level object (fs.ErrNotExist if missing).
func (s *Store) ReadTop(ctx context.Context, name string) ([]byte, error) {
	key, err := s.topKey(name)
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{Bucket: s.bucket, Key: aws.String(key)}, quietChecksums)
	if err != nil {
		return nil, mapErr("read", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, 1<<20))
	if err != nil {
		return nil, mapErr("read", key, err)
	}
	return b, nil
}

// CreateTop writes a top-level object if none exists (If-None-Match):
// fs.ErrExist otherwise, so that of two nodes writing at once one wins.
func (s *Store) CreateTop(ctx context.Context, name string, data []byte) error {
	key, err := s.topKey(name)
	if err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, &awss3.PutObjectInput{Bucket: s.bucket, Key: aws.String(key),
		Body: bytesReader(data), ContentLength: aws.Int64(int64(len(data))), IfNoneMatch: aws.String("*")})
	return mapErr("create", key, err)
}

// URL names the store for messages: s3://bucket/prefix.
func (s *Store) URL() string {
	return "s3://" + s.cfg.Bucket + "/" + s.cfg.Prefix
}
