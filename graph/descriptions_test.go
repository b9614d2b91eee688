package graph_test

import (
	"sort"
	"strings"
	"testing"
)

// Every type, field, argument, input field and enum value in the committed
// SDL has a description, so that generated clients and the playground's
// schema pane explain the whole API (docs/GRAPHQL.md promises it).
func TestSchemaIsDescribed(t *testing.T) {
	t.Parallel()
	schema := committedSchema(t)
	var missing []string
	need := func(desc, what string) {
		if strings.TrimSpace(desc) == "" {
			missing = append(missing, what)
		}
	}
	for name, def := range schema.Types {
		if def.BuiltIn || strings.HasPrefix(name, "__") {
			continue
		}
		// The root types are described by their fields.
		if name != "Query" && name != "Mutation" && name != "Subscription" {
			need(def.Description, name)
		}
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			need(f.Description, name+"."+f.Name)
			for _, a := range f.Arguments {
				need(a.Description, name+"."+f.Name+"("+a.Name+")")
			}
		}
		for _, v := range def.EnumValues {
			need(v.Description, name+"."+v.Name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d schema elements have no description:\n%s", len(missing), strings.Join(missing, "\n"))
	}
}
