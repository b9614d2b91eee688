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
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

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
	leaves := directLeaves{kinds: map[string]string{}, objects: map[string]bool{}, concurrent: map[string][]string{}}
	if err := pureIDs(cfg.Resolver.Dir(), leaves); err != nil {
		fail.Fatal(err)
	}
	if err := api.Generate(cfg, api.PrependPlugin(enumLists{}), api.AddPlugin(leaves)); err != nil {
		fail.Fatal(err)
	}
	if err := rewrite(cfg.Exec.Filename, perObject, leaves); err != nil {
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

// rewrite replaces each old with its new in the file name, then gives
// objects and leaf fields their fast paths.
func rewrite(name string, replacements []struct{ old, new string }, leaves directLeaves) error {
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
	fast, err := fastPaths(string(src), leaves)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	formatted, err := format.Source([]byte(fast))
	if err != nil {
		return fmt.Errorf("%s: the fast paths do not compile: %w", name, err)
	}
	return os.WriteFile(name, formatted, 0o644)
}

// Shapes of gqlgen's generated functions that fastPaths rewrites.
var (
	// An object's fields: its function ends by returning the FieldSet.
	objectFunc = regexp.MustCompile(`(?m)^func \(ec \*executionContext\) _\w+\(ctx context\.Context, sel ast\.SelectionSet, obj [^)]+\) graphql\.Marshaler \{\n`)
	objectEnd  = "\n\treturn out\n}\n"
	// A field read from a Go struct field, marshalled with no middleware;
	// the last group tells whether gqlgen recovers a panic in it.
	leafFunc = regexp.MustCompile(`(?m)^func \(ec \*executionContext\) (_\w+)\(ctx context\.Context, field graphql\.CollectedField, obj [^)]+\) \(ret graphql\.Marshaler\) \{\n` +
		`\treturn graphql\.ResolveField\(\n\t\tctx,\n\t\tec\.OperationContext,\n\t\tfield,\n` +
		`\t\tfunc\(ctx context\.Context, field graphql\.CollectedField\) \(\*graphql\.FieldContext, error\) \{\n\t\t\treturn ec\.fieldContext_\w+\(ctx, field\)\n\t\t\},\n` +
		`\t\tfunc\(ctx context\.Context\) \(any, error\) \{\n\t\t\treturn (obj\.\w+), nil\n\t\t\},\n` +
		`\t\tnil,\n` +
		`\t\tfunc\(ctx context\.Context, selections ast\.SelectionSet, v [^)]+\) graphql\.Marshaler \{\n\t\t\treturn ec\.(marshal[^(]+)\(ctx, selections, v\)\n\t\t\},\n` +
		`\t\t(true|false),\n`)
	// An ID from its resolver, and the object's call of it.
	idFunc = regexp.MustCompile(`(?m)^func \(ec \*executionContext\) (_\w+_id)\(ctx context\.Context, field graphql\.CollectedField, obj [^)]+\) \(ret graphql\.Marshaler\) \{\n` +
		`\treturn graphql\.ResolveField\(\n(?:.*\n){6}` +
		`\t\tfunc\(ctx context\.Context\) \(any, error\) \{\n\t\t\treturn (ec\.Resolvers\.\w+\(\)\.ID\(ctx, obj\))\n\t\t\},\n` +
		`\t\tnil,\n(?:.*\n){1}\t\t\treturn ec\.(marshalNID2string)\(ctx, selections, v\)\n`)
	idCase = regexp.MustCompile(`(?m)^\t\tcase "id":\n\t\t\tout\.ResolveConcurrently\(ec\.OperationContext, &deferred, i,\n\t\t\t\ttrue, true,\n` +
		`\t\t\t\tfunc\(ctx context\.Context\) graphql\.Marshaler \{\n\t\t\t\t\treturn ec\.(_\w+_id)\(ctx, field, obj\)\n\t\t\t\t\}\)\n`)
	// A list of objects, marshalled with a goroutine per element; the
	// groups are the element's type and the call.
	listFunc = regexp.MustCompile(`(?m)^func \(ec \*executionContext\) marshal[NO](\w+?)2[^(]+\(ctx context\.Context, sel ast\.SelectionSet, v \[\][^)]+\) graphql\.Marshaler \{\n(?:.*\n)*?\tret := (graphql\.MarshalSliceConcurrently\(ctx, len\(v\), 0, false, )func`)
	// A marshaller of a type that marshals itself, non-null.
	marshalSelf = regexp.MustCompile(`(?m)^func \(ec \*executionContext\) (marshalN[^(]+)\(ctx context\.Context, sel ast\.SelectionSet, v [^)]+\) graphql\.Marshaler \{\n` +
		`\tif v == nil \{\n\t\tgraphql\.AddInvalidNullError\(ctx, "[^"]+"\)\n\t\treturn graphql\.Null\n\t\}\n\treturn v\n\}\n$`)
	// A scalar's or enum's marshaller, non-null and nullable.
	marshalNonNull = regexp.MustCompile(`(?m)^func \(ec \*executionContext\) (marshalN[^(]+)\(ctx context\.Context, sel ast\.SelectionSet, v [^)]+\) graphql\.Marshaler \{\n` +
		`\t_ = sel\n\tres := graphql\.(Marshal\w+)\([^\n]*\)\n\tif res == graphql\.Null \{\n\t\tgraphql\.AddInvalidNullFromMarshaler\(ctx, "[^"]+"\)\n\t\}\n\treturn res\n\}\n$`)
	marshalNullable = regexp.MustCompile(`(?m)^func \(ec \*executionContext\) (marshalO[^(]+)\(ctx context\.Context, sel ast\.SelectionSet, v \*[^)]+\) graphql\.Marshaler \{\n` +
		`\tif v == nil \{\n\t\treturn graphql\.Null\n\t\}\n\t_ = sel\n\t_ = ctx\n\tres := graphql\.Marshal\w+\(\*v\)\n\treturn res\n\}\n$`)
)

// neverNull are gqlgen's marshallers that never answer null, so a non-null
// field marshalled by one never needs the error gqlgen adds for a null.
var neverNull = map[string]bool{
	"MarshalString": true, "MarshalID": true, "MarshalBoolean": true, "MarshalInt": true,
	"MarshalInt32": true, "MarshalInt64": true, "MarshalFloat": true,
}

// fastPaths rewrites gqlgen's code for objects and leaf fields
// (graph/generated/fastpath.go tells why):
//   - an object without deferred fields is written by newFieldWriter;
//   - a scalar or enum field (or a list of them that marshals itself) read
//     from a Go struct field, with no arguments, directives or resolver, is
//     marshalled straight from the field, unless its value is one gqlgen
//     would answer null for (a zero time for a non-null Time, a nil list),
//     which takes gqlgen's path and its error;
//   - an object field read so gets its field context and is marshalled as
//     gqlgen does, without the closures and the middleware call around it;
//   - a list of objects is marshalled by marshalList, which does without a
//     goroutine per element when the elements' selected fields cannot wait
//     (concurrent_gen.go lists the fields that can).
//
// Every rewrite keeps gqlgen's path after it, which fastpath.go's
// slowPaths switch (for tests) takes instead.
func fastPaths(src string, leaves directLeaves) (string, error) {
	funcs := strings.SplitAfter(src, "\n}\n")
	// What each marshaller's fast path needs: "" for none, "zero" for a
	// guard against the zero time, "nil" for one against nil.
	guard := map[string]string{}
	for _, f := range funcs {
		f = strings.TrimLeft(f, "\n")
		if m := marshalNonNull.FindStringSubmatch(f); m != nil {
			switch {
			case neverNull[m[2]]:
				guard[m[1]] = ""
			case m[2] == "MarshalTime":
				guard[m[1]] = "zero"
			}
		} else if m := marshalNullable.FindStringSubmatch(f); m != nil {
			guard[m[1]] = ""
		} else if m := marshalSelf.FindStringSubmatch(f); m != nil {
			guard[m[1]] = "nil"
		}
	}
	objects, fields, objectFields, ids, lists := 0, 0, 0, 0, 0
	for i, f := range funcs {
		lead := len(f) - len(strings.TrimLeft(f, "\n"))
		body := f[lead:]
		if objectFunc.MatchString(body) && strings.HasSuffix(body, objectEnd) {
			f = f[:len(f)-len(objectEnd)] + "\n\treturn newFieldWriter(fields, out, &deferred)\n}\n"
			f = idCase.ReplaceAllStringFunc(f, func(c string) string {
				name := idCase.FindStringSubmatch(c)[1]
				if leaves.kinds[name] != "id" {
					return c
				}
				concurrent := strings.TrimPrefix(c, "\t\tcase \"id\":\n")
				return "\t\tcase \"id\":\n\t\t\tif slowPaths {\n" + concurrent + "\t\t\t\tbreak\n\t\t\t}\n" +
					"\t\t\tout.Values[i] = ec." + name + "(ctx, field, obj)\n" +
					"\t\t\tif out.Values[i] == graphql.Null {\n\t\t\t\tatomic.AddUint32(&out.Invalids, 1)\n\t\t\t}\n"
			})
			funcs[i] = f
			objects++
			continue
		}
		if m := listFunc.FindStringSubmatchIndex(body); m != nil && leaves.objects[body[m[2]:m[3]]] {
			funcs[i] = f[:lead] + body[:m[4]] + "marshalList(ctx, sel, \"" + body[m[2]:m[3]] + "\", len(v), " + body[m[5]:]
			lists++
			continue
		}
		if m := idFunc.FindStringSubmatchIndex(body); m != nil && leaves.kinds[body[m[2]:m[3]]] == "id" {
			open := m[0] + strings.Index(body[m[0]:], "{\n") + 2
			fast := "\tif !slowPaths {\n\t\tif v, err := " + body[m[4]:m[5]] + "; err == nil {\n" +
				"\t\t\treturn ec." + body[m[6]:m[7]] + "(ctx, field.Selections, v)\n\t\t}\n\t}\n"
			funcs[i] = f[:lead] + body[:open] + fast + body[open:]
			ids++
			continue
		}
		m := leafFunc.FindStringSubmatchIndex(body)
		if m == nil {
			continue
		}
		name, read, marshal, recovers := body[m[2]:m[3]], body[m[4]:m[5]], body[m[6]:m[7]], body[m[8]:m[9]]
		open := m[0] + strings.Index(body[m[0]:], "{\n") + 2
		if leaves.kinds[name] == "object" && recovers == "true" {
			fast := "\tif !slowPaths {\n" +
				"\t\tfc, _ := ec.fieldContext" + name + "(ctx, field)\n" +
				"\t\tctx = graphql.WithFieldContext(ctx, fc)\n" +
				"\t\tdefer recoverField(ctx, ec.OperationContext, &ret)\n" +
				"\t\tv := " + read + "\n" +
				"\t\tfc.Result = v\n" +
				"\t\treturn ec." + marshal + "(ctx, field.Selections, v)\n\t}\n"
			funcs[i] = f[:lead] + body[:open] + fast + body[open:]
			objectFields++
			continue
		}
		g, ok := guard[marshal]
		if !ok || leaves.kinds[name] != "leaf" {
			continue
		}
		fast := "\tif !slowPaths {\n\t\treturn ec." + marshal + "(ctx, field.Selections, " + read + ")\n\t}\n"
		switch g {
		case "zero":
			fast = "\tif v := " + read + "; !slowPaths && !v.IsZero() {\n\t\treturn ec." + marshal + "(ctx, field.Selections, v)\n\t}\n"
		case "nil":
			fast = "\tif v := " + read + "; !slowPaths && v != nil {\n\t\treturn ec." + marshal + "(ctx, field.Selections, v)\n\t}\n"
		}
		funcs[i] = f[:lead] + body[:open] + fast + body[open:]
		fields++
	}
	if objects == 0 || fields == 0 || objectFields == 0 || ids == 0 || lists == 0 {
		return "", fmt.Errorf("found %d objects, %d leaf fields, %d object fields, %d IDs and %d lists to give fast paths: gqlgen's generated code changed", objects, fields, objectFields, ids, lists)
	}
	return strings.Join(funcs, ""), nil
}

// pureIDs adds to leaves, as "id", the ID fields (`_Object_id`) whose
// resolver, in the resolver files of dir, is nothing but
// `return globalID("Type", obj.ID), nil`: it reads nothing, cannot fail and
// needs no field context, so an object runs it inline (graph/generated's
// fast path) rather than as gqlgen's concurrent resolver call.
func pureIDs(dir string, leaves directLeaves) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.resolvers.go"))
	if err != nil || len(names) == 0 {
		return fmt.Errorf("no resolvers in %s: %v", dir, err)
	}
	fset := token.NewFileSet()
	for _, name := range names {
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			return err
		}
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Name.Name != "ID" || fn.Recv == nil || len(fn.Recv.List) != 1 || len(fn.Body.List) != 1 ||
				len(fn.Type.Params.List) != 2 || len(fn.Type.Params.List[1].Names) != 1 {
				continue
			}
			star, ok := fn.Recv.List[0].Type.(*ast.StarExpr)
			recv, _ := star.X.(*ast.Ident)
			ret, _ := fn.Body.List[0].(*ast.ReturnStmt)
			if !ok || recv == nil || !strings.HasSuffix(recv.Name, "Resolver") || ret == nil || len(ret.Results) != 2 {
				continue
			}
			call, _ := ret.Results[0].(*ast.CallExpr)
			nilErr, _ := ret.Results[1].(*ast.Ident)
			if call == nil || nilErr == nil || nilErr.Name != "nil" || len(call.Args) != 2 {
				continue
			}
			fun, _ := call.Fun.(*ast.Ident)
			typ, _ := call.Args[0].(*ast.BasicLit)
			sel, _ := call.Args[1].(*ast.SelectorExpr)
			if fun == nil || fun.Name != "globalID" || typ == nil || typ.Kind != token.STRING || sel == nil || sel.Sel.Name != "ID" {
				continue
			}
			if x, _ := sel.X.(*ast.Ident); x == nil || x.Name != fn.Type.Params.List[1].Names[0].Name {
				continue
			}
			object := strings.ToUpper(recv.Name[:1]) + strings.TrimSuffix(recv.Name[1:], "Resolver")
			leaves.kinds["_"+object+"_id"] = "id"
		}
	}
	return nil
}

// directLeaves names the functions of fields (`_Object_field`) that read
// their value straight from a field of the object's own Go struct: not from
// a resolver or method, not promoted through an embedded struct (which
// could be a nil pointer), with no arguments and no directives. Each is
// "leaf" (a scalar or enum) or "object" (an object, or a list of them);
// pureIDs adds the "id" fields.
type directLeaves struct {
	kinds map[string]string
	// objects are the schema's object types (not root, not introspection);
	// concurrent their fields that gqlgen runs as concurrent resolvers
	// (pure IDs aside): the fields that may wait.
	objects    map[string]bool
	concurrent map[string][]string
}

func (directLeaves) Name() string { return "skiff-direct-leaves" }

func (l directLeaves) GenerateCode(data *codegen.Data) error {
	for _, o := range data.Objects {
		if o.Root || strings.HasPrefix(o.Name, "__") {
			continue
		}
		l.objects[o.Name] = true
		for _, f := range o.Fields {
			if f.IsConcurrent() && l.kinds["_"+o.Name+"_"+f.Name] != "id" {
				l.concurrent[o.Name] = append(l.concurrent[o.Name], f.Name)
			}
		}
	}
	for _, o := range data.Objects {
		if o.Root || strings.HasPrefix(o.Name, "__") || o.Type == nil {
			continue
		}
		st := o.Type
		if p, ok := st.(*types.Pointer); ok {
			st = p.Elem()
		}
		for _, f := range o.Fields {
			if f.IsResolver || f.GoFieldType != codegen.GoFieldVariable || len(f.Args) > 0 || len(f.Directives) > 0 ||
				f.TypeReference == nil {
				continue
			}
			kind := ""
			switch f.TypeReference.Definition.Kind {
			case "SCALAR", "ENUM":
				// A list only if it marshals itself (model.FolderRights):
				// fastPaths takes only marshallers it knows.
				kind = "leaf"
			case "OBJECT":
				kind = "object"
			}
			if kind == "" {
				continue
			}
			v, index, _ := types.LookupFieldOrMethod(st, false, nil, f.GoFieldName)
			if _, isVar := v.(*types.Var); !isVar || len(index) != 1 {
				continue
			}
			l.kinds["_"+o.Name+"_"+f.Name] = kind
		}
	}
	// Before gqlgen checks that its package compiles: fastpath.go uses it.
	return l.writeConcurrent(filepath.Join(filepath.Dir(data.Config.Exec.Filename), "concurrent_gen.go"))
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

// writeConcurrent writes the fields that may wait, by object type, for
// graph/generated's marshalList.
func (l directLeaves) writeConcurrent(name string) error {
	var b strings.Builder
	b.WriteString("// Code generated by graph/gqlgen_gen.go. DO NOT EDIT.\n\npackage generated\n\n")
	b.WriteString("// concurrentFields are, by object type, the fields gqlgen resolves\n")
	b.WriteString("// concurrently (resolvers, methods with a context): the fields that may\n")
	b.WriteString("// wait. Every object type of the schema has an entry.\n")
	b.WriteString("var concurrentFields = map[string]map[string]bool{\n")
	names := make([]string, 0, len(l.objects))
	for o := range l.objects {
		names = append(names, o)
	}
	slices.Sort(names)
	for _, o := range names {
		fmt.Fprintf(&b, "\t%q: {", o)
		for i, f := range l.concurrent[o] {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q: true", f)
		}
		b.WriteString("},\n")
	}
	b.WriteString("}\n")
	src, err := format.Source([]byte(b.String()))
	if err != nil {
		return err
	}
	return os.WriteFile(name, src, 0o644)
}
