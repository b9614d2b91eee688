//go:build ignore

// Writes graph.SDL() to graph.SDLFile; run by ./scripts/gqlgen from the
// module's root, after gqlgen.
package main

import (
	"log"
	"os"

	"github.com/skiffhq/skiff/graph"
)

func main() {
	if err := os.WriteFile(graph.SDLFile, graph.SDL(), 0o644); err != nil {
		log.Fatal(err)
	}
}
