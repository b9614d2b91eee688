// Package s3test starts a real S3 server for tests: versitygw
// (github.com/versity/versitygw, Apache-2.0), an S3 gateway serving a POSIX
// directory, on a loopback port over a temporary directory.
//
//	srv := s3test.Start(t)          // skips t if the server cannot be had
//	client := srv.Client()          // an *s3.Client for srv.Bucket
//
// Tests that only need a bucket of their own take one of a server their
// binary shares (Shared; TestMain calls StopShared), which saves starting
// a server per test.
//
// The binary is, in this order: $SKIFF_VERSITYGW if set, versitygw on PATH,
// or built once from the Go module proxy (go install …@Version) into the
// user's cache directory (skiff-test/versitygw-<Version>/), where later runs
// find it. Building takes a few minutes on a small machine; .ci/run builds it
// before the tests (go test -run TestServer ./internal/s3test). If it cannot
// be built, Start skips the test and says why.
//
// The client is configured explicitly (endpoint, static credentials,
// path-style addressing, plain HTTP) and reads nothing from the environment,
// so a machine's AWS_* variables or CA bundles cannot change what it talks
// to.
package s3test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Version is the versitygw release the tests build and run.
const Version = "v1.8.0"

// EnvBinary names the variable that points at a versitygw binary to use
// instead of building one.
const EnvBinary = "SKIFF_VERSITYGW"

const (
	modulePath = "github.com/versity/versitygw/cmd/versitygw"
	// buildTimeout bounds building the binary (downloading its modules
	// included); it is slow on a loaded two-core machine.
	buildTimeout = 15 * time.Minute
	startTimeout = 30 * time.Second
	// Region is the region the server and its clients use.
	Region = "us-east-1"
)

// Server is a running versitygw with one empty bucket.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	Region    string
	AccessKey string
	SecretKey string
	Bucket    string
	Dir       string // the directory the server keeps its buckets in
	// CAFile is, for a server on HTTPS, the PEM file of the certificate
	// that signed its own (and of that alone); "" on plain HTTP.
	CAFile string

	roots    *x509.CertPool // CAFile's authority, for Client; nil on plain HTTP
	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	waitErr  error         // its exit status, once done is closed
	stopOnce sync.Once
}

// Start starts a server for t on a loopback port over a temporary
// directory, with one bucket, and stops it when t ends. It skips t if no
// binary can be found or built.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Skipf("s3test: no S3 server (versitygw %s): %v", Version, err)
	}
	return StartIn(t, bin, t.TempDir())
}

// StartIn is Start with a given binary and data directory (e.g. on tmpfs,
// for benchmarks). It fails t if the server does not start.
func StartIn(t testing.TB, bin, dir string) *Server {
	t.Helper()
	srv, err := Launch(bin, dir)
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	t.Cleanup(srv.stop)
	return srv
}

// StartTLS is Start with the server on HTTPS, its certificate signed by a
// certificate authority of its own (Server.CAFile), as a service with a
// private CA is reached.
func StartTLS(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Skipf("s3test: no S3 server (versitygw %s): %v", Version, err)
	}
	srv, err := launch(bin, t.TempDir(), true)
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	t.Cleanup(srv.stop)
	return srv
}

// Launch starts a server outside a test (the benchmarks); the caller
// stops it with Stop.
func Launch(bin, dir string) (*Server, error) {
	return launch(bin, dir, false)
}

// LaunchTLS is Launch with the server on HTTPS, as StartTLS.
func LaunchTLS(bin, dir string) (*Server, error) {
	return launch(bin, dir, true)
}

func launch(bin, dir string, tls bool) (*Server, error) {
	var lastErr error
	for range 3 { // a free port can be taken between probing and listening
		srv, err := start(bin, dir, tls)
		if err == nil {
			return srv, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("start versitygw: %w", lastErr)
}

func start(bin, dir string, tls bool) (*Server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	srv := &Server{
		Endpoint:  "http://" + addr,
		Region:    Region,
		AccessKey: "skifftest" + randomHex(4),
		SecretKey: randomHex(16),
		Bucket:    "skiff-" + randomHex(6),
		Dir:       dir,
	}
	// --keep-alive: versitygw closes the connection after every response
	// unless told otherwise, which no S3 service does; every request would
	// then pay a new connection, and tests and benchmarks would measure
	// that instead of the client's requests.
	args := []string{"--access", srv.AccessKey, "--secret", srv.SecretKey,
		"--region", srv.Region, "--port", addr, "--quiet", "--keep-alive"}
	if tls {
		files, ca, err := writeCertificates(dir)
		if err != nil {
			return nil, err
		}
		srv.Endpoint, srv.CAFile = "https://"+addr, files.ca
		srv.roots = x509.NewCertPool()
		srv.roots.AddCert(ca)
		args = append(args, "--cert", files.cert, "--key", files.key)
	}
	cmd := exec.Command(bin, append(args, "posix", dir)...)
	// Nothing from the caller's environment: the server takes its whole
	// configuration from the flags above.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	srv.cmd = cmd
	srv.done = make(chan struct{})
	go func() { srv.waitErr = cmd.Wait(); close(srv.done) }()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := srv.Client()
	for {
		_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(srv.Bucket)})
		if err == nil {
			break
		}
		select {
		case <-srv.done:
			return nil, fmt.Errorf("versitygw exited (%v): %s", srv.waitErr, out.String())
		case <-ctx.Done():
			srv.stop()
			return nil, fmt.Errorf("no answer on %s within %v: %v: %s", addr, startTimeout, err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return srv, nil
}

// Client returns a client of the server, configured only from srv.
func (srv *Server) Client() *s3.Client {
	return s3.New(srv.Options())
}

// Options are the client options Client uses, for callers that adjust
// them (retries, HTTP client).
func (srv *Server) Options() s3.Options {
	return s3.Options{
		BaseEndpoint: aws.String(srv.Endpoint),
		Region:       srv.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(srv.AccessKey, srv.SecretKey, ""),
		UsePathStyle: true,
		HTTPClient:   &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, TLSClientConfig: srv.tlsConfig()}},
	}
}

// LoggedClient is Client with its requests recorded in the log returned.
func (srv *Server) LoggedClient() (*s3.Client, *RequestLog) {
	opts := srv.Options()
	log := &RequestLog{rt: opts.HTTPClient.(*http.Client).Transport}
	opts.HTTPClient = &http.Client{Transport: log}
	return s3.New(opts), log
}

// RequestLog records the requests of a LoggedClient, as "METHOD path?query"
// (the path is /bucket/key).
type RequestLog struct {
	rt   http.RoundTripper
	mu   sync.Mutex
	seen []string

	gather   int           // requests still to hold (Gather)
	all      chan struct{} // closed when the last of them arrives
	wait     time.Duration
	gathered bool
}

// RoundTrip implements http.RoundTripper.
func (l *RequestLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.seen = append(l.seen, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	var all chan struct{}
	if l.gather > 0 {
		all = l.all
		if l.gather--; l.gather == 0 {
			l.gathered = true
			close(all)
		}
	}
	wait := l.wait
	l.mu.Unlock()
	if all != nil {
		t := time.NewTimer(wait)
		select {
		case <-all:
		case <-t.C: // they come one after the other: hold no more
			l.mu.Lock()
			if l.all == all && !l.gathered {
				l.gather = 0
			}
			l.mu.Unlock()
		}
		t.Stop()
	}
	return l.rt.RoundTrip(r)
}

// Gather holds each of the next n requests until all n have been made,
// or for at most wait: whether requests are made at once, rather than
// each after the answer to the last, shows in Gathered.
func (l *RequestLog) Gather(n int, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gather, l.all, l.wait, l.gathered = n, make(chan struct{}), wait, false
}

// Gathered reports whether the n requests of the last Gather were all
// made while the first was held.
func (l *RequestLog) Gathered() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gathered
}

// CloseIdleConnections closes the idle connections of the transport logged
// (s3.Store.Close asks its client's to).
func (l *RequestLog) CloseIdleConnections() {
	if c, ok := l.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Take returns the requests made since the last Take.
func (l *RequestLog) Take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := l.seen
	l.seen = nil
	return seen
}

// tlsConfig trusts srv's certificate authority alone, or is nil on plain
// HTTP.
func (srv *Server) tlsConfig() *tls.Config {
	if srv.roots == nil {
		return nil
	}
	return &tls.Config{RootCAs: srv.roots}
}

// URL is the --storage-url that points Skiff at srv's bucket under prefix
// (credentials are in srv.Env).
func (srv *Server) URL(prefix string) string {
	return "s3://" + srv.Bucket + "/" + strings.Trim(prefix, "/") +
		"?endpoint=" + srv.Endpoint + "&region=" + srv.Region + "&path_style=true"
}

// Env returns the standard AWS variables that give srv's credentials (and,
// on HTTPS, its certificate authority), for a child process (skiff serve,
// rclone) started with --storage-url.
func (srv *Server) Env() []string {
	env := []string{
		"AWS_ACCESS_KEY_ID=" + srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + srv.SecretKey,
		"AWS_REGION=" + srv.Region,
	}
	if srv.CAFile != "" {
		env = append(env, "AWS_CA_BUNDLE="+srv.CAFile)
	}
	return env
}

// SetEnv gives the test's process srv's credentials and certificate
// authority (Env) through the standard AWS variables, for code that reads
// them (skiff serve in the test process, s3.Open), and keeps the machine's
// own out: its AWS files, its instance role and, for a plain HTTP server,
// its AWS_CA_BUNDLE.
func (srv *Server) SetEnv(t testing.TB) {
	t.Helper()
	t.Setenv("AWS_CA_BUNDLE", "")
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// Stop stops the server now (Start also stops it when the test ends). The
// data directory stays. On a bucket of the shared server it does nothing.
func (srv *Server) Stop() { srv.stop() }

func (srv *Server) stop() {
	if srv.cmd == nil { // a bucket of the shared server (Shared)
		return
	}
	srv.stopOnce.Do(func() {
		_ = syscall.Kill(-srv.cmd.Process.Pid, syscall.SIGKILL)
		<-srv.done
	})
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the path of a versitygw binary, building it on first use
// (see the package doc).
func Binary() (string, error) {
	binOnce.Do(func() { binPath, binErr = findOrBuild() })
	return binPath, binErr
}

func findOrBuild() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("$%s: %w", EnvBinary, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory to build versitygw into: %w", err)
	}
	dir := filepath.Join(cache, "skiff-test", "versitygw-"+Version)
	bin := filepath.Join(dir, "versitygw")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Test binaries of several packages run at once: one builds, the
	// others wait on the lock and then find the binary.
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("go is not on PATH to build it")
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "install", modulePath+"@"+Version)
	// Outside this module, so its go.mod plays no part; GOFLAGS could
	// carry -mod=vendor or the like from the caller.
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go install %s@%s: %v: %s", modulePath, Version, err, lastLines(string(out), 5))
	}
	if err := os.Rename(filepath.Join(tmp, "versitygw"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// tlsFiles are the PEM files of a server on HTTPS.
type tlsFiles struct{ ca, cert, key string }

// writeCertificates writes, into dir, a certificate authority (ca.pem)
// and a certificate for 127.0.0.1 and localhost that it signed, with its
// key (server.pem, server-key.pem), and returns the files and the
// authority. The server sends its certificate with the CA's after it;
// clients trust ca.pem alone.
func writeCertificates(dir string) (tlsFiles, *x509.Certificate, error) {
	dir = filepath.Join(dir, "tls")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tlsFiles{}, nil, err
	}
	now := time.Now()
	valid := func(c *x509.Certificate) *x509.Certificate {
		c.NotBefore, c.NotAfter = now.Add(-time.Hour), now.Add(24*time.Hour)
		return c
	}
	ca, caKey, err := issue(valid(&x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "s3test CA"},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}), nil, nil)
	if err != nil {
		return tlsFiles{}, nil, err
	}
	cert, key, err := issue(valid(&x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}), ca, caKey)
	if err != nil {
		return tlsFiles{}, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tlsFiles{}, nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	f := tlsFiles{ca: filepath.Join(dir, "ca.pem"), cert: filepath.Join(dir, "server.pem"), key: filepath.Join(dir, "server-key.pem")}
	for name, data := range map[string][]byte{
		f.ca:   caPEM,
		f.cert: append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), caPEM...),
		f.key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return tlsFiles{}, nil, err
		}
	}
	return f, ca, nil
}

// issue makes a P-256 key and a certificate from tmpl for it, signed by
// parent's key, or by its own when parent is nil.
func issue(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}
