//go:build ignore

// Runs gqlgen as `go run github.com/99designs/gqlgen generate` does, with
// one plugin of Skiff's (enumLists), then replaces some of gqlgen's calls in
// the generated code with cheaper ones of Skiff's (perObject); run by
// ./scripts/gqlgen from the module's root.
package main

import (
	"bytes"
	"errors"
	"fmt"
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
	if err := rewrite(cfg.Exec.Filename, perObject); err != nil {
		fail.Fatal(err)
	}
}

// perObject are the calls in gqlgen's code for every object of a response
// that Skiff replaces with its own (graph/generated/fastpath.go), each with
// the same result and less work. gqlgen's templates
// cannot be changed by a plugin, so the generated file is rewritten; a
// rewrite that no longer finds its call fails the generation, so a gqlgen
// upgrade that changes them is noticed.
var perObject = []struct{ old, new string }{
	// The group for @defer'd fields, and the object's path it computes,
	// only when a field is deferred.
	{"deferred := graphql.NewDeferredGroup(ctx)", "deferred := newDeferredGroup(ctx, fields)"},
	// A field's context, without a new function per field for its Child.
	{"return graphql.NewScalarFieldContext(", "return newScalarFieldContext("},
}

// rewrite replaces each old with its new in the file name.
func rewrite(name string, replacements []struct{ old, new string }) error {
	src, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	for _, r := range replacements {
		if !bytes.Contains(src, []byte(r.old)) {
			return fmt.Errorf("%s: %q not found: gqlgen's generated code changed", name, r.old)
		}
		src = bytes.ReplaceAll(src, []byte(r.old), []byte(r.new))
	}
	return os.WriteFile(name, src, 0o644)
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
