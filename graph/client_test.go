package graph_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/Khan/genqlient/graphql"
)

// apqDoer is a client's HTTP link as Apollo's persisted-query link with
// useGETForHashedQueries and urql's persistedExchange speak it: a query
// goes as GET with only its hash, a mutation as POST with only its hash, and
// on PERSISTED_QUERY_NOT_FOUND the request is sent again as POST with the
// text. It counts what happened, and Go's transport asks for gzip.
type apqDoer struct {
	token                        string
	hashOnly, notFound, withText int
	gzipped                      int // responses that came gzipped (and were decoded)
}

func (d *apqDoer) Do(req *http.Request) (*http.Response, error) {
	var params map[string]any
	if err := json.NewDecoder(req.Body).Decode(&params); err != nil {
		return nil, err
	}
	query, _ := params["query"].(string)
	sum := sha256.Sum256([]byte(query))
	params["extensions"] = map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	delete(params, "query")
	mutation := strings.HasPrefix(strings.TrimSpace(query), "mutation")

	d.hashOnly++
	res, body, err := d.send(req.Context(), params, !mutation)
	if err != nil {
		return nil, err
	}
	var probe struct {
		Errors []struct {
			Extensions struct{ Code string }
		}
	}
	_ = json.Unmarshal(body, &probe)
	if len(probe.Errors) == 1 && probe.Errors[0].Extensions.Code == "PERSISTED_QUERY_NOT_FOUND" {
		d.notFound++
		d.withText++
		params["query"] = query
		if res, body, err = d.send(req.Context(), params, false); err != nil {
			return nil, err
		}
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res, nil
}

// send makes one request, as GET with the parameters in the URL or as POST.
func (d *apqDoer) send(ctx context.Context, params map[string]any, get bool) (*http.Response, []byte, error) {
	endpoint := ctx.Value(endpointKey{}).(string)
	var req *http.Request
	if get { // hash only: never the query text
		vars, _ := json.Marshal(params["variables"])
		ext, _ := json.Marshal(params["extensions"])
		q := url.Values{"operationName": {fmt.Sprint(params["operationName"])}, "variables": {string(vars)}, "extensions": {string(ext)}}
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"?"+q.Encode(), nil)
	} else {
		b, _ := json.Marshal(params)
		req, _ = http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if res.Uncompressed {
		d.gzipped++
	}
	return res, body, err
}

type endpointKey struct{}

// A typed client generated from the committed SDL by standard tooling
// (genqlient: graph/client/, ./scripts/gqlgen) drives the API over HTTP:
// mutations and paged queries, every one a persisted-query round trip, and
// the larger pages gzipped.
func TestGeneratedClientOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, owner := e.account("Acme", "owner@acme.example")
	doer := &apqDoer{token: owner}
	ctx := context.WithValue(context.Background(), endpointKey{}, e.srv.URL+"/graphql")
	client := graphql.NewClient(e.srv.URL+"/graphql", doer)

	const users = 24
	for i := range users {
		out, err := CreateUser(ctx, client, CreateUserInput{
			Email: fmt.Sprintf("user%02d@acme.example", i), Name: fmt.Sprintf("User %02d", i), Role: RoleUser,
		})
		if err != nil || len(out.CreateUser.UserErrors) != 0 || out.CreateUser.User.Id == "" {
			t.Fatalf("createUser %d: %v %+v", i, err, out)
		}
	}
	// A user error arrives typed, with its field.
	out, err := CreateUser(ctx, client, CreateUserInput{Email: "not an email", Name: "X"})
	if err != nil || len(out.CreateUser.UserErrors) == 0 || out.CreateUser.UserErrors[0].Field != "email" ||
		out.CreateUser.UserErrors[0].Code != UserErrorCodeInvalid {
		t.Fatalf("bad email: %v %+v", err, out)
	}
	// The mutation's text went once; every later request sent its hash only.
	if doer.notFound != 1 || doer.withText != 1 || doer.hashOnly != users+1 {
		t.Fatalf("mutations: %d by hash, %d not found, %d with text", doer.hashOnly, doer.notFound, doer.withText)
	}

	// Page through everyone (the owner too), 10 at a time, over GET by hash.
	seen := map[string]bool{}
	after := ""
	pages := 0
	for {
		page, err := UsersScreen(ctx, client, 10, after)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		pages++
		for _, edge := range page.Account.Users.Edges {
			seen[edge.Node.Email] = true
		}
		if !page.Account.Users.PageInfo.HasNextPage {
			break
		}
		after = page.Account.Users.PageInfo.EndCursor
	}
	if len(seen) != users+1 || pages != 3 {
		t.Fatalf("paged %d users in %d pages", len(seen), pages)
	}
	if doer.notFound != 2 || doer.withText != 2 {
		t.Fatalf("queries: %d not found, %d with text; want the query's text sent once", doer.notFound, doer.withText)
	}
	// A page of 10 users is over 1 KiB, so those answers came gzipped; the
	// last page (5 users) and the small answers to mutations did not.
	if doer.gzipped != 2 {
		t.Fatalf("%d responses gzipped, want the 2 full pages", doer.gzipped)
	}

	// The same users by email, Z to A: forward 7 at a time, then backward
	// from the end; both walks see everyone once, in the same order.
	byEmail := &UserOrder{Field: UserOrderFieldEmail, Direction: OrderDirectionDesc}
	var forward, backward []string
	var emailCursor string
	for after, n := "", 0; ; n++ {
		page, err := UsersPage(ctx, client, 7, after, 0, "", byEmail)
		if err != nil {
			t.Fatalf("forward page %d: %v", n, err)
		}
		u := page.Account.Users
		if u.TotalCount != users+1 || u.PageInfo.HasPreviousPage != (n > 0) {
			t.Fatalf("forward page %d: totalCount %d, %+v", n, u.TotalCount, u.PageInfo)
		}
		for _, edge := range u.Edges {
			forward = append(forward, edge.Node.Email)
		}
		emailCursor = u.PageInfo.EndCursor
		if !u.PageInfo.HasNextPage {
			break
		}
		after = u.PageInfo.EndCursor
	}
	for before, n := "", 0; ; n++ {
		page, err := UsersPage(ctx, client, 0, "", 7, before, byEmail)
		if err != nil {
			t.Fatalf("backward page %d: %v", n, err)
		}
		u := page.Account.Users
		if u.TotalCount != users+1 || u.PageInfo.HasNextPage != (n > 0) {
			t.Fatalf("backward page %d: totalCount %d, %+v", n, u.TotalCount, u.PageInfo)
		}
		var emails []string
		for _, edge := range u.Edges {
			emails = append(emails, edge.Node.Email)
		}
		backward = append(emails, backward...)
		if !u.PageInfo.HasPreviousPage {
			break
		}
		before = u.PageInfo.StartCursor
	}
	if len(forward) != users+1 || !slices.Equal(forward, backward) ||
		!slices.IsSortedFunc(forward, func(a, b string) int { return strings.Compare(b, a) }) {
		t.Fatalf("by email, Z to A:\nforward  %v\nbackward %v", forward, backward)
	}
	// A cursor of one order is refused by another, as a typed client sees it.
	if _, err := UsersPage(ctx, client, 7, emailCursor, 0, "", nil); err == nil {
		t.Fatal("a cursor of the email order was taken by the name order")
	}
}
