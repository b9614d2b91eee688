package s3

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// Accounts lists the accounts that have objects under the store's prefix
// (one delimited listing, paged).
func (s *Store) Accounts() ([]string, error) {
	top := s.accountPrefix("")
	var ids []string
	p := awss3.NewListObjectsV2Paginator(s.client, &awss3.ListObjectsV2Input{Bucket: s.bucket, Prefix: aws.String(top), Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			return nil, fmt.Errorf("storage: list accounts: %w", mapErr("list", top, err))
		}
		for _, cp := range page.CommonPrefixes {
			name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), top), "/")
			if id, err := canonicalID(name); err == nil && id == name {
				ids = append(ids, id)
			}
		}
	}
	return ids, nil
}

// TreeSizes returns the bytes in each of an account's trees (users' homes
// and project folders), by user or folder ID, from a listing of the
// account's keys: every object but folder markers and those whose name
// skip reports. Unfinished multipart uploads are not objects, so they
// count nothing.
func (s *Store) TreeSizes(accountID string, skip func(name string) bool) (map[string]int64, error) {
	acct, err := canonicalID(accountID)
	if err != nil {
		return nil, err
	}
	top := s.accountPrefix(acct)
	sizes := make(map[string]int64)
	p := awss3.NewListObjectsV2Paginator(s.client, &awss3.ListObjectsV2Input{Bucket: s.bucket, Prefix: aws.String(top)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			return nil, fmt.Errorf("storage: list account %s: %w", acct, mapErr("list", top, err))
		}
		for _, o := range page.Contents {
			rel := strings.TrimPrefix(aws.ToString(o.Key), top) // kind/id/path
			kind, rest, ok := strings.Cut(rel, "/")
			if !ok || (kind != "users" && kind != "folders") {
				continue
			}
			leaf, name, ok := strings.Cut(rest, "/")
			id, err := canonicalID(leaf)
			if !ok || err != nil || id != leaf {
				continue
			}
			if name == "" || strings.HasSuffix(name, "/") || (skip != nil && skip(path.Base(name))) {
				continue
			}
			sizes[id] += aws.ToInt64(o.Size)
		}
	}
	return sizes, nil
}
