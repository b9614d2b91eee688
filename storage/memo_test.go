package storage_test

import (
	"testing"

	"github.com/skiffhq/skiff/storage"
)

// What a Memo keeps is good for one span: kept within it, dropped at its
// end or at a change, never kept outside a span, and an answer asked for
// before a change is not kept after it.
func TestMemoKeepsWithinASpan(t *testing.T) {
	var m storage.Memo
	look := func(key string) (any, bool) {
		v, ok, _ := m.Look(key)
		return v, ok
	}

	_, _, token := m.Look("a")
	m.Keep(token, "a", 1)
	if _, ok := look("a"); ok {
		t.Error("an answer was kept outside every span")
	}

	if m.Open() {
		t.Error("Open before any span")
	}
	m.Begin()
	if !m.Open() {
		t.Error("not Open within a span")
	}
	_, _, token = m.Look("a")
	m.Keep(token, "a", 1)
	if v, ok := look("a"); !ok || v != 1 {
		t.Errorf("within a span: %v, %v; want 1, true", v, ok)
	}

	m.Forget()
	if _, ok := look("a"); ok {
		t.Error("an answer survived a change")
	}

	_, _, token = m.Look("b") // asked before a change, answered after it
	m.Forget()
	m.Keep(token, "b", 2)
	if _, ok := look("b"); ok {
		t.Error("an answer asked for before a change was kept after it")
	}

	_, _, token = m.Look("c")
	m.Keep(token, "c", 3)
	m.Begin() // a second channel's request
	if _, ok := look("c"); ok {
		t.Error("an answer learned before a span began served it")
	}
	_, _, token = m.Look("c")
	m.Keep(token, "c", 3)
	m.End()
	if _, ok := look("c"); ok {
		t.Error("an answer survived the end of a span (another channel's)")
	}
	_, _, token = m.Look("c")
	m.Keep(token, "c", 3)
	if _, ok := look("c"); !ok {
		t.Error("nothing is kept in the span still open")
	}
	m.End()
	if _, ok := look("c"); ok {
		t.Error("an answer survived the last span's end")
	}
}

// A nil Memo keeps nothing, and Remember leaves a tree that cannot use one
// (the local disk) as it is.
func TestNilMemoAndTreesWithoutOne(t *testing.T) {
	var m *storage.Memo
	m.Begin()
	m.End()
	_, _, token := m.Look("a")
	m.Keep(token, "a", 1)
	m.Forget()
	if _, ok, _ := m.Look("a"); ok {
		t.Error("a nil Memo kept an answer")
	}
	local, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	home, err := local.UserHome("0b6f3c52-9d1e-4d2a-8a43-1f8b1c2d3e4f", "7c1d5a8e-2f3b-4c6d-9e0f-a1b2c3d4e5f6")
	if err != nil {
		t.Fatal(err)
	}
	defer home.Close()
	if got := storage.Remember(home, &storage.Memo{}); got != home {
		t.Errorf("Remember wrapped a local tree: %T", got)
	}
}
