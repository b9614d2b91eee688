package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// Limits of the S3 API that the upload logic is built around.
const (
	// MinPartSize is the smallest part of a multipart upload but the last.
	MinPartSize = 5 << 20
	// maxParts is the most parts one multipart upload may have.
	maxParts = 10000
	// maxCopyPart is the largest range one UploadPartCopy may copy, and
	// the largest object CopyObject copies in one request.
	maxCopyPart = 5 << 30
)

// Defaults of the Config knobs (see there).
const (
	DefaultPartSize      = 8 << 20
	DefaultPartsInFlight = 4
	DefaultMoveMaxFiles  = 1000
	DefaultMoveMaxBytes  = 10 << 30
	DefaultOrphanAge     = 24 * time.Hour
	DefaultMemory        = 1 << 30
	DefaultMemoryWait    = 30 * time.Second
	DefaultStallTimeout  = 5 * time.Minute
)

// Config is where and how a Store keeps files. ParseURL makes one from a
// --storage-url.
type Config struct {
	Bucket string
	// Prefix is prepended to every key (no leading or trailing slash; ""
	// for the bucket's top), so one bucket can hold several deployments.
	Prefix string
	// Endpoint is the S3 service's URL (http://host:port for a local
	// server); "" for AWS's own endpoints.
	Endpoint string
	Region   string
	// PathStyle addresses the bucket in the path (host/bucket/key) instead
	// of the host name (bucket.host/key): what most self-hosted servers
	// need. On by default when Endpoint is set.
	PathStyle bool

	// PartSize is the size of the parts of a multipart upload, at least
	// MinPartSize. It caps the largest file at 10,000 parts.
	PartSize int64
	// PartsInFlight is how many parts of one upload may be in memory at
	// once (being filled or being sent): memory per upload is at most
	// PartSize × PartsInFlight.
	PartsInFlight int
	// MoveMaxFiles and MoveMaxBytes bound a folder rename, which an object
	// store does by copying each object: larger folders are refused with
	// a clear error.
	MoveMaxFiles int
	MoveMaxBytes int64
	// OrphanAge is how old an unfinished multipart upload must be for the
	// sweep to abort it (one a crashed node left behind).
	OrphanAge time.Duration
	// Memory bounds the memory of this node's transfers (upload parts and
	// downloads' read-ahead), and MemoryPerAccount one account's share of
	// it (memBudget). Each is at least one upload's parts (PartSize ×
	// PartsInFlight); by default MemoryIn(ContainerMemory) and a quarter
	// of Memory (or one upload's, if more).
	Memory           int64
	MemoryPerAccount int64
	// ContainerMemory is the memory limit of the container (cgroup) the
	// node runs in, 0 for none. Memory's default is then at most half of
	// it, so that a node in a small container does not take on more
	// transfers than the container holds (MemoryIn).
	ContainerMemory int64
	// memoryDefaulted and perAccountDefaulted: Memory and
	// MemoryPerAccount are defaults, not the URL's.
	memoryDefaulted, perAccountDefaulted bool
	// MemoryWait is how long an upload with no part being sent waits for
	// memory before its write fails with storage.ErrBusy (DefaultMemoryWait;
	// negative: no wait).
	MemoryWait time.Duration
	// StallTimeout is how long a request to the store may move no data
	// before it is abandoned and retried (stallClient); DefaultStallTimeout.
	// Only Open's client has it: a client given to New is used as it is.
	StallTimeout time.Duration
}

func (c *Config) defaults() error {
	if c.Bucket == "" {
		return errors.New("s3: no bucket")
	}
	c.Prefix = strings.Trim(c.Prefix, "/")
	if strings.Contains(c.Prefix, "//") {
		return fmt.Errorf("s3: prefix %q has an empty element", c.Prefix)
	}
	for _, el := range strings.Split(c.Prefix, "/") {
		if el == "." || el == ".." {
			return fmt.Errorf("s3: prefix %q has a %q element", c.Prefix, el)
		}
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.PartSize < MinPartSize || c.PartSize > maxCopyPart {
		return fmt.Errorf("s3: part size %d is outside [5 MiB, 5 GiB]", c.PartSize)
	}
	if c.PartsInFlight == 0 {
		c.PartsInFlight = DefaultPartsInFlight
	}
	if c.PartsInFlight < 1 || c.PartsInFlight > 64 {
		return fmt.Errorf("s3: parts in flight %d is outside [1, 64]", c.PartsInFlight)
	}
	if c.MoveMaxFiles == 0 {
		c.MoveMaxFiles = DefaultMoveMaxFiles
	}
	if c.MoveMaxBytes == 0 {
		c.MoveMaxBytes = DefaultMoveMaxBytes
	}
	if c.OrphanAge == 0 {
		c.OrphanAge = DefaultOrphanAge
	}
	upload := c.PartSize * int64(c.PartsInFlight)
	if c.Memory == 0 {
		c.memoryDefaulted = true
		c.Memory = c.MemoryIn(c.ContainerMemory)
	}
	if c.MemoryPerAccount == 0 {
		c.perAccountDefaulted = true
		c.MemoryPerAccount = max(c.Memory/4, upload)
	}
	if c.MemoryWait == 0 {
		c.MemoryWait = DefaultMemoryWait
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	switch {
	case c.StallTimeout < 0:
		return fmt.Errorf("s3: stall timeout %v is negative", c.StallTimeout)
	case c.Memory < upload:
		return fmt.Errorf("s3: memory %d is less than one upload's parts (part size × parts in flight: %d)", c.Memory, upload)
	case c.MemoryPerAccount < upload || c.MemoryPerAccount > c.Memory:
		return fmt.Errorf("s3: memory per account %d is outside [one upload's parts (%d), memory (%d)]", c.MemoryPerAccount, upload, c.Memory)
	}
	return nil
}

// MemoryIn is the transfers' memory in a container of container bytes (0:
// no limit): Memory as the storage URL gives it, or else its default there,
// DefaultMemory but at most half the container, and at least two uploads'
// parts and the MemoryPerAccount given.
func (c *Config) MemoryIn(container int64) int64 {
	if c.Memory != 0 && !c.memoryDefaulted {
		return c.Memory
	}
	m := int64(DefaultMemory)
	if container > 0 {
		m = min(m, container/2)
	}
	perAccount := c.MemoryPerAccount
	if c.perAccountDefaulted {
		perAccount = 0 // the default share follows Memory
	}
	return max(m, 2*c.PartSize*int64(c.PartsInFlight), perAccount)
}

// ParseURL reads a storage URL:
//
//	s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=true|false
//	    &part_size=8MiB&parts_in_flight=4&move_max_files=1000
//	    &move_max_bytes=10GiB&orphan_age=24h&memory=1GiB
//	    &memory_per_account=256MiB&memory_wait=30s&stall_timeout=5m]
//
// Credentials are not part of it: they come from the standard AWS
// environment variables, shared config files or instance roles.
func ParseURL(raw string) (Config, error) {
	return ParseURLWithin(raw, 0)
}

// ParseURLWithin is ParseURL for a node whose container holds
// containerMemory bytes (0: no limit): without a memory parameter, the
// transfers' memory is then at most half of it (Config.ContainerMemory).
func ParseURLWithin(raw string, containerMemory int64) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("s3: storage URL: %w", err)
	}
	if u.Scheme != "s3" {
		return Config{}, fmt.Errorf("s3: storage URL %q: scheme must be s3://", raw)
	}
	if u.User != nil {
		return Config{}, errors.New("s3: storage URL: credentials do not belong in the URL; use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a shared config profile")
	}
	c := Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), ContainerMemory: containerMemory}
	q := u.Query()
	c.Endpoint = q.Get("endpoint")
	c.Region = q.Get("region")
	c.PathStyle = c.Endpoint != ""
	for key, vals := range q {
		v := vals[len(vals)-1]
		switch key {
		case "endpoint", "region":
		case "path_style":
			c.PathStyle, err = strconv.ParseBool(v)
		case "part_size":
			c.PartSize, err = parseBytes(v)
		case "parts_in_flight":
			c.PartsInFlight, err = strconv.Atoi(v)
		case "move_max_files":
			c.MoveMaxFiles, err = strconv.Atoi(v)
		case "move_max_bytes":
			c.MoveMaxBytes, err = parseBytes(v)
		case "orphan_age":
			c.OrphanAge, err = time.ParseDuration(v)
		case "memory":
			c.Memory, err = parseBytes(v)
		case "memory_per_account":
			c.MemoryPerAccount, err = parseBytes(v)
		case "memory_wait":
			if c.MemoryWait, err = time.ParseDuration(v); err == nil && c.MemoryWait == 0 {
				c.MemoryWait = -1 // "0s": no wait, not the default
			}
		case "stall_timeout":
			c.StallTimeout, err = time.ParseDuration(v)
		default:
			return Config{}, fmt.Errorf("s3: storage URL: unknown parameter %q", key)
		}
		if err != nil {
			return Config{}, fmt.Errorf("s3: storage URL: %s: %w", key, err)
		}
	}
	if err := c.defaults(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// parseBytes reads 8388608, 8MiB, 8M or 1GiB.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v * u.mult, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// Open connects to the store that c names, with credentials from the
// standard AWS sources (environment, shared config, instance role).
func Open(ctx context.Context, c Config) (*Store, error) {
	if err := c.defaults(); err != nil {
		return nil, err
	}
	opts := []func(*config.LoadOptions) error{config.WithHTTPClient(httpClient())}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	// Wrapped once loaded: the SDK sets a CA bundle from the environment
	// on its own client type only.
	awsCfg.HTTPClient = stallClient{next: awsCfg.HTTPClient, idle: c.StallTimeout}
	client := awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = c.PathStyle
	})
	return New(client, c)
}

// idleConns is how many idle connections to the store the client keeps for
// reuse. Every request goes to the one endpoint, and the busy moments come
// in bursts: each upload keeps parts_in_flight parts going and each
// download several ranged GETs (read.go). Go's default (the AWS SDK's, 10
// per host) closes all but 10 connections of a burst as it ends, so that
// the next burst opens them again, each with its TCP (and, on a real
// service, TLS) handshake. An idle connection costs some KiB of buffers and
// the client closes it after 90 s unused (the SDK's IdleConnTimeout).
const idleConns = 256

// httpClient is the SDK's HTTP client (proxy, timeouts, and CA bundles from
// the environment as the SDK sets them) keeping idleConns connections.
func httpClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns = idleConns
		tr.MaxIdleConnsPerHost = idleConns
	})
}
