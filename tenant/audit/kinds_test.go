package audit_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/tenant/audit"
	"github.com/skiffhq/skiff/tenant/sftplogin"
)

// kindLiteral is the shape of an audit kind: family.what.
var kindLiteral = regexp.MustCompile(`^[a-z][a-z_]*\.[a-z][a-z_]*$`)

// Every kind literal in the domain's code (a string shaped like a kind, of
// a family audit.Kinds has) is listed in audit.Kinds, so that Record never
// refuses one and the GraphQL enum has a value for it. A literal ending in
// "_" is the start of kinds built at run time (dedicated_ip.request_ +
// state): at least one kind must start with it.
func TestEveryKindWrittenIsListed(t *testing.T) {
	families := map[string]bool{}
	for _, k := range audit.Kinds {
		families[strings.SplitN(k, ".", 2)[0]] = true
	}
	found := 0
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil || !kindLiteral.MatchString(s) || !families[strings.SplitN(s, ".", 2)[0]] {
				return true
			}
			found++
			if prefix, ok := strings.CutSuffix(s, "_"); ok {
				for _, k := range audit.Kinds {
					if strings.HasPrefix(k, prefix+"_") {
						return true
					}
				}
			}
			if !audit.KnownKind(s) {
				t.Errorf("%s: audit kind %q is not listed in audit.Kinds", path, s)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 40 {
		t.Fatalf("found only %d kind literals: is the scan still looking at the domain's code?", found)
	}
	// Kinds written by migrations' SQL.
	sqlKind := regexp.MustCompile(`'([a-z][a-z_]*\.[a-z][a-z_]*)'`)
	files, _ := filepath.Glob("../../migrations/*.sql")
	if len(files) == 0 {
		t.Fatal("no migrations found")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range sqlKind.FindAllStringSubmatch(string(b), -1) {
			if families[strings.SplitN(m[1], ".", 2)[0]] && !audit.KnownKind(m[1]) {
				t.Errorf("%s: audit kind %q is not listed in audit.Kinds", f, m[1])
			}
		}
	}
	// The kinds built at run time.
	for _, st := range []sftplogin.DedicatedIPRequestState{sftplogin.RequestProvisioned, sftplogin.RequestDeclined} {
		if k := "dedicated_ip.request_" + strings.ToLower(string(st)); !audit.KnownKind(k) {
			t.Errorf("audit kind %q is not listed", k)
		}
	}
}
