// Package bytesize writes sizes that are set, not measured (part sizes,
// limits, benchmark file sizes), the way they were given: a whole number of
// GiB or MiB when they are one, bytes otherwise.
package bytesize

import "fmt"

// Exact writes n as "8 GiB", "5 MiB" or "1000 bytes": never rounded.
func Exact(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
