package s3

import "github.com/skiffhq/skiff/storage"

// PeakParts is the most parts u held in memory at once.
func PeakParts(u storage.Upload) int {
	w := u.(*Upload)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak
}
