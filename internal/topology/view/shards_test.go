package view

import (
	"fmt"
	"maps"
	"testing"
)

// TestShardedMapCopiesOnWrite: a derived map sees its parent's entries,
// and its writes are its own; it copies only the shards it writes.
func TestShardedMapCopiesOnWrite(t *testing.T) {
	parent := newShardedMap[int]()
	want := map[string]int{}
	for i := range 200 {
		k := fmt.Sprintf("net-%d", i)
		parent.set(k, i)
		want[k] = i
	}
	child := parent.derive()
	child.set("net-1", -1)
	child.set("net-new", 7)
	child.del("net-2")
	child.del("net-absent")
	if got := parent.toMap(); !maps.Equal(got, want) || parent.len() != 200 {
		t.Fatalf("parent changed by its child's writes: %d entries, len %d", len(got), parent.len())
	}
	want["net-1"], want["net-new"] = -1, 7
	delete(want, "net-2")
	if got := child.toMap(); !maps.Equal(got, want) || child.len() != len(want) {
		t.Fatalf("child: %d entries, len %d, want %d", len(got), child.len(), len(want))
	}
	if n := bitsSet(child.owned); n > 3 {
		t.Errorf("child copied %d shards for writes to 3 keys", n)
	}
}

func bitsSet(x uint64) (n int) {
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}
