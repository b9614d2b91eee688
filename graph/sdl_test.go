package graph_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/skiffhq/skiff/graph"
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
