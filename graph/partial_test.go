package graph_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/Khan/genqlient/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// A request's mutations run in order and each commits on its own, so one that
// fails must null only itself: the others' results arrive in data.
func TestFailedMutationNullsOnlyItself(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	_, admin := e.user(owner, "admin@acme.example", "ADMIN")

	for _, c := range []struct {
		name, token, second, code string
	}{
		{"not found", owner, `deleteGroup(input: {id: "bm90OmFueXRoaW5n"}) { deletedGroupId }`, "NOT_FOUND"},
		{"forbidden", admin, `setRequireTotpForAdmins(input: {require: true}) { account { id } }`, "FORBIDDEN"},
	} {
		r := e.do(c.token, `mutation($n: String!) {
			first: createGroup(input: {name: $n, permissions: [SFTP_MY_FILES]}) { group { name } userErrors { field } }
			second: `+c.second+` }`, vars{"n": "Group " + c.name})
		var data struct {
			First *struct {
				Group      *struct{ Name string }
				UserErrors []struct{ Field string }
			}
			Second *json.RawMessage
		}
		if err := json.Unmarshal(r.Data, &data); err != nil {
			t.Fatalf("%s: data %s: %v", c.name, r.Data, err)
		}
		if data.First == nil || data.First.Group == nil || data.First.Group.Name != "Group "+c.name {
			t.Errorf("%s: the first mutation's result is lost: data %s", c.name, r.Data)
		}
		if data.Second != nil && string(*data.Second) != "null" {
			t.Errorf("%s: second = %s, want null", c.name, *data.Second)
		}
		if len(r.Errors) != 1 || r.Errors[0].code() != c.code || len(r.Errors[0].Path) != 1 || r.Errors[0].Path[0] != "second" {
			t.Errorf("%s: errors %+v, want one %s at [second]", c.name, r.Errors, c.code)
		}
		// And it did commit.
		if _, ok := e.groups(owner)["Group "+c.name]; !ok {
			t.Errorf("%s: the first mutation's group is missing", c.name)
		}
	}
}

// Every mutation's payload is nullable, so that the rule above holds for each
// (and for mutations added later).
func TestEveryMutationPayloadIsNullable(t *testing.T) {
	t.Parallel()
	schema := committedSchema(t)
	for _, f := range schema.Mutation.Fields {
		if f.Type.NonNull {
			t.Errorf("Mutation.%s returns %s: make it nullable (docs/GRAPHQL.md, Mutations)", f.Name, f.Type)
		}
	}
}

// bearerDoer sends the typed client's requests with a bearer token.
type bearerDoer string

func (d bearerDoer) Do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Authorization", "Bearer "+string(d))
	return http.DefaultClient.Do(req)
}

// The same through the typed client a client team would generate
// (genqlient): the error comes with the first mutation's result.
func TestGeneratedClientGetsSiblingMutationResult(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	client := graphql.NewClient(e.srv.URL+"/graphql", bearerDoer(owner))
	out, err := CreateUserAndDeleteGroup(context.Background(), client,
		CreateUserInput{Email: "ann@acme.example", Name: "Ann"}, "bm90OmFueXRoaW5n")
	var list gqlerror.List
	if !errors.As(err, &list) || len(list) != 1 || list[0].Extensions["code"] != "NOT_FOUND" ||
		len(list[0].Path) != 1 || list[0].Path[0] != ast.PathName("deleteGroup") {
		t.Fatalf("err = %v, want one NOT_FOUND at [deleteGroup]", err)
	}
	if out == nil || out.CreateUser == nil || out.CreateUser.User.Email != "ann@acme.example" || out.DeleteGroup != nil {
		t.Fatalf("response %+v: want the created user and a null deleteGroup", out)
	}
}
