// Package topologytest builds topologies for the apps' tests through the
// store's own API, so fixtures obey the same rules as production.
package topologytest

import (
	"fmt"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Port names a port of the fixture: its network, chassis and ofport.
type Port struct {
	ID, Network, Chassis string
	OFPort               uint32
}

// Fixture is a built topology and the names to print its flows with.
type Fixture struct {
	Store *topology.Store
	index uint64
}

// Tunnel ports every fixture bridge has.
const (
	VXLANPort = 100
	GREPort   = 101
)

func str(s string) *string { return &s }

// ThreeChassis builds: chassis hv1 (172.31.0.1), hv2 (.2), hv3 (.3), all
// terminating vxlan and gre; network A (vxlan, segmentation id 100,
// 10.0.0.0/24) with ports a1, a2 on hv1 and a3 on hv2; network B (gre,
// segmentation id 200, 10.1.0.0/24) with port b1 on hv1 and b2 on hv3;
// and a1x, a port of A bound nowhere.
func ThreeChassis(t testing.TB) *Fixture {
	t.Helper()
	f := &Fixture{Store: topology.New(), index: 1}
	f.must(t, func(i uint64) error {
		seg100, seg200 := uint32(100), uint32(200)
		gre := topology.TypeGRE
		_, err := f.Store.CreateNetworks(i, []topology.NetworkSpec{
			{ID: "A", Name: str("A"), SegmentationID: &seg100},
			{ID: "B", Name: str("B"), NetworkType: &gre, SegmentationID: &seg200}})
		return err
	})
	f.must(t, func(i uint64) error {
		_, err := f.Store.CreateSubnets(i, []topology.SubnetSpec{
			{ID: "A4", NetworkID: str("A"), CIDR: str("10.0.0.0/24")},
			{ID: "B4", NetworkID: str("B"), CIDR: str("10.1.0.0/24")}})
		return err
	})
	for n, c := range []string{"hv1", "hv2", "hv3"} {
		f.must(t, func(i uint64) error {
			_, err := f.Store.RegisterChassis(i, topology.ChassisSpec{Name: c, EncapIP: fmt.Sprintf("172.31.0.%d", n+1),
				Encaps: []string{topology.TypeVXLAN, topology.TypeGRE}, DatapathID: fmt.Sprintf("%016x", n+1)})
			return err
		})
	}
	f.AddPorts(t, Port{"a1", "A", "hv1", 1}, Port{"a2", "A", "hv1", 2}, Port{"a3", "A", "hv2", 1},
		Port{"b1", "B", "hv1", 3}, Port{"b2", "B", "hv3", 1}, Port{"a1x", "A", "", 0})
	return f
}

func (f *Fixture) must(t testing.TB, op func(index uint64) error) {
	t.Helper()
	if err := op(f.index); err != nil {
		t.Fatal(err)
	}
	f.index++
}

// AddPorts creates ports and binds those with a chassis.
func (f *Fixture) AddPorts(t testing.TB, ports ...Port) {
	t.Helper()
	for _, p := range ports {
		f.must(t, func(i uint64) error {
			// No security groups (not even the project's default): the
			// fixtures' ports are unfiltered unless a test gives them some.
			_, err := f.Store.CreatePorts(i, []topology.PortSpec{{ID: p.ID, NetworkID: str(p.Network), Name: str(p.ID), SecurityGroups: []string{}}})
			return err
		})
	}
	f.Rebind(t)(ports...)
}

// Rebind returns a function that binds ports where they say, reporting
// each chassis' complete set as an agent would.
func (f *Fixture) Rebind(t testing.TB) func(...Port) {
	return func(ports ...Port) {
		t.Helper()
		byChassis := map[string][]topology.Binding{}
		for _, p := range f.Store.Ports() {
			if p.Located() {
				byChassis[p.HostID] = append(byChassis[p.HostID], topology.Binding{PortID: p.ID, OFPort: p.OFPort})
			}
		}
		for _, p := range ports {
			for c, bs := range byChassis { // a port moving leaves its old chassis
				for i, b := range bs {
					if b.PortID == p.ID && c != p.Chassis {
						byChassis[c] = append(bs[:i], bs[i+1:]...)
						break
					}
				}
			}
			if p.Chassis != "" {
				byChassis[p.Chassis] = append(byChassis[p.Chassis], topology.Binding{PortID: p.ID, OFPort: p.OFPort})
			}
		}
		for _, c := range f.Store.Chassis() {
			f.must(t, func(i uint64) error { _, err := f.Store.SetBindings(i, c.Name, byChassis[c.Name]); return err })
		}
	}
}

// Bridge is the facts of a fixture chassis' bridge.
func Bridge(chassis string) view.Bridge {
	return view.Bridge{Chassis: chassis, TunnelPorts: map[string]uint32{topology.TypeVXLAN: VXLANPort, topology.TypeGRE: GREPort}}
}

// Names prints the fixture's ports by name on a chassis' bridge.
func (f *Fixture) Names(chassis string) *of.Names {
	n := &of.Names{Tables: pipeline.TableNames(), Ports: map[uint32]string{VXLANPort: "vxlan0", GREPort: "gre0", PhysicalPort: "physnet1"}}
	for _, p := range f.Store.Ports() {
		if p.HostID == chassis && p.OFPort != 0 {
			n.Ports[p.OFPort] = p.ID
		}
	}
	return n
}

// Routed is ThreeChassis with router R joining A's subnet A4 (10.0.0.0/24,
// vxlan) and B's subnet B4 (10.1.0.0/24, gre) at their gateways 10.0.0.1
// and 10.1.0.1.
func Routed(t testing.TB) *Fixture {
	t.Helper()
	f := ThreeChassis(t)
	f.AddRouter(t, "R", "A4", "B4")
	return f
}

// AddRouter creates a router and plugs it into subnets, each interface a
// port named <router>-<subnet>.
func (f *Fixture) AddRouter(t testing.TB, id string, subnets ...string) {
	t.Helper()
	f.must(t, func(i uint64) error {
		_, err := f.Store.CreateRouters(i, []topology.RouterSpec{{ID: id, Name: str(id)}})
		return err
	})
	for _, sn := range subnets {
		f.must(t, func(i uint64) error {
			_, err := f.Store.AddRouterInterface(i, id, sn, id+"-"+sn)
			return err
		})
	}
}

// RemoveRouterInterface unplugs a router from a subnet.
func (f *Fixture) RemoveRouterInterface(t testing.TB, router, subnet string) {
	t.Helper()
	f.must(t, func(i uint64) error { _, err := f.Store.RemoveRouterInterface(i, router, subnet); return err })
}

// Large builds a cloud for benchmarks: chassis hv1..hvC (172.31.x.y),
// network A (vxlan, 10.0.0.0/16) with ports p1..pN bound round robin over
// them, ofport = the port's number.
func Large(t testing.TB, chassis, ports int) *Fixture {
	t.Helper()
	f := &Fixture{Store: topology.New(), index: 1}
	f.must(t, func(i uint64) error {
		_, err := f.Store.CreateNetworks(i, []topology.NetworkSpec{{ID: "A", Name: str("A")}})
		return err
	})
	f.must(t, func(i uint64) error {
		_, err := f.Store.CreateSubnets(i, []topology.SubnetSpec{{ID: "A4", NetworkID: str("A"), CIDR: str("10.0.0.0/16")}})
		return err
	})
	for c := 1; c <= chassis; c++ {
		f.must(t, func(i uint64) error {
			_, err := f.Store.RegisterChassis(i, topology.ChassisSpec{Name: fmt.Sprintf("hv%d", c),
				EncapIP: fmt.Sprintf("172.31.%d.%d", c/250, c%250+1), Encaps: []string{topology.TypeVXLAN, topology.TypeGRE}})
			return err
		})
	}
	specs := make([]topology.PortSpec, ports)
	for p := range specs {
		specs[p] = topology.PortSpec{ID: fmt.Sprintf("p%d", p+1), NetworkID: str("A"), SecurityGroups: []string{}}
	}
	f.must(t, func(i uint64) error { _, err := f.Store.CreatePorts(i, specs); return err })
	bindings := map[string][]topology.Binding{}
	for p := 1; p <= ports; p++ {
		c := fmt.Sprintf("hv%d", (p-1)%chassis+1)
		bindings[c] = append(bindings[c], topology.Binding{PortID: fmt.Sprintf("p%d", p), OFPort: uint32(p)})
	}
	for c, bs := range bindings {
		f.must(t, func(i uint64) error { _, err := f.Store.SetBindings(i, c, bs); return err })
	}
	return f
}

// View is the typed view of the fixture's store as it is now.
func (f *Fixture) View() *view.View { return view.Build(f.Store) }

// MustPort returns a port of a view, or fails the test.
func MustPort(t testing.TB, v *view.View, id string) view.Port {
	t.Helper()
	p, ok := v.Port(id)
	if !ok {
		t.Fatalf("no port %s", id)
	}
	return p
}

// MustNetwork returns a network of a view, or fails the test.
func MustNetwork(t testing.TB, v *view.View, id string) view.Network {
	t.Helper()
	n, ok := v.Network(id)
	if !ok {
		t.Fatalf("no network %s", id)
	}
	return n
}
