package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/skiffhq/skiff/migrations"
)

// version is the release, set when building one:
//
//	go build -ldflags "-X main.version=v1.4.0" ./cmd/skiff
//
// Without it, skiffVersion reads what the Go toolchain recorded: the module
// version when installed with `go install ...@v1.4.0`, otherwise the VCS
// revision the binary was built from.
var version = ""

// skiffVersion is this binary's version, for `skiff version` and the start-up
// log line.
func skiffVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+modified"
			}
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return "devel-" + rev + modified
}

// VersionCmd prints the version.
type VersionCmd struct{}

// Run prints the version, the newest migration this binary knows and the Go
// release it was built with.
func (VersionCmd) Run() error {
	fmt.Printf("skiff %s (schema %d, %s)\n", skiffVersion(), migrations.Latest(), runtime.Version())
	return nil
}
