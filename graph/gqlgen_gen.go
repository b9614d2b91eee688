//go:build ignore

// Runs gqlgen as `go run github.com/99designs/gqlgen generate` does, with
// one plugin of Skiff's (enumLists); run by ./scripts/gqlgen from the
// module's root.
package main

import (
	"errors"
	"io"
	"log"
	"os"

	"github.com/99designs/gqlgen/api"
	"github.com/99designs/gqlgen/codegen"
	"github.com/99designs/gqlgen/codegen/config"
)

func main() {
	// gqlgen logs its progress through the log package; its command
	// shows that only with --verbose.
	log.SetOutput(io.Discard)
	fail := log.New(os.Stderr, "gqlgen: ", 0)
	cfg, err := config.LoadConfigFromDefaultLocations()
	if err != nil {
		fail.Fatal(err)
	}
	// Before resolvergen, which writes the resolvers' signatures.
	if err := api.Generate(cfg, api.PrependPlugin(enumLists{})); err != nil {
		fail.Fatal(err)
	}
}

// rightsType is what gqlgen.yml binds SharedProjectEdge.rights to.
const rightsType = "github.com/skiffhq/skiff/graph/model.FolderRights"

// enumLists gives the resolvers of [FolderRight!]! fields (ProjectFolder.myRights)
// the type gqlgen.yml gives SharedProjectEdge.rights, model.FolderRights,
// which writes the list in one pass: gqlgen marshals a list of enum values
// with a goroutine per value. A field's `type` in gqlgen.yml only reaches
// the fields of generated models, not resolvers.
type enumLists struct{}

func (enumLists) Name() string { return "skiff-enum-lists" }

func (enumLists) GenerateCode(data *codegen.Data) error {
	var rights *config.TypeReference
	for _, ref := range data.ReferencedTypes {
		if ref.GO.String() == rightsType {
			rights = ref
		}
	}
	if rights == nil {
		return errors.New(rightsType + " is not used: gqlgen.yml binds SharedProjectEdge.rights to it")
	}
	for _, o := range data.Objects {
		for _, f := range o.Fields {
			if f.IsResolver && f.TypeReference != nil && f.TypeReference.IsSlice() && f.TypeReference.GQL.String() == rights.GQL.String() {
				f.TypeReference = rights
			}
		}
	}
	return nil
}
