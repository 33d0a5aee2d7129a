package apps

import (
	"fmt"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// touching applies a change and reports, per chassis, whether its
// desired flows changed and how many flow keys the incremental update
// looked at (0: the change cost that bridge nothing).
func touching(t *testing.T, f *topologytest.Fixture, change func(), changes ...topology.Change) (changed []string, looked map[string]int) {
	t.Helper()
	p := New(pipeline.Proactive)
	before := view.Build(f.Store)
	desired := map[string]*Desired{}
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		desired[c] = p.Compute(before, topologytest.Bridge(c))
	}
	change()
	after := view.Build(f.Store)
	looked = map[string]int{}
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		br := topologytest.Bridge(c)
		was := of.NewFlowSet(desired[c].Flows()...)
		looked[c] = len(p.Update(desired[c], before, after, br, changes))
		if !of.Diff(was, of.NewFlowSet(desired[c].Flows()...)).Empty() {
			changed = append(changed, c)
		}
	}
	return changed, looked
}

// TestChangesReachOnlyTheirBridges: network A lives on hv1 and hv2, B on
// hv1 and hv3. A change alters the flows of the bridges it concerns and
// costs the others nothing: a port of A binding on hv1 touches hv1 and
// hv2 only; a move of a3 from hv2 to hv3 touches both ends and hv1; a
// change to an unbound port's status, and a subnet's new name, touch nobody; with
// router R on A and B, a port of B binding on hv3 reaches hv2, which
// hosts only A but routes to B, and so do hv3's new endpoint and A's MTU.
func TestChangesReachOnlyTheirBridges(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	check := func(what, want string, change func(), changes ...topology.Change) {
		t.Helper()
		changed, looked := touching(t, f, change, changes...)
		if got := fmt.Sprint(changed); got != want {
			t.Errorf("%s changes the flows of %s, want %s", what, got, want)
		}
		for _, c := range []string{"hv1", "hv2", "hv3"} {
			if !contains(changed, c) && looked[c] != 0 {
				t.Errorf("%s: %s, whose flows do not change, looked at %d flows", what, c, looked[c])
			}
		}
	}
	port := func(id string) topology.Change { return topology.Change{Resource: topology.ResourcePort, ID: id} }
	check("binding a4 on hv1", "[hv1 hv2]", func() {
		f.AddPorts(t, topologytest.Port{ID: "a4", Network: "A", Chassis: "hv1", OFPort: 9})
	}, port("a4"))
	check("moving a3 hv2->hv3", "[hv1 hv2 hv3]", func() {
		f.Rebind(t)(topologytest.Port{ID: "a3", Network: "A", Chassis: "hv3", OFPort: 4})
	}, port("a3"))
	check("a1x going ACTIVE", "[]", func() { f.Store.SetPortsActive(500, "hv1", []string{"a1x", "a1"}) }, port("a1x"), port("a1"))
	check("renaming a subnet", "[]", func() {
		name := "renamed"
		if _, err := f.Store.UpdateSubnet(501, topology.SubnetSpec{ID: "A4", Name: &name}); err != nil {
			t.Fatal(err)
		}
	}, topology.Change{Resource: topology.ResourceSubnet, ID: "A4"})

	f = topologytest.Routed(t)
	check("binding b3 on hv3 with R", "[hv1 hv2 hv3]", func() {
		f.AddPorts(t, topologytest.Port{ID: "b3", Network: "B", Chassis: "hv3", OFPort: 8})
	}, port("b3"))
	check("hv3's new endpoint", "[hv1 hv2]", func() {
		if _, err := f.Store.RegisterChassis(600, topology.ChassisSpec{Name: "hv3", EncapIP: "172.31.0.33",
			Encaps: []string{topology.TypeVXLAN, topology.TypeGRE}}); err != nil {
			t.Fatal(err)
		}
	}, topology.Change{Resource: topology.ResourceChassis, ID: "hv3"})
	check("A's MTU", "[hv1 hv2 hv3]", func() {
		mtu := 1400
		if _, err := f.Store.UpdateNetwork(601, topology.NetworkSpec{ID: "A", MTU: &mtu}); err != nil {
			t.Fatal(err)
		}
	}, topology.Change{Resource: topology.ResourceNetwork, ID: "A"})
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
