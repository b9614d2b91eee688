package graph_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/skiffhq/skiff/graph"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// The committed SDL is the schema the server runs (./scripts/gqlgen writes it).
func TestCommittedSDLIsCurrent(t *testing.T) {
	t.Parallel()
	got, err := os.ReadFile("schema.graphql")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, graph.SDL()) {
		t.Fatalf("%s is stale: run ./scripts/gqlgen and commit it", graph.SDLFile)
	}
}

// committedSchema parses the committed SDL, graph/schema.graphql.
func committedSchema(t *testing.T) *ast.Schema {
	t.Helper()
	sdl, err := os.ReadFile("schema.graphql")
	if err != nil {
		t.Fatal(err)
	}
	schema, gerr := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: string(sdl)})
	if gerr != nil {
		t.Fatal(gerr)
	}
	return schema
}
