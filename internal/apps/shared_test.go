package apps

import (
	"testing"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// Two bridges computing the same flows for an object hold one copy; a
// bridge whose flows differ keeps its own; and a shared copy has no room
// to append into.
func TestObjectFlowsShared(t *testing.T) {
	s := newSharedFlows()
	flow := func(port uint32) of.Flow {
		return of.Flow{Table: 3, Priority: 100, Match: of.Match{}.InPort(7), Actions: []of.Action{of.Output{Port: port}}, Cookie: 42}
	}
	a := s.share(42, []of.Flow{flow(1), flow(2)})
	b := s.share(42, []of.Flow{flow(1), flow(2)})
	if &a[0] != &b[0] {
		t.Fatal("equal flows of one object are held twice")
	}
	if cap(a) != len(a) {
		t.Fatalf("shared slice has room to append into: len %d cap %d", len(a), cap(a))
	}
	c := s.share(42, []of.Flow{flow(1), flow(3)})
	if &c[0] == &a[0] || !c[1].Equal(flow(3)) {
		t.Fatalf("different flows were shared: %v", c)
	}
	if d := s.share(43, []of.Flow{flow(1), flow(2)}); &d[0] == &a[0] {
		t.Fatal("another object's flows were shared")
	}
	if n := len(s.m[42]); n != 2 {
		t.Fatalf("object 42 has %d variants, want 2", n)
	}
}
