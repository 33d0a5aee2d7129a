package controller

import (
	"fmt"
	"sort"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
)

func keys(m map[string]bool) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}

// TestChangeReconcilesOnlyAffectedBridges: network A lives on hv1 and
// hv2, B on hv1 and hv3. A port of A binding on hv1 touches hv1 and hv2
// only; a move of a3 from hv2 to hv3 touches both ends and hv1; a change
// to an unbound port touches nobody.
func TestChangeReconcilesOnlyAffectedBridges(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	step := func(change func(), ch ...topology.Change) string {
		before := topology.NewView(f.Store)
		change()
		return keys(affectedChassis(before, topology.NewView(f.Store), ch))
	}
	if got := step(func() {
		f.AddPorts(t, topologytest.Port{ID: "a4", Network: "A", Chassis: "hv1", OFPort: 9})
	}, topology.Change{Resource: "port", ID: "a4"}); got != "[hv1 hv2]" {
		t.Errorf("bind a4 on hv1 touches %s, want [hv1 hv2]", got)
	}
	if got := step(func() {
		f.Rebind(t)(topologytest.Port{ID: "a3", Network: "A", Chassis: "hv3", OFPort: 4})
	}, topology.Change{Resource: "port", ID: "a3"}); got != "[hv1 hv2 hv3]" {
		t.Errorf("move a3 hv2->hv3 touches %s, want [hv1 hv2 hv3]", got)
	}
	if got := step(func() {}, topology.Change{Resource: "port", ID: "a1x"}); got != "[]" {
		t.Errorf("an unbound port touches %s, want nobody", got)
	}
	if got := step(func() {}, topology.Change{Resource: "network", ID: "B"}); got != "[hv1 hv3]" {
		t.Errorf("network B touches %s, want [hv1 hv3]", got)
	}
	if got := step(func() {}, topology.Change{Resource: "subnet", ID: "A4"}, topology.Change{Resource: "router", ID: "r"}); got != "[]" {
		t.Errorf("subnet and router changes touch %s, want nobody", got)
	}
}

// TestRouterChangesReachEveryRoutingChassis: a router's interfaces touch
// the hosts of its networks; with R on A and B, a port of B binding on
// hv3 touches hv2 too, which hosts only A but routes to B.
func TestRouterChangesReachEveryRoutingChassis(t *testing.T) {
	f := topologytest.ThreeChassis(t) // A on hv1, hv2; B on hv1, hv3
	step := func(change func(), ch ...topology.Change) string {
		before := topology.NewView(f.Store)
		change()
		return keys(affectedChassis(before, topology.NewView(f.Store), ch))
	}
	if got := step(func() { f.AddRouter(t, "R", "A4") }, topology.Change{Resource: "router", ID: "R"}); got != "[hv1 hv2]" {
		t.Errorf("R joining A touches %s, want A's hosts [hv1 hv2]", got)
	}
	if got := step(func() {
		if _, err := f.Store.AddRouterInterface(100, "R", "B4", "R-B4"); err != nil {
			t.Fatal(err)
		}
	}, topology.Change{Resource: "port", ID: "R-B4"}, topology.Change{Resource: "router", ID: "R"}); got != "[hv1 hv2 hv3]" {
		t.Errorf("R joining B touches %s, want [hv1 hv2 hv3]", got)
	}
	if got := step(func() {
		f.AddPorts(t, topologytest.Port{ID: "b3", Network: "B", Chassis: "hv3", OFPort: 8})
	}, topology.Change{Resource: "port", ID: "b3"}); got != "[hv1 hv2 hv3]" {
		t.Errorf("bind b3 on hv3 with R touches %s, want [hv1 hv2 hv3]", got)
	}
	// hv3 moving its tunnel endpoint: hv2 shares no network with hv3 but
	// routes to b2 and b3 there.
	if got := step(func() {
		if _, err := f.Store.RegisterChassis(300, topology.ChassisSpec{Name: "hv3", EncapIP: "172.31.0.33",
			Encaps: []string{topology.TypeVXLAN, topology.TypeGRE}}); err != nil {
			t.Fatal(err)
		}
	}, topology.Change{Resource: "chassis", ID: "hv3"}); got != "[hv1 hv2 hv3]" {
		t.Errorf("hv3's new encap address touches %s, want [hv1 hv2 hv3]", got)
	}
	// A's MTU is in R's MTU check on hv3 too, which hosts only B.
	if got := step(func() {
		mtu := 1400
		if _, err := f.Store.UpdateNetwork(301, topology.NetworkSpec{ID: "A", MTU: &mtu}); err != nil {
			t.Fatal(err)
		}
	}, topology.Change{Resource: "network", ID: "A"}); got != "[hv1 hv2 hv3]" {
		t.Errorf("A's new MTU touches %s, want [hv1 hv2 hv3]", got)
	}
	if got := step(func() { f.RemoveRouterInterface(t, "R", "A4") }, topology.Change{Resource: "router", ID: "R"}); got != "[hv1 hv2 hv3]" {
		t.Errorf("R leaving A touches %s, want [hv1 hv2 hv3] (A's hosts before, B's after)", got)
	}
}
