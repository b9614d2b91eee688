package bytesize

import "testing"

func TestExact(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 bytes", 1000: "1000 bytes", 1 << 20: "1 MiB", 5 << 20: "5 MiB", 5<<20 + 1: "5242881 bytes",
		1 << 30: "1 GiB", 3 << 30: "3 GiB", 3<<30 + 1<<20: "3073 MiB",
	} {
		if got := Exact(n); got != want {
			t.Errorf("Exact(%d) = %q, want %q", n, got, want)
		}
	}
}
