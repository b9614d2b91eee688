package policy_test

import (
	"slices"
	"testing"

	"github.com/skiffhq/skiff/policy"
)

// The presets table of docs/PERMISSIONS.md.
func TestPresetRights(t *testing.T) {
	t.Parallel()
	write := []policy.Right{policy.List, policy.Download, policy.Upload, policy.Mkdir, policy.Delete, policy.Rename}
	want := map[policy.Preset][]policy.Right{
		policy.PresetList:  {policy.List},
		policy.PresetRead:  {policy.List, policy.Download},
		policy.PresetWrite: write,
		policy.PresetShare: append(slices.Clone(write), policy.Share),
		policy.PresetOwner: policy.Rights(),
	}
	for _, p := range policy.Presets() {
		if got := p.Rights(); !slices.Equal(got, want[p]) {
			t.Errorf("%s grants %v, want %v", p, got, want[p])
		}
	}
	if len(want) != len(policy.Presets()) {
		t.Errorf("presets = %v", policy.Presets())
	}
	if got := policy.Preset("ADMIN").Rights(); got != nil {
		t.Errorf("an unknown preset grants %v", got)
	}
}

func TestPresetOrder(t *testing.T) {
	t.Parallel()
	ps := policy.Presets()
	for i, a := range ps {
		for j, b := range ps {
			if got := a.Covers(b); got != (i >= j) {
				t.Errorf("%s.Covers(%s) = %v", a, b, got)
			}
		}
	}
	if policy.Preset("ROOT").Covers(policy.PresetList) || policy.Preset("").Valid() {
		t.Error("an unknown preset counts")
	}
	if got := policy.Max(policy.PresetRead, policy.PresetWrite); got != policy.PresetWrite {
		t.Errorf("Max(READ, WRITE) = %s", got)
	}
	if got := policy.Max(policy.PresetShare, "BOGUS"); got != policy.PresetShare {
		t.Errorf("Max(SHARE, BOGUS) = %s", got)
	}
}

func TestPermissionVocabulary(t *testing.T) {
	t.Parallel()
	for _, p := range policy.Permissions() {
		if !p.Valid() {
			t.Errorf("%s is not valid", p)
		}
	}
	if policy.Permission("sftp_my_files").Valid() || policy.Permission("").Valid() {
		t.Error("a permission outside the vocabulary is valid")
	}
}

// PresetOf is the largest preset whose rights are all in the set, for every
// set of rights, and allocates nothing (a page of shared folders asks it for
// every row).
func TestPresetOf(t *testing.T) {
	// Not parallel: testing.AllocsPerRun refuses to run in parallel tests.
	all := policy.Rights()
	for set := range 1 << len(all) {
		var rights []policy.Right
		for i, r := range all {
			if set&(1<<i) != 0 {
				rights = append(rights, r)
			}
		}
		var want policy.Preset
		for _, p := range policy.Presets() {
			if !slices.ContainsFunc(p.Rights(), func(r policy.Right) bool { return !slices.Contains(rights, r) }) {
				want = p
			}
		}
		if got := policy.PresetOf(rights); got != want {
			t.Errorf("PresetOf(%v) = %q, want %q", rights, got, want)
		}
	}
	write := policy.PresetWrite.Rights()
	if n := testing.AllocsPerRun(100, func() { policy.PresetOf(write) }); n != 0 {
		t.Errorf("PresetOf allocates %v times", n)
	}
}
