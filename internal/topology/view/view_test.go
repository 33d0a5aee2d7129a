package view_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
)

// TestNeighbourIsNeighboursEntry: the one-address lookup a punt uses gives
// exactly the entry of the network's whole table, for gateways, fixed IPs,
// pairs (own MAC or not), a VIP before and after it is announced, a pair
// claiming a gateway, and addresses nobody holds.
func TestNeighbourIsNeighboursEntry(t *testing.T) {
	f := topologytest.Routed(t)
	pairs := func(ps ...topology.AddressPair) *[]topology.AddressPair { return &ps }
	for i, u := range []struct {
		id  string
		aap *[]topology.AddressPair
	}{
		{"a1", pairs(topology.AddressPair{IPAddress: "10.0.0.100"}, topology.AddressPair{IPAddress: "10.0.0.2"})},
		{"a3", pairs(topology.AddressPair{IPAddress: "10.0.0.100"}, topology.AddressPair{IPAddress: "10.0.0.1"})},
		{"b2", pairs(topology.AddressPair{IPAddress: "10.1.0.50", MACAddress: "fa:16:3e:aa:00:50"}, topology.AddressPair{IPAddress: "10.1.0.0/28"})},
	} {
		if _, err := f.Store.UpdatePort(uint64(100+i), topology.PortSpec{ID: u.id, AllowedAddressPairs: u.aap}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		v := f.View()
		for _, network := range []string{"A", "B"} {
			table := map[netip.Addr]view.Neighbour{}
			for _, nb := range v.Neighbours(network) {
				table[nb.IP] = nb
			}
			for _, s := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.100", "10.0.0.99",
				"10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.5", "10.1.0.50"} {
				ip := netip.MustParseAddr(s)
				got, ok := v.Neighbour(network, ip)
				want, inTable := table[ip]
				if ok != inTable || fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s, %s %s: Neighbour %v (%v), table %v (%v)", when, network, s, got, ok, want, inTable)
				}
			}
		}
	}
	check("VIP unannounced")
	if _, err := f.Store.SetVIPOwner(200, "a3", "10.0.0.100"); err != nil {
		t.Fatal(err)
	}
	check("VIP at a3")
}

// TestWithChassisPorts: a chassis' own report of its plugged ports, laid
// over the replicated view: a port plugged there is located at once, one
// unplugged there is not, the others stay as they were, and the view it
// came from is unchanged.
func TestWithChassisPorts(t *testing.T) {
	f := topologytest.ThreeChassis(t) // a1 (1), a2 (2), b1 (3) on hv1; a1x unplugged
	v := f.View()
	d := v.WithChassisPorts("hv1", []topology.Binding{{PortID: "a1", OFPort: 1}, {PortID: "b1", OFPort: 3},
		{PortID: "a1x", OFPort: 9}, {PortID: "nosuch", OFPort: 5}})
	if p, ok := d.LocatedPort("a1x"); !ok || p.Chassis != "hv1" || p.OFPort != 9 {
		t.Fatalf("a1x plugged on hv1: %+v %v", p, ok)
	}
	if _, ok := d.LocatedPort("a2"); ok {
		t.Fatal("a2, no longer listed on hv1, is still located")
	}
	if p, ok := d.LocatedPort("a3"); !ok || p.Chassis != "hv2" {
		t.Fatal("a3 on hv2 moved")
	}
	if len(d.NetworkPorts("A")) != 3 || !d.Hosts("hv1", "A") {
		t.Fatalf("A's located ports: %v", d.NetworkPorts("A"))
	}
	if _, ok := v.LocatedPort("a1x"); ok || len(v.NetworkPorts("A")) != 3 {
		t.Fatal("the base view changed")
	}
	same := v.WithChassisPorts("hv1", []topology.Binding{{PortID: "a1", OFPort: 1}, {PortID: "a2", OFPort: 2}, {PortID: "b1", OFPort: 3}})
	if same != v {
		t.Fatal("a report that changes nothing derived a new view")
	}
}

// TestBuilderEqualsFreshBuild: views a builder derives one from the
// other, as a node builds them batch after batch, answer every question
// exactly as a view built afresh from the same store.
func TestBuilderEqualsFreshBuild(t *testing.T) {
	f := topologytest.Routed(t)
	var b view.Builder
	b.Build(f.Store)
	describe := func(v *view.View) string {
		var s strings.Builder
		for _, n := range []string{"A", "B"} {
			fmt.Fprintln(&s, n, v.NetworkHosts(n))
			for _, p := range v.AllNetworkPorts(n) {
				fmt.Fprintln(&s, p.ID, p.Key, p.Chassis, p.OFPort, p.MAC, p.FixedIPs, p.Located())
				for _, fip := range p.FixedIPs {
					fmt.Fprintln(&s, " addr", fip.Addr, v.AddressClaims(n, fip.Addr))
				}
				fmt.Fprintln(&s, " mac", v.MACClaims(n, p.MAC))
			}
			fmt.Fprintln(&s, v.Neighbours(n), v.SharedAddresses(n))
		}
		for _, c := range []string{"hv1", "hv2", "hv3"} {
			fmt.Fprintln(&s, c, v.HostedNetworks(c), len(v.LocalPorts(c)), v.ChassisRouters(c))
		}
		return s.String()
	}
	step := func(what string, op func(i uint64) error) {
		t.Helper()
		if err := op(uint64(500 + len(what))); err != nil {
			t.Fatal(err)
		}
		if got, want := describe(b.Build(f.Store)), describe(view.Build(f.Store)); got != want {
			t.Fatalf("after %s the builder's view differs:\n%s\nfrom a fresh one:\n%s", what, got, want)
		}
	}
	pair := func(ip, mac string) *[]topology.AddressPair {
		return &[]topology.AddressPair{{IPAddress: ip, MACAddress: mac}}
	}
	step("a new port", func(i uint64) error {
		_, err := f.Store.CreatePorts(i, []topology.PortSpec{{ID: "n1", NetworkID: str("A"), AllowedAddressPairs: pair("10.0.0.100", "fa:16:3e:aa:00:01")}})
		return err
	})
	step("a shared pair", func(i uint64) error {
		_, err := f.Store.UpdatePort(i, topology.PortSpec{ID: "a1", AllowedAddressPairs: pair("10.0.0.100", "fa:16:3e:aa:00:01")})
		return err
	})
	step("a move", func(i uint64) error {
		_, err := f.Store.ReportPorts(i, "hv3", []topology.Binding{{PortID: "a3", OFPort: 4}, {PortID: "b2", OFPort: 1}})
		return err
	})
	step("a deletion", func(i uint64) error { return f.Store.DeletePort(i, "a2") })
	step("an interface gone", func(i uint64) error { _, err := f.Store.RemoveRouterInterface(i, "R", "B4"); return err })
	step("a status", func(i uint64) error { f.Store.SetPortsActive(i, "hv1", []string{"a1", "b1"}); return nil })
}
func str(s string) *string { return &s }
