package main

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	sftpclient "github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/internal/s3test"
	"github.com/skiffhq/skiff/internal/testkit"
)

// serve with --storage-url: the storage marker is an object, files uploaded
// over SFTP land under the account's prefix as objects (a multipart upload
// for the large one), and a start on another prefix of the bucket is
// refused as a storage without the marker.
func TestServeOnS3(t *testing.T) {
	srv := startS3ForServe(t)
	onS3 := func(prefix string) func(*ServeCmd) {
		return func(c *ServeCmd) { c.Storage.URL = srv.URL(prefix) }
	}
	metricsAddr := freeAddr(t)
	s, dl, dataDir := startDemo(t, onS3("deploy"), func(c *ServeCmd) { c.Metrics.Addr = metricsAddr })
	client := srv.Client()
	ctx := context.Background()
	if _, err := client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("deploy/" + storageMarkerFile)}); err != nil {
		t.Fatalf("no marker object: %v", err)
	}

	c := mustDialSFTP(t, s.sftp, dl.OwnerSFTPLogin, dl.OwnerPassword)
	data := make([]byte, 13<<20)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(data)
	f, err := c.Create("/My Files/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Mkdir("/My Files/empty"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("/My Files/big.bin", "/My Files/empty/moved.bin"); err != nil {
		t.Fatal(err)
	}
	// Times clients set are kept (in the database), and follow a rename.
	when := time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := c.Chtimes("/My Files/empty/moved.bin", when, when); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("/My Files/empty/moved.bin", "/My Files/empty/timed.bin"); err != nil {
		t.Fatal(err)
	}
	fi, err := c.Stat("/My Files/empty/timed.bin")
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(when) {
		t.Fatalf("time after Chtimes and a rename: %v; want %v", fi.ModTime(), when)
	}
	if err := c.Rename("/My Files/empty/timed.bin", "/My Files/empty/moved.bin"); err != nil {
		t.Fatal(err)
	}
	r, err := c.Open("/My Files/empty/moved.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v), want the %d uploaded", len(got), err, len(data))
	}
	// The transfers' memory budget: its limit (the default), and all of it
	// given back once the transfers ended (a GET ahead ends a moment after
	// the file's close).
	documented := documentedMetrics(t)
	for _, name := range []string{"skiff_s3_transfer_memory_bytes", "skiff_s3_transfer_memory_limit_bytes",
		"skiff_s3_uploads_refused_busy_total", "skiff_s3_reads_over_budget_total"} {
		if !documented[name] {
			t.Errorf("%s is served but not in docs/OPERATIONS.md's metrics", name)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mfs := scrape(t, metricsAddr)
		if got := value(mfs, "skiff_s3_transfer_memory_limit_bytes"); got != 1<<30 {
			t.Fatalf("skiff_s3_transfer_memory_limit_bytes = %v, want the default 1 GiB", got)
		}
		held := value(mfs, "skiff_s3_transfer_memory_bytes")
		if held == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("skiff_s3_transfer_memory_bytes = %v after every transfer ended", held)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var keys []string
	out, err := client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket), Prefix: aws.String("deploy/")})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	var moved, marker bool
	for _, k := range keys {
		moved = moved || strings.Contains(k, "/users/") && strings.HasSuffix(k, "/empty/moved.bin")
		marker = marker || strings.HasSuffix(k, "/empty/")
	}
	if !moved || !marker {
		t.Fatalf("keys:\n%s", strings.Join(keys, "\n"))
	}
	s.stop()

	// The same database on another prefix of the bucket: no marker there.
	cmd := testServeCmd(t, dataDir)
	onS3("elsewhere")(cmd)
	if err := serveFails(t, cmd); !strings.Contains(err.Error(), "no marker file") || !strings.Contains(err.Error(), "--storage-url") {
		t.Fatalf("start on an unmarked prefix: %v", err)
	}
	// Both settings at once: refused.
	cmd = testServeCmd(t, dataDir)
	onS3("deploy")(cmd)
	cmd.Storage.Dir = t.TempDir()
	if err := serveFails(t, cmd); !strings.Contains(err.Error(), "set one") {
		t.Fatalf("--storage-dir with --storage-url: %v", err)
	}
}

// Over the storage URL's memory budget an upload waits for memory, then
// fails with the server's reason (OpenSSH's sftp prints its own word for a
// write's status, "Failure"; clients built on pkg/sftp, such as rclone,
// show the reason); once the memory is given back the same upload goes
// through, and the metrics count the refusals.
func TestServeOnS3UploadOverTheMemoryBudget(t *testing.T) {
	s, dl, metricsAddr, c, held := serveOnS3HoldingTheMemory(t, "300ms")
	const reason = "the server has no memory free for this transfer now: try again later"
	refused, err := c.Create("/My Files/refused.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := refused.Write(make([]byte, 1<<20)); err == nil || !strings.Contains(err.Error(), reason) {
		t.Fatalf("write over the memory budget: %v; want %q", err, reason)
	}
	refused.Close()
	local := filepath.Join(t.TempDir(), "up.bin")
	if err := os.WriteFile(local, bytes.Repeat([]byte("budget "), 100000), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ := sftpRun(t, s.sftp, dl.OwnerSFTPLogin, "", dl.OwnerPassword, "put "+local+" up.bin\n")
	if !strings.Contains(out, `write remote "/My Files/up.bin": Failure`) {
		t.Fatalf("OpenSSH's put over the memory budget:\n%s", out)
	}
	for _, name := range []string{"refused.bin", "up.bin"} {
		if _, err := c.Stat("/My Files/" + name); err == nil {
			t.Errorf("the refused upload left %s", name)
		}
	}
	if got := value(scrape(t, metricsAddr), "skiff_s3_uploads_refused_busy_total"); got != 2 {
		t.Errorf("skiff_s3_uploads_refused_busy_total = %v, want 2", got)
	}

	// The held upload ends: the same put goes through.
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := sftpRun(t, s.sftp, dl.OwnerSFTPLogin, "", dl.OwnerPassword, "put "+local+" up.bin\n"); err != nil || strings.Contains(out, "Failure") {
		t.Fatalf("put once the memory was given back: %v\n%s", err, out)
	}
	if fi, err := c.Stat("/My Files/up.bin"); err != nil || fi.Size() != 700000 {
		t.Fatalf("the upload that went through: %v, %v", fi, err)
	}
}

// An upload waiting for memory whose client is gone gives up at once: its
// session ends and lets go of its connection and open files, rather than
// holding them until memory_wait ends (before: the 30 s here), and nothing
// of the upload is kept.
func TestServeOnS3LostClientStopsWaitingForMemory(t *testing.T) {
	s, dl, metricsAddr, c, held := serveOnS3HoldingTheMemory(t, "30s")

	// Another connection's upload waits for memory; then its client goes.
	client, err := ssh.Dial("tcp", s.sftp, &ssh.ClientConfig{User: dl.OwnerSFTPLogin, Auth: []ssh.AuthMethod{ssh.Password(dl.OwnerPassword)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sc, err := sftpclient.NewClient(client)
	if err != nil {
		t.Fatal(err)
	}
	waiting, err := sc.Create("/My Files/waiting.bin")
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := waiting.Write(make([]byte, 1<<20))
		wrote <- err
	}()
	sessions := func() float64 { return value(scrape(t, metricsAddr), "skiff_sftp_active_sessions") }
	if n := sessions(); n != 2 {
		t.Fatalf("skiff_sftp_active_sessions = %v with both uploads open, want 2", n)
	}
	time.Sleep(300 * time.Millisecond) // the write reaches the server and waits
	select {
	case err := <-wrote:
		t.Fatalf("the write over the memory budget did not wait: %v", err)
	default:
	}
	client.Close()
	<-wrote
	deadline := time.Now().Add(5 * time.Second)
	for sessions() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the session of a client gone while its upload waited for memory did not end within 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.Stat("/My Files/waiting.bin"); err == nil {
		t.Error("the upload of the client that went was kept")
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
}

// serveOnS3HoldingTheMemory starts skiff serve on S3 with room for one
// upload of one 5 MiB part, on the node and per account (memory_wait:
// wait), and opens an upload that holds it: the demo owner's connection c,
// its file held with 1 MiB written.
func serveOnS3HoldingTheMemory(t *testing.T, wait string) (s *server, dl demoLogins, metricsAddr string, c *sftpConn, held *sftpclient.File) {
	t.Helper()
	srv := startS3ForServe(t)
	url := srv.URL("deploy") + "&part_size=5MiB&parts_in_flight=1&memory=5MiB&memory_per_account=5MiB&memory_wait=" + wait
	metricsAddr = freeAddr(t)
	s, dl, _ = startDemo(t, func(c *ServeCmd) { c.Storage.URL = url; c.Metrics.Addr = metricsAddr })
	c = mustDialSFTP(t, s.sftp, dl.OwnerSFTPLogin, dl.OwnerPassword)
	held, err := c.Create("/My Files/held.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := held.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	return s, dl, metricsAddr, c, held
}

// startS3ForServe starts an S3 server and gives the test's environment its
// credentials, and only its (SetEnv), for skiff serve's --storage-url.
func startS3ForServe(t *testing.T) *s3test.Server {
	t.Helper()
	srv := s3test.Start(t)
	srv.SetEnv(t)
	return srv
}

// While the store stops answering, SFTP clients get the reason rather than
// a hang or a generic failure: a download and an upload fail once their
// requests have moved no data for stall_timeout (and the SDK's retries
// have stalled too), with "the storage is not answering now: try again
// later", on a session that stays usable. The failed upload is not stored,
// and once the store answers again the same session reads and writes.
func TestServeOnS3StoreNotAnswering(t *testing.T) {
	srv := startS3ForServe(t)
	proxy := s3test.StartStallingProxy(t, srv)
	url := strings.Replace(srv.URL("deploy"), "endpoint="+srv.Endpoint, "endpoint="+proxy.Endpoint(), 1) + "&stall_timeout=300ms"
	s, dl, _ := startDemo(t, func(c *ServeCmd) { c.Storage.URL = url })
	// Run before the server stops (cleanups run last first): a request held
	// by the proxy would hold the server's shutdown.
	t.Cleanup(proxy.Unstall)
	c := mustDialSFTP(t, s.sftp, dl.OwnerSFTPLogin, dl.OwnerPassword)
	data := bytes.Repeat([]byte("stored before the outage "), 4000)
	put := func(name string, data []byte) error {
		f, err := c.Create("/My Files/" + name)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	get := func(name string) ([]byte, error) {
		f, err := c.Open("/My Files/" + name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(f)
	}
	if err := put("before.bin", data); err != nil {
		t.Fatal(err)
	}

	const reason = "the storage is not answering now: try again later"
	// Each failure takes about three stall timeouts; 30 s is for a hang.
	within := func(what string, op func() error) error {
		return testkit.Within(t, 30*time.Second, what+" while the store does not answer", op)
	}
	proxy.Stall()
	if err := within("a download", func() error { _, err := get("before.bin"); return err }); err == nil || !strings.Contains(err.Error(), reason) {
		t.Fatalf("download while the store does not answer: %v; want %q", err, reason)
	}
	if err := within("an upload", func() error { return put("during.bin", []byte("lost to the outage")) }); err == nil || !strings.Contains(err.Error(), reason) {
		t.Fatalf("upload while the store does not answer: %v; want %q", err, reason)
	}
	out, err := srv.Client().ListObjectsV2(context.Background(), &awss3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket), Prefix: aws.String("deploy/")})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		if strings.HasSuffix(aws.ToString(o.Key), "/during.bin") {
			t.Errorf("the failed upload is stored: %s", aws.ToString(o.Key))
		}
	}

	proxy.Unstall()
	if got, err := get("before.bin"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("download once the store answers: %d bytes, %v; want the %d stored", len(got), err, len(data))
	}
	if err := put("after.bin", data); err != nil {
		t.Fatalf("upload once the store answers: %v", err)
	}
	if got, err := get("after.bin"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the upload after the outage read back: %d bytes, %v", len(got), err)
	}
}

// A start on S3 that cannot work says why, in one line, and exits with the
// code the database's failures use: 78 for a bucket that does not exist or
// a certificate not trusted (a setting to change), 77 for credentials the
// store refuses or none at all, 69 while the store cannot be reached (the
// one case a restart may cure).
func TestServeOnS3StartFailures(t *testing.T) {
	srv := s3test.StartTLS(t)
	srv.SetEnv(t)
	start := func(url string) error {
		cmd := testServeCmd(t, newDataDir(t))
		cmd.DatabaseURL, cmd.Runtime.AllowUnsafeRole = pgtest.NewDB(t), true
		cmd.Mail.SMTPURL = "file://" + t.TempDir()
		cmd.Storage.URL = url
		return serveFails(t, cmd)
	}
	check := func(what string, err error, code int, wants ...string) {
		t.Helper()
		if got := exitCode(err); got != code {
			t.Errorf("%s: exit code %d, want %d: %v", what, got, code, err)
		}
		for _, w := range append(wants, "--storage-url") {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", what, err, w)
			}
		}
	}
	url := srv.URL("deploy")

	check("a bucket the store does not have",
		start(strings.Replace(url, "s3://"+srv.Bucket+"/", "s3://no-such-bucket/", 1)),
		exitConfig, `no bucket "no-such-bucket"`, "NoSuchBucket", "create it")
	check("the store cannot be reached",
		start(strings.Replace(url, "endpoint="+srv.Endpoint, "endpoint=http://127.0.0.1:1", 1)),
		exitUnavailable, "cannot reach", "connection refused", "is the store running")

	t.Setenv("AWS_CA_BUNDLE", "")
	check("a certificate not trusted", start(url), exitConfig, "certificate is not trusted", "unknown authority", "AWS_CA_BUNDLE")
	t.Setenv("AWS_CA_BUNDLE", srv.CAFile)

	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
	check("a wrong secret key", start(url), exitNoPerm, "refused to list", "SignatureDoesNotMatch", "AWS_SECRET_ACCESS_KEY")

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	check("no credentials", start(url), exitNoPerm, "found no credentials", "AWS_ACCESS_KEY_ID")
}
