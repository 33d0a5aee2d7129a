package app

import (
	"sync"
	"testing"
)

// TestMemoBuildsOnceAndForgetsPastItsLimit: a key is built once and then
// remembered; a memo that reaches its limit starts over; a nil memo
// builds every time; concurrent Gets agree.
func TestMemoBuildsOnceAndForgetsPastItsLimit(t *testing.T) {
	builds := 0
	build := func(v int) func() int { return func() int { builds++; return v } }
	m := NewMemo[string, int](2)
	if got := m.Get("a", build(1)); got != 1 || builds != 1 {
		t.Fatalf("first Get: %d after %d builds", got, builds)
	}
	if got := m.Get("a", build(99)); got != 1 || builds != 1 {
		t.Fatalf("second Get: %d after %d builds, want the remembered 1 after 1", got, builds)
	}
	m.Get("b", build(2))
	if m.Len() != 2 {
		t.Fatalf("%d entries, want 2", m.Len())
	}
	if got := m.Get("c", build(3)); got != 3 || m.Len() != 1 {
		t.Fatalf("past the limit: %d with %d entries, want 3 with 1 (started over)", got, m.Len())
	}
	if got := m.Get("a", build(4)); got != 4 {
		t.Fatalf("a forgotten key: %d, want it built again (4)", got)
	}
	var none *Memo[string, int]
	n := builds
	none.Get("a", build(5))
	none.Get("a", build(5))
	if builds != n+2 || none.Len() != 0 {
		t.Fatalf("a nil memo built %d times for two Gets", builds-n)
	}

	shared := NewMemo[int, *int](100)
	var wg sync.WaitGroup
	got := make([]*int, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 50 {
				shared.Get(k, func() *int { v := k; return &v })
			}
			got[i] = shared.Get(7, func() *int { v := 7; return &v })
		}()
	}
	wg.Wait()
	for _, p := range got {
		if *p != 7 {
			t.Fatalf("concurrent Gets of key 7: %d", *p)
		}
	}
}
