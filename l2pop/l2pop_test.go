package l2pop_test

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/golden"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/l2pop"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
	"github.com/wyvern-sdn/wyvern/tunnels"
)

func TestGoldenPerChassis(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	v := f.View()
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		golden.Check(t, "three_chassis_"+c, of.FormatFlows((l2pop.App{}).Flows(v, topologytest.Bridge(c)), f.Names(c)))
	}
}

// TestFloodReachesOnlyHostingChassis: head-end replication sends exactly
// one copy to each other chassis hosting the network and none elsewhere.
func TestFloodReachesOnlyHostingChassis(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	v := f.View()
	for _, fl := range (l2pop.App{}).Flows(v, topologytest.Bridge("hv1")) {
		if fl.Table != pipeline.Table(pipeline.Flood) {
			continue
		}
		nk, _ := fl.Match.Get(of.FieldMetadata)
		fromTunnel, _ := fl.Match.Get(of.FieldReg0)
		var dsts []uint64
		for _, a := range fl.Actions {
			if sf, ok := a.(of.SetField); ok && sf.Field == of.FieldTunDst {
				dsts = append(dsts, sf.Value)
			}
		}
		var want []uint64
		if fromTunnel.Value == 0 {
			switch nk.Value {
			case 1: // A: hv2
				want = []uint64{0xac1f0002}
			case 2: // B: hv3
				want = []uint64{0xac1f0003}
			}
		}
		if len(dsts) != len(want) || (len(want) == 1 && dsts[0] != want[0]) {
			t.Errorf("%s: copies to %x, want %x", fl, dsts, want)
		}
	}
}

// TestMoveLeavesNoTrace: when a3 moves from hv2 to hv3, no flow of hv2
// mentions it, hv1 steers it to hv3, and nothing else changes on hv1.
func TestMoveLeavesNoTrace(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	before := of.NewFlowSet((l2pop.App{}).Flows(f.View(), topologytest.Bridge("hv1"))...)
	f.Rebind(t)(topologytest.Port{ID: "a3", Network: "A", Chassis: "hv3", OFPort: 7})
	v := f.View()
	for _, fl := range (l2pop.App{}).Flows(v, topologytest.Bridge("hv2")) {
		t.Errorf("hv2 hosts nothing now, yet has %s", fl)
	}
	after := of.NewFlowSet((l2pop.App{}).Flows(v, topologytest.Bridge("hv1"))...)
	c := of.Diff(before, after)
	if len(c.Adds) != 0 || len(c.Deletes) != 0 || len(c.Modifies) != 1 {
		t.Fatalf("hv1 changes %s, want only the flood flow of A modified", c)
	}
	if s := c.Modifies[0].Format(f.Names("hv1")); !strings.Contains(s, "172.31.0.3") || strings.Contains(s, "172.31.0.2") {
		t.Fatalf("A's flood now: %s", s)
	}
}

// TestReactiveIsSubsetOfProactive: for every located port of every hosted
// network, OnMiss returns flows that the proactive set holds verbatim, and
// exactly the per-destination ones for that port.
func TestReactiveIsSubsetOfProactive(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	v := f.View()
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		br := topologytest.Bridge(c)
		proactive := of.NewFlowSet(append((l2pop.App{}).Flows(v, br), (tunnels.App{}).Flows(v, br)...)...)
		for _, n := range v.HostedNetworks(c) {
			for _, p := range v.NetworkPorts(n.ID) {
				mac := p.MAC
				got := l2pop.OnMiss(v, br, n.Key, mac)
				if len(got) != 2 {
					t.Errorf("%s: OnMiss for %s gave %d flows, want its L2Lookup and Egress flows", c, p.ID, len(got))
				}
				for _, fl := range got {
					have, ok := proactive.Get(fl.Key())
					if !ok || !have.Equal(fl) || !((l2pop.App{}).PerDestination(fl) || (tunnels.App{}).PerDestination(fl)) {
						t.Errorf("%s: reactive flow %s is not in the proactive set", c, fl)
					}
				}
			}
		}
		unknown, _ := net.ParseMAC("fa:16:3e:ff:ff:ff")
		if got := l2pop.OnMiss(v, br, 1, unknown); len(got) != 0 {
			t.Errorf("an unknown MAC got flows: %v", got)
		}
	}
}

// TestPairMACsAreKnown: a MAC of one port's allowed address pair is
// switched to that port like its own; a MAC two ports' pairs share (a
// VRRP virtual MAC) is left to the flood; a pair can never take another
// port's own MAC away from it.
func TestPairMACsAreKnown(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	a3, _ := f.Store.Port("a3")
	for i, u := range []struct{ id, ip, mac string }{
		{"a1", "10.0.0.50", "fa:16:3e:aa:00:01"}, // a1's alone
		{"a2", "10.0.0.51", "00:00:5e:00:01:07"}, // shared with a3
		{"a3", "10.0.0.51", "00:00:5e:00:01:07"}, // the shared VRRP MAC
		{"b1", "10.1.0.77", a3.MACAddress /* another network's port MAC: fine */},
	} {
		pairs := &[]topology.AddressPair{{IPAddress: u.ip, MACAddress: u.mac}}
		if _, err := f.Store.UpdatePort(uint64(100+i), topology.PortSpec{ID: u.id, AllowedAddressPairs: pairs}); err != nil {
			t.Fatal(err)
		}
	}
	v := f.View()
	lookup := map[string]string{}
	for _, fl := range (l2pop.App{}).Flows(v, topologytest.Bridge("hv1")) {
		if fl.Table != pipeline.Table(pipeline.L2Lookup) {
			continue
		}
		if dst, ok := fl.Match.Get(of.FieldEthDst); ok && dst.Mask == 0 || ok && dst.Mask == 0xffffffffffff {
			lookup[of.MACFromValue(dst.Value).String()] += fl.Format(nil)
		}
	}
	a1, _ := v.LocatedPort("a1")
	if got := lookup["fa:16:3e:aa:00:01"]; !strings.Contains(got, fmt.Sprintf("set_field:%#x->reg7", a1.Key)) {
		t.Errorf("a1's pair MAC: %q", got)
	}
	if got := lookup["00:00:5e:00:01:07"]; got != "" {
		t.Errorf("a MAC two ports share is switched: %q", got)
	}
	if got := lookup[a3.MACAddress]; strings.Count(got, "table=") != 2 || !strings.Contains(got, fmt.Sprintf("set_field:%#x->reg7", a3.Key)) {
		t.Errorf("a3's own MAC (and b1's pair of it, in B): %q", got)
	}
}

// TestReactiveEqualsProactiveWithPairsAndRouters: on the routed fixture,
// with a pair of a1's own MAC, one of its own MAC on b2, a VRRP MAC a2 and
// a3 share, and a pair on b1 with R's MAC on B, the flows OnMiss gives
// over every MAC the bridge's networks know are exactly the
// per-destination flows of the proactive set — no more, no fewer.
func TestReactiveEqualsProactiveWithPairsAndRouters(t *testing.T) {
	f := topologytest.Routed(t)
	rb, _ := f.Store.Port("R-B4")
	for i, u := range []struct{ id, ip, mac string }{{"a1", "10.0.0.50", ""}, {"b2", "10.1.0.50", "fa:16:3e:aa:00:50"},
		{"a2", "10.0.0.60", "00:00:5e:00:01:07"}, {"a3", "10.0.0.60", "00:00:5e:00:01:07"}, {"b1", "10.1.0.70", rb.MACAddress}} {
		pairs := &[]topology.AddressPair{{IPAddress: u.ip, MACAddress: u.mac}}
		if _, err := f.Store.UpdatePort(uint64(100+i), topology.PortSpec{ID: u.id, AllowedAddressPairs: pairs}); err != nil {
			t.Fatal(err)
		}
	}
	v := f.View()
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		br := topologytest.Bridge(c)
		want := of.NewFlowSet()
		for _, fl := range append((l2pop.App{}).Flows(v, br), (tunnels.App{}).Flows(v, br)...) {
			if (l2pop.App{}).PerDestination(fl) || (tunnels.App{}).PerDestination(fl) {
				want.Add(fl)
			}
		}
		got := of.NewFlowSet()
		for _, n := range v.HostedNetworks(c) {
			for _, p := range append(f.Store.Ports(), topology.Port{MACAddress: "fa:16:3e:ff:ff:ff"}) {
				macs := []string{p.MACAddress}
				for _, ap := range p.AllowedAddressPairs {
					macs = append(macs, ap.MACAddress)
				}
				for _, m := range macs {
					mac, _ := net.ParseMAC(m)
					for _, fl := range l2pop.OnMiss(v, br, n.Key, mac) {
						got.Add(fl)
					}
				}
			}
		}
		if !got.Equal(want) {
			t.Errorf("%s: reactive and proactive differ: %s", c, of.Diff(want, got))
		}
	}
}
