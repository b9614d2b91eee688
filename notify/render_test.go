package notify

import (
	"encoding/json"
	"html"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/tenant/outbox"
)

var (
	t0 = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	t1 = time.Date(2026, 3, 16, 9, 30, 0, 0, time.UTC)
)

// samples has complete data for every kind, and what each rendering must show.
var samples = map[outbox.EmailKind]struct {
	data outbox.EmailData
	want []string // in the text and the HTML body
}{
	outbox.EmailSFTPEnabled: {outbox.SFTPEnabledData{
		UserName: "Ada Lovelace", AccountName: "Analytical Engines", Host: "sftp.example.com", Port: 2222,
		Login: "ae-ada-7k2q", CustomLogin: "ada", DedicatedHost: "203.0.113.7", Jailed: true,
		HostKeys: []outbox.HostKeyFingerprint{
			{Algorithm: "ssh-ed25519", Fingerprint: "SHA256:7tZc3vJ4m5l0cQyq1oV3t0E+2l6cF3bWqgW4yZs4h2E"},
			{Algorithm: "rsa-sha2-512", Fingerprint: "SHA256:Qm0f6g9Kx2r0s8vYh4c3WcQ1mGqv8yM2b1zQm7T0a1k"},
		},
	}, []string{"sftp.example.com", "2222", "ae-ada-7k2q", "ada", "203.0.113.7", "ssh-ed25519",
		"SHA256:7tZc3vJ4m5l0cQyq1oV3t0E+2l6cF3bWqgW4yZs4h2E", "rsa-sha2-512", "account password or with one of your SSH keys",
		"You start in /Projects Shared With Me"}},
	outbox.EmailSSHKeyAdded: {outbox.SSHKeyAddedData{
		UserName: "Ada Lovelace", AccountName: "Analytical Engines", Title: "Laptop", Algorithm: "ssh-ed25519",
		Bits: 256, Fingerprint: "SHA256:abc123", AddedAt: t0, AddedBy: "Charles Babbage",
	}, []string{"Laptop", "ssh-ed25519", "256 bits", "SHA256:abc123", "Monday 2 March 2026 at 09:30 UTC",
		"Charles Babbage", "contact your administrator"}},
	outbox.EmailModuleTrialStarted: {outbox.ModuleTrialStartedData{
		OwnerName: "Charles Babbage", AccountName: "Analytical Engines", StartedAt: t0, EndsAt: t1, Licences: 5,
		OwnerSFTP: outbox.OwnerSFTP{OwnSFTP: &outbox.SFTPEnabledData{UserName: "Charles Babbage", AccountName: "Analytical Engines",
			Host: "sftp.example.com", Port: 2222, Login: "ae-charles-3x9p",
			HostKeys: []outbox.HostKeyFingerprint{{Algorithm: "ssh-ed25519", Fingerprint: "SHA256:7tZc3vJ4m5l0cQyq1oV3t0E+2l6cF3bWqgW4yZs4h2E"}}}},
	}, []string{"Analytical Engines", "Monday 2 March 2026", "Monday 16 March 2026 at 09:30 UTC", "5 SFTP user licences",
		"SFTP is turned on for you too", "sftp.example.com", "2222", "ae-charles-3x9p", "Acme Files account password",
		"SHA256:7tZc3vJ4m5l0cQyq1oV3t0E+2l6cF3bWqgW4yZs4h2E"}},
	outbox.EmailModuleActivated: {outbox.ModuleActivatedData{
		OwnerName: "Charles Babbage", AccountName: "Analytical Engines", ActivatedAt: t0, Licences: 1,
		OwnerSFTP: outbox.OwnerSFTP{NoLicenceForOwner: true},
	}, []string{"Analytical Engines", "Monday 2 March 2026", "1 SFTP user licence.", "no licence was free",
		"ask support for more licences"}},
	outbox.EmailModuleTrialEnding: {outbox.ModuleTrialEndingData{
		OwnerName: "Charles Babbage", AccountName: "Analytical Engines", EndsAt: t1, Licences: 5, LicencesUsed: 3,
	}, []string{"Monday 16 March 2026 at 09:30 UTC", "3 of your 5 SFTP user licences"}},
	outbox.EmailInvitation: {outbox.InvitationData{
		InviteeName: "Mary Somerville", AccountName: "Analytical Engines", InvitedBy: "Charles Babbage",
		Token: "tok/en+1", ExpiresAt: t1,
	}, []string{"Mary Somerville", "Charles Babbage", "https://app.example.com/base/accept-invitation?token=tok%2Fen%2B1",
		"Monday 16 March 2026 at 09:30 UTC"}},
	outbox.EmailPasswordReset: {outbox.PasswordResetData{
		UserName: "Ada Lovelace", Token: "reset-token", ExpiresAt: t1,
	}, []string{"https://app.example.com/base/reset-password?token=reset-token", "Monday 16 March 2026 at 09:30 UTC",
		"your password stays as it is"}},
	outbox.EmailDedicatedIPProvisioned: {outbox.DedicatedIPProvisionedData{
		UserName: "Charles Babbage", AccountName: "Analytical Engines", RequestedAt: t0, Address: "203.0.113.7",
		ProvisionedAt: t1, HostKeys: []outbox.HostKeyFingerprint{{Algorithm: "ssh-ed25519", Fingerprint: "SHA256:acctkey"}},
	}, []string{"203.0.113.7", "Monday 2 March 2026", "Monday 16 March 2026 at 09:30 UTC", "ssh-ed25519", "SHA256:acctkey",
		"custom SFTP logins"}},
	outbox.EmailDedicatedIPDeclined: {outbox.DedicatedIPDeclinedData{
		UserName: "Charles Babbage", AccountName: "Analytical Engines", RequestedAt: t0, Reason: "The pool is empty until May.",
	}, []string{"Analytical Engines", "Monday 2 March 2026", "The pool is empty until May.", "new request"}},
	outbox.EmailEmailChanged: {outbox.EmailChangedData{
		UserName: "Ada Lovelace", AccountName: "Analytical Engines", OldEmail: "ada@example.com", NewEmail: "ada@elsewhere.example",
		ChangedAt: t0, ChangedBy: "Ada Lovelace",
	}, []string{"ada@example.com", "ada@elsewhere.example", "Monday 2 March 2026 at 09:30 UTC", "contact your administrator"}},
	outbox.EmailSSHKeyExpiring: {outbox.SSHKeyExpiryData{
		UserName: "Ada Lovelace", AccountName: "Analytical Engines", Title: "Laptop", Fingerprint: "SHA256:abc123", ExpiresAt: t1,
	}, []string{"Laptop", "SHA256:abc123", "Monday 16 March 2026 at 09:30 UTC", "extend its expiry date"}},
	outbox.EmailSSHKeyExpired: {outbox.SSHKeyExpiryData{
		UserName: "Ada Lovelace", AccountName: "Analytical Engines", Title: "Laptop", Fingerprint: "SHA256:abc123", ExpiresAt: t1, Expired: true,
	}, []string{"Laptop", "SHA256:abc123", "Monday 16 March 2026 at 09:30 UTC", "no longer logs in"}},
	outbox.EmailStorageQuota: {outbox.StorageQuotaData{
		OwnerName: "Ada Lovelace", AccountName: "Analytical Engines", Percent: 80, Used: "8.0 GiB", Quota: "10.0 GiB",
	}, []string{"8.0 GiB", "10.0 GiB", "80", "larger quota"}},
	outbox.EmailFolderUploadDigest: {outbox.FolderUploadDigestData{
		UserName: "Ada Lovelace", AccountName: "Analytical Engines", FolderName: "Q3 plans", Since: t0, Until: t1, Count: 3,
		Uploads: []outbox.DigestUpload{{At: t0, By: "Charles Babbage", Path: "/drafts/engine.pdf", Size: "1.5 MiB"},
			{At: t1, By: "Mary Somerville", Path: "/notes.txt", Size: "12 B"}}, More: 1,
	}, []string{"Q3 plans", "/drafts/engine.pdf", "1.5 MiB", "Charles Babbage", "Mary Somerville", "/notes.txt",
		"Monday 16 March 2026 at 09:30 UTC", "and 1 more", "turned on upload notifications"}},
}

func newTestRenderer(t *testing.T) *Renderer {
	t.Helper()
	r, err := NewRenderer("https://app.example.com/base/", "Acme Files")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRenderEveryKind(t *testing.T) {
	r := newTestRenderer(t)
	for _, kind := range outbox.EmailKinds() {
		s, ok := samples[kind]
		if !ok {
			t.Errorf("no sample for %s", kind)
			continue
		}
		if s.data.EmailKind() != kind {
			t.Fatalf("sample for %s is a %s", kind, s.data.EmailKind())
		}
		got, err := r.Render(kind, mustJSON(t, s.data))
		if err != nil {
			t.Errorf("Render(%s): %v", kind, err)
			continue
		}
		if got.Subject == "" || strings.ContainsAny(got.Subject, "\r\n") {
			t.Errorf("%s: subject %q", kind, got.Subject)
		}
		for _, w := range s.want {
			if !strings.Contains(got.Text, w) {
				t.Errorf("%s: text lacks %q:\n%s", kind, w, got.Text)
			}
			if !strings.Contains(html.UnescapeString(got.HTML), w) {
				t.Errorf("%s: HTML lacks %q:\n%s", kind, w, got.HTML)
			}
		}
		for _, body := range []string{got.Text, got.HTML} {
			if strings.Contains(strings.ToLower(body), "password:") || strings.Contains(body, "<no value>") {
				t.Errorf("%s: body shows a password field or a missing value:\n%s", kind, body)
			}
		}
	}
}

func TestRenderSubjects(t *testing.T) {
	r := newTestRenderer(t)
	want := map[outbox.EmailKind]string{
		outbox.EmailSFTPEnabled:            "Your SFTP access to Analytical Engines",
		outbox.EmailSSHKeyAdded:            "A new SSH key was added to your SFTP access",
		outbox.EmailModuleTrialStarted:     "Your SFTP trial for Analytical Engines has started",
		outbox.EmailModuleActivated:        "The SFTP module is active for Analytical Engines",
		outbox.EmailModuleTrialEnding:      "Your SFTP trial for Analytical Engines ends on Monday 16 March 2026",
		outbox.EmailInvitation:             "Charles Babbage invited you to Analytical Engines on Acme Files",
		outbox.EmailPasswordReset:          "Reset your Acme Files password",
		outbox.EmailDedicatedIPProvisioned: "Your dedicated IP for Analytical Engines is ready: 203.0.113.7",
		outbox.EmailDedicatedIPDeclined:    "Your dedicated IP request for Analytical Engines was declined",
		outbox.EmailEmailChanged:           "The email of your Analytical Engines login was changed",
		outbox.EmailSSHKeyExpiring:         "Your SSH key expires on Monday 16 March 2026",
		outbox.EmailSSHKeyExpired:          "Your SSH key has expired",
		outbox.EmailStorageQuota:           "Analytical Engines has used 80 % of its storage",
	}
	for kind, subject := range want {
		got, err := r.Render(kind, mustJSON(t, samples[kind].data))
		if err != nil {
			t.Fatal(err)
		}
		if got.Subject != subject {
			t.Errorf("%s: subject %q, want %q", kind, got.Subject, subject)
		}
	}
}

// Every field of every kind's data is used, and leaving one out is an error
// rather than an email with a gap.
func TestRenderMissingDataIsAnError(t *testing.T) {
	r := newTestRenderer(t)
	for _, kind := range outbox.EmailKinds() {
		var full map[string]any
		if err := json.Unmarshal(mustJSON(t, samples[kind].data), &full); err != nil {
			t.Fatal(err)
		}
		for key := range full {
			partial := map[string]any{}
			for k, v := range full {
				if k != key {
					partial[k] = v
				}
			}
			if _, err := r.Render(kind, mustJSON(t, partial)); err == nil {
				t.Errorf("%s without %s rendered without error", kind, key)
			}
		}
		if _, err := r.Render(kind, []byte(`{}`)); err == nil {
			t.Errorf("%s with no data rendered without error", kind)
		}
	}
	if _, err := r.Render(outbox.EmailSSHKeyAdded, []byte(`{"AddedAt": "yesterday"}`)); err == nil {
		t.Error("a bad time rendered without error")
	}
	if _, err := r.Render("birthday", []byte(`{}`)); err == nil {
		t.Error("an unknown kind rendered without error")
	}
}

func TestRenderEscapesHTML(t *testing.T) {
	r := newTestRenderer(t)
	d := samples[outbox.EmailSSHKeyAdded].data.(outbox.SSHKeyAddedData)
	d.Title = `<img src=x onerror=alert(1)>`
	d.AddedBy = "Eve\r\nBcc: victim@example.com"
	got, err := r.Render(outbox.EmailSSHKeyAdded, mustJSON(t, d))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got.HTML, "<img") || !strings.Contains(got.HTML, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Errorf("title not escaped in HTML:\n%s", got.HTML)
	}
	if !strings.Contains(got.Text, "<img src=x onerror=alert(1)>") {
		t.Errorf("text body should show the title as typed:\n%s", got.Text)
	}

	// Data in a subject cannot start a new header line.
	inv := samples[outbox.EmailInvitation].data.(outbox.InvitationData)
	inv.InvitedBy = "Eve\r\nBcc: victim@example.com"
	got, err = r.Render(outbox.EmailInvitation, mustJSON(t, inv))
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(got.Subject, "\r\n") {
		t.Errorf("subject %q spans lines", got.Subject)
	}
}

func TestNewRendererChecksPublicURL(t *testing.T) {
	for _, u := range []string{"", "app.example.com", "ftp://app.example.com", "https://", "/relative"} {
		if _, err := NewRenderer(u, "Acme"); err == nil {
			t.Errorf("NewRenderer(%q) accepted", u)
		}
	}
	if _, err := NewRenderer("http://localhost:8080", " "); err == nil {
		t.Error("an empty product name was accepted")
	}
}

func TestRenderSFTPEnabledWithoutExtras(t *testing.T) {
	d := samples[outbox.EmailSFTPEnabled].data.(outbox.SFTPEnabledData)
	d.CustomLogin, d.DedicatedHost, d.HostKeys, d.Jailed = "", "", nil, false
	got, err := newTestRenderer(t).Render(outbox.EmailSFTPEnabled, mustJSON(t, d))
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{got.Text, html.UnescapeString(got.HTML)} {
		if strings.Contains(body, "also log in as") || strings.Contains(body, "SHA256:") || strings.Contains(body, "Projects Shared") {
			t.Errorf("mentions a custom login or host keys it does not have:\n%s", body)
		}
		if !strings.Contains(body, "ask your administrator to confirm it") || !strings.Contains(body, "ae-ada-7k2q") {
			t.Errorf("lacks the login or the advice on checking the host key:\n%s", body)
		}
	}
}

// User-supplied names in plain-text bodies come in quotes, so a name that
// reads like an instruction is plainly a name, not the email's own words.
func TestRenderQuotesNamesInText(t *testing.T) {
	r := newTestRenderer(t)
	d := outbox.SSHKeyAddedData{
		UserName: `Ada. URGENT: your access is locked, call 555-0100 "now"`, AccountName: "Analytical Engines",
		Title: "Laptop", Algorithm: "ssh-ed25519", Bits: 256, Fingerprint: "SHA256:abc123", AddedAt: t0, AddedBy: "IT desk",
	}
	got, err := r.Render(outbox.EmailSSHKeyAdded, mustJSON(t, d))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`Hello "Ada. URGENT: your access is locked, call 555-0100 \"now\"",`, `"Analytical Engines"`,
		`Title:        "Laptop"`, `by "IT desk"`} {
		if !strings.Contains(got.Text, want) {
			t.Errorf("text body lacks %s:\n%s", want, got.Text)
		}
	}
}
