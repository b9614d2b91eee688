package tenant

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

type row struct{ key, id string }

func rowSorts(list string) *Sorts[row] {
	return &Sorts[row]{
		List:    list,
		Keys:    []SortKey[row]{{Field: "KEY", Expr: "key", Type: "text", Of: func(r row) string { return r.key }}},
		Default: Order{Field: "KEY"},
		ID:      "id",
		IDType:  "text",
		IDOf:    func(r row) string { return r.id },
	}
}

// A list paged in memory walks forward and backward through the same rows in
// either direction, ties by ID, with page info as the Relay spec has it.
func TestSlicePageBothWays(t *testing.T) {
	var all []row
	for i := range 11 {
		all = append(all, row{key: fmt.Sprint(i % 4), id: fmt.Sprintf("id%02d", 20-i)})
	}
	s := rowSorts("rows")
	for _, desc := range []bool{false, true} {
		want := slices.Clone(all)
		slices.SortFunc(want, func(a, b row) int {
			c := strings.Compare(a.key+a.id, b.key+b.id)
			if desc {
				c = -c
			}
			return c
		})
		o := Order{Field: "KEY", Desc: desc}
		for size := 1; size <= 12; size++ {
			var fw []row
			after := ""
			for n := 0; ; n++ {
				ks, err := s.NewKeyset(o, Page{First: size, After: after, Count: true})
				if err != nil {
					t.Fatal(err)
				}
				c := SlicePage(ks, all)
				if c.Total != len(all) || c.HasPrevious != (n > 0) || len(c.Items) > size {
					t.Fatalf("desc %v size %d page %d: %+v", desc, size, n, c)
				}
				fw = append(fw, c.Items...)
				if !c.HasNext {
					break
				}
				after = c.Cursors[len(c.Cursors)-1]
			}
			var bw []row
			before := ""
			for n := 0; ; n++ {
				ks, err := s.NewKeyset(o, Page{Last: size, Before: before})
				if err != nil {
					t.Fatal(err)
				}
				c := SlicePage(ks, all)
				if c.HasNext != (n > 0) || len(c.Items) > size {
					t.Fatalf("desc %v size %d backward page %d: %+v", desc, size, n, c)
				}
				bw = append(slices.Clone(c.Items), bw...)
				if !c.HasPrevious {
					break
				}
				before = c.Cursors[0]
			}
			if !slices.Equal(fw, want) || !slices.Equal(bw, want) {
				t.Fatalf("desc %v size %d:\nforward  %v\nbackward %v\nwant     %v", desc, size, fw, bw, want)
			}
		}
	}
}

// Cursors are refused by another list, another order and another direction,
// and first cannot go with last.
func TestKeysetRefusesForeignCursors(t *testing.T) {
	s := rowSorts("rows")
	ks, _ := s.NewKeyset(Order{}, Page{})
	cur := ks.Cursor("1", "id01")
	for name, try := range map[string]func() error{
		"same order": func() error { _, err := s.NewKeyset(Order{Field: "KEY"}, Page{After: cur}); return err },
	} {
		if err := try(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for name, try := range map[string]func() error{
		"other list":      func() error { _, err := rowSorts("others").NewKeyset(Order{}, Page{After: cur}); return err },
		"other direction": func() error { _, err := s.NewKeyset(Order{Field: "KEY", Desc: true}, Page{Before: cur}); return err },
		"unknown field":   func() error { _, err := s.NewKeyset(Order{Field: "NOPE"}, Page{}); return err },
		"first and last":  func() error { _, err := s.NewKeyset(Order{}, Page{First: 1, Last: 1}); return err },
		"last too large":  func() error { _, err := s.NewKeyset(Order{}, Page{Last: MaxPageSize + 1}); return err },
		"garbage":         func() error { _, err := s.NewKeyset(Order{}, Page{After: "%%%"}); return err },
	} {
		if err := try(); ErrorCode(err) != EInvalid {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// A cursor is cursorPos as json.Marshal writes it, in base64, for plain
// keys and for keys that need escaping alike; plain ones are written
// without json.Marshal (a page makes one per row).
func TestCursorIsCursorPosJSON(t *testing.T) {
	s := rowSorts("rows")
	ks, _ := s.NewKeyset(Order{}, Page{})
	keys := []string{"", "1", "user 042", "2026-12-06T10:00:00.123456Z", "zoë", "a\"b", `back\slash`,
		"<tag>", "a&b", "tab\tnew\nline", "\x7f", "\u2028", "bad \xff utf-8", "😀"}
	for _, k := range keys {
		for _, id := range []string{"0b7c5f1e-7d0e-4c8a-9d55-3f1c2b1a0e9d", k} {
			want, _ := json.Marshal(cursorPos{O: ks.tag, K: k, I: id})
			got, err := base64.RawURLEncoding.DecodeString(ks.Cursor(k, id))
			if err != nil || string(got) != string(want) {
				t.Errorf("Cursor(%q, %q) = %s (%v), want %s", k, id, got, err, want)
			}
		}
	}
	// The string and nothing else.
	if n := testing.AllocsPerRun(100, func() { ks.Cursor("user 042", "0b7c5f1e-7d0e-4c8a-9d55-3f1c2b1a0e9d") }); n > 1 {
		t.Errorf("Cursor allocates %v times", n)
	}
}
