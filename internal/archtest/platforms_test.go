package archtest

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestNoFileDependsOnTheArchitecture holds the premise of .ci/run's
// cross-builds, which type-check one architecture per system (darwin/arm64,
// freebsd/amd64): on each system, the module compiles the same files, tests
// included, whatever the architecture. A file that names one (foo_amd64.go,
// or a build constraint on GOARCH) fails this, and the cross-builds then need
// the other architecture back.
func TestNoFileDependsOnTheArchitecture(t *testing.T) {
	files := func(goos, goarch string) map[string]string {
		cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{.GoFiles}} {{.TestGoFiles}} {{.XTestGoFiles}}", module+"...")
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list for %s/%s: %v", goos, goarch, err)
		}
		byPkg := map[string]string{}
		for line := range strings.Lines(string(out)) {
			pkg, list, _ := strings.Cut(strings.TrimSpace(line), " ")
			byPkg[pkg] = list
		}
		return byPkg
	}
	for _, goos := range []string{"linux", "darwin", "freebsd"} {
		amd64, arm64 := files(goos, "amd64"), files(goos, "arm64")
		if len(amd64) < 20 {
			t.Fatalf("go list showed only %d of the module's packages on %s", len(amd64), goos)
		}
		for pkg, list := range amd64 {
			if arm64[pkg] != list {
				t.Errorf("on %s, %s compiles other files on amd64 than on arm64:\n  amd64 %s\n  arm64 %s", goos, pkg, list, arm64[pkg])
			}
		}
	}
}
