package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/skiffhq/skiff/"

// allowed lists, for every package of the module, the module's packages it
// may import (besides the standard library and third-party modules). It is
// docs/ARCHITECTURE.md's import rule as data: cmd → transports (graph, sftp,
// notify) → the domain's rooms → policy, storage → the tenant kernel →
// nothing of ours. A package missing here fails the test, so a new package
// gets a place in the rule (and in the doc) before it gets imports.
var allowed = map[string][]string{
	// The bottom: no imports of ours.
	"migrations":        nil,
	"storage":           nil,
	"tenant":            nil, // the kernel: store, scoping, errors, principals
	"internal/pglisten": nil,
	"internal/pgserver": nil,
	"internal/testkit":  nil,
	"internal/sqlcount": nil,
	"internal/bytesize": nil,
	"internal/runecut":  nil,

	// Below the domain.
	"policy": {"tenant", "internal/pglisten"},

	// The domain's rooms, in the order they may import each other.
	"tenant/audit":        {"tenant"},
	"tenant/outbox":       {"tenant"},
	"tenant/sftplogin":    {"tenant", "tenant/audit", "tenant/outbox", "internal/pglisten"},
	"tenant/purge":        {"tenant", "tenant/audit"},
	"tenant/sharing":      {"tenant", "tenant/audit", "tenant/purge", "policy"},
	"tenant/sftpaccess":   {"tenant", "tenant/audit", "tenant/outbox", "tenant/sftplogin"},
	"tenant/people":       {"tenant", "tenant/audit", "tenant/outbox", "tenant/sftpaccess", "tenant/sharing", "tenant/purge", "policy"},
	"tenant/account":      {"tenant", "tenant/audit", "tenant/people"},
	"tenant/storageuse":   {"tenant", "tenant/audit", "tenant/outbox"},
	"tenant/activity":     {"tenant", "tenant/outbox", "tenant/sharing", "tenant/storageuse", "policy", "internal/pglisten"},
	"tenant/sftpsessions": {"tenant", "tenant/audit", "internal/pglisten"},
	"tenant/filetimes":    {"tenant", "storage"},
	"tenant/domain": {"tenant", "tenant/account", "tenant/audit", "tenant/outbox", "tenant/people", "tenant/purge",
		"tenant/sftpaccess", "tenant/sftplogin", "tenant/sharing", "tenant/storageuse", "tenant/activity", "tenant/sftpsessions"},

	// Transports: the domain and below, never each other.
	"sftp/vfs":        {"storage", "internal/runecut"},
	"sftp":            {"sftp/vfs", "storage", "internal/runecut", "policy", "tenant", "tenant/sftplogin", "tenant/sharing", "tenant/storageuse", "tenant/activity", "tenant/sftpsessions"},
	"notify":          {"tenant", "tenant/outbox"},
	"graph/model":     {"policy", "tenant", "tenant/audit", "tenant/outbox", "tenant/people", "tenant/sftpaccess", "tenant/sftplogin", "tenant/sharing", "tenant/storageuse", "tenant/activity", "tenant/sftpsessions"},
	"graph/generated": {"graph/model", "policy", "tenant", "tenant/audit", "tenant/outbox", "tenant/people", "tenant/sftpaccess", "tenant/sftplogin", "tenant/sharing", "tenant/storageuse", "tenant/activity", "tenant/sftpsessions"},
	"graph": {"graph/generated", "graph/model", "internal/runecut", "policy", "tenant", "tenant/account", "tenant/audit", "tenant/domain",
		"tenant/outbox", "tenant/people", "tenant/sftpaccess", "tenant/sftplogin", "tenant/sharing", "tenant/storageuse", "tenant/activity", "tenant/sftpsessions"},

	// Test helpers.
	"internal/pgtest":     {"internal/pgserver", "internal/sqlcount", "migrations", "tenant"},
	"internal/archtest":   nil,
	"internal/s3test":     nil,
	"storage/storagetest": {"storage"},
	"storage/s3":          {"storage", "internal/bytesize"},

	// The binary and the benchmarks wire everything; nothing imports them.
	"cmd/skiff":            {"*"},
	"bench":                {"*", "!cmd/skiff"},
	"bench/cmd/skiffbench": {"bench"},
}

// TestImportsPointOneWay reads every package's imports (not its tests')
// from `go list` and checks them against allowed.
func TestImportsPointOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		pkg := strings.TrimPrefix(fields[0], module)
		may, known := allowed[pkg]
		if !known {
			t.Errorf("%s is not in the import rule: add it to allowed (and docs/ARCHITECTURE.md)", pkg)
			continue
		}
		seen++
		for _, imp := range fields[1:] {
			dep, ours := strings.CutPrefix(imp, module)
			if !ours {
				continue
			}
			if !mayImport(may, dep) {
				t.Errorf("%s imports %s, which the import rule does not allow", pkg, dep)
			}
		}
	}
	if seen < 20 {
		t.Fatalf("go list showed only %d of the module's packages", seen)
	}
}

func mayImport(may []string, dep string) bool {
	if slices.Contains(may, "!"+dep) {
		return false
	}
	return slices.Contains(may, dep) || slices.Contains(may, "*")
}

// The rule itself says what the design says: the domain never imports a
// transport, and graph and sftp never import each other.
func TestRuleKeepsTransportsOutOfTheDomain(t *testing.T) {
	transports := []string{"graph", "graph/model", "graph/generated", "sftp", "sftp/vfs", "notify", "cmd/skiff", "bench"}
	for pkg, may := range allowed {
		domain := pkg == "tenant" || strings.HasPrefix(pkg, "tenant/") || pkg == "policy" || pkg == "storage"
		for _, tr := range transports {
			if domain && mayImport(may, tr) {
				t.Errorf("the rule lets %s import the transport %s", pkg, tr)
			}
		}
		if strings.HasPrefix(pkg, "graph") && slices.ContainsFunc(may, func(d string) bool { return strings.HasPrefix(d, "sftp") }) {
			t.Errorf("the rule lets %s import sftp", pkg)
		}
		if strings.HasPrefix(pkg, "sftp") && slices.ContainsFunc(may, func(d string) bool { return strings.HasPrefix(d, "graph") }) {
			t.Errorf("the rule lets %s import graph", pkg)
		}
	}
}
