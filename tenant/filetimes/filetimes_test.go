package filetimes_test

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/pgtest"
	"github.com/skiffhq/skiff/storage"
	"github.com/skiffhq/skiff/tenant"
	"github.com/skiffhq/skiff/tenant/account"
	"github.com/skiffhq/skiff/tenant/domain"
	"github.com/skiffhq/skiff/tenant/filetimes"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const tree = "0b6f2c1e-7a1d-4d3b-9c5e-2f4a6b8c0d1e"

// accounts creates an account per name and returns their IDs.
func accounts(t testing.TB, db *tenant.DB, names ...string) []string {
	t.Helper()
	var ids []string
	for _, name := range names {
		a, _, err := domain.New(db).Accounts.CreateAccount(tenant.SystemContext(context.Background()),
			account.CreateAccountInput{Name: name, OwnerEmail: "owner@" + name + ".example", OwnerName: name})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	return ids
}

func at(h int) storage.Time {
	return storage.Time{Version: `"e"`, ModTime: time.Date(2020, 1, 1, h, 0, 0, 0, time.UTC)}
}

func TestTimes(t *testing.T) {
	ctx := context.Background()
	db := pgtest.OpenStore(t)
	accts := accounts(t, db, "alpha", "beta")
	st := &filetimes.Store{DB: db}
	ref := storage.TreeRef{Account: accts[0], ID: tree}
	// Names that share a beginning with "a", in byte order around "/".
	paths := []string{"top", "a", "a/b", "a/b/c", "a/b.txt", "ab", "a0", "a.b", "a b/x", "d/%_\\ü"}
	set := map[string]storage.Time{}
	for i, p := range paths {
		set[p] = at(i)
	}
	set["a"] = storage.Time{ModTime: at(1).ModTime} // a folder: no ETag
	if err := st.Set(ctx, ref, set); err != nil {
		t.Fatal(err)
	}

	keys := func(m map[string]storage.Time) []string { return slices.Sorted(maps.Keys(m)) }
	want := func(what string, got map[string]storage.Time, err error, names ...string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if k := keys(got); !slices.Equal(k, names) {
			t.Errorf("%s = %q, want %q", what, k, names)
		}
	}
	got, err := st.List(ctx, ref, ".")
	want("List(.)", got, err, "a", "a.b", "a0", "ab", "top")
	got, err = st.List(ctx, ref, "a")
	want("List(a)", got, err, "b", "b.txt")
	got, err = st.Under(ctx, ref, "a")
	want("Under(a)", got, err, "a", "a/b", "a/b.txt", "a/b/c")
	got, err = st.Under(ctx, ref, "d")
	want("Under(d)", got, err, "d/%_\\ü")

	tm, ok, err := st.Get(ctx, ref, "a/b/c")
	if err != nil || !ok || tm != at(3) {
		t.Errorf("Get(a/b/c) = %v, %v, %v; want %v", tm, ok, err, at(3))
	}
	if tm, ok, err := st.Get(ctx, ref, "a"); err != nil || !ok || tm.Version != "" {
		t.Errorf("Get(a) = %v, %v, %v; want the folder's time", tm, ok, err)
	}
	if _, ok, err := st.Get(ctx, ref, "a/x"); err != nil || ok {
		t.Errorf("Get(a/x) = %v, %v; want none", ok, err)
	}

	// Set replaces.
	if err := st.Set(ctx, ref, map[string]storage.Time{"ab": at(20)}); err != nil {
		t.Fatal(err)
	}
	if tm, _, _ := st.Get(ctx, ref, "ab"); tm != at(20) {
		t.Errorf("after Set, ab = %v", tm)
	}

	// Another account sees none of it, and another tree neither.
	for _, other := range []storage.TreeRef{{Account: accts[1], ID: tree}, {Account: accts[0], ID: "9d0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a"}} {
		got, err := st.Under(ctx, other, ".")
		want("Under(.) of "+other.Account+"/"+other.ID, got, err)
		if err := st.Delete(ctx, other, "."); err != nil {
			t.Fatal(err)
		}
	}

	// Delete takes a name and what is under it, and nothing that only
	// begins like it.
	if err := st.Delete(ctx, ref, "a"); err != nil {
		t.Fatal(err)
	}
	got, err = st.Under(ctx, ref, ".")
	want("after Delete(a)", got, err, "a b/x", "a.b", "a0", "ab", "d/%_\\ü", "top")
	if err := st.Delete(ctx, ref, "."); err != nil {
		t.Fatal(err)
	}
	got, err = st.Under(ctx, ref, ".")
	want("after Delete(.)", got, err)
}

// What keeping times adds to S3-backed storage: a stat asks Get, a listing
// asks List once per page of 1,000 keys. Most folders have no times kept,
// or a page's worth.
func BenchmarkTimes(b *testing.B) {
	ctx := context.Background()
	db := pgtest.OpenStore(b)
	st := &filetimes.Store{DB: db}
	ref := storage.TreeRef{Account: accounts(b, db, "alpha")[0], ID: tree}
	page := map[string]storage.Time{}
	for i := range 1000 {
		page["full/"+strconv.Itoa(i)] = at(1)
	}
	if err := st.Set(ctx, ref, page); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, dir string }{{"List/none", "empty"}, {"List/1000", "full"}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := st.List(ctx, ref, c.dir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("Get", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := st.Get(ctx, ref, "full/7"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
