package bridge

import "sync"

// slicePool recycles the slices a batch of punts needs, so that a busy
// bridge does not allocate them a batch.
type slicePool[T any] struct{ p sync.Pool }

// take is an empty slice with room for at least n, from the pool if it
// has one that large, and the handle to give back with it (put).
func (sp *slicePool[T]) take(n int) *[]T {
	if h, ok := sp.p.Get().(*[]T); ok && cap(*h) >= n {
		return h
	}
	s := make([]T, 0, max(n, 64))
	return &s
}

// put gives back a slice taken with h, as it grew: cleared, so that the
// pool keeps nothing its elements point at alive.
func (sp *slicePool[T]) put(h *[]T, s []T) {
	clear(s)
	*h = s[:0]
	sp.p.Put(h)
}
