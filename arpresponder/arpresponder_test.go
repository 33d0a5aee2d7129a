package arpresponder_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/arpresponder"
	"github.com/wyvern-sdn/wyvern/internal/golden"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

func TestGoldenPerChassis(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	v := topology.NewView(f.Store)
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		golden.Check(t, "three_chassis_"+c, pipeline.FormatFlows(arpresponder.Flows(v, topologytest.Bridge(c)), f.Names(c)))
	}
}

// TestSharedAddressIsNotAnswered: an address two ports claim (a VIP in
// both ports' allowed address pairs) gets no answer from the topology;
// a single-owner pair does.
func TestSharedAddressIsNotAnswered(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	pairs := func(ip string) *[]topology.AddressPair { return &[]topology.AddressPair{{IPAddress: ip}} }
	for _, u := range []struct {
		id  string
		aap *[]topology.AddressPair
	}{{"a1", pairs("10.0.0.100")}, {"a3", pairs("10.0.0.100")}, {"a2", pairs("10.0.0.200")}} {
		if _, err := f.Store.UpdatePort(100, topology.PortSpec{ID: u.id, AllowedAddressPairs: u.aap}); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Join(pipeline.FormatFlows(arpresponder.Flows(topology.NewView(f.Store), topologytest.Bridge("hv1")), nil), "\n")
	if strings.Contains(lines, "arp_tpa=10.0.0.100") {
		t.Error("a VIP two ports share is answered from the topology")
	}
	a2, _ := f.Store.Port("a2")
	if !strings.Contains(lines, "arp_tpa=10.0.0.200") || !strings.Contains(lines, "set_field:"+a2.MACAddress+"->eth_src") {
		t.Errorf("a2's single-owner pair is not answered with its MAC:\n%s", lines)
	}
}

// TestOnMissIsSubsetOfProactive: the reactive answer for every address is
// the proactive flow for it, verbatim; unknown addresses get nothing.
func TestOnMissIsSubsetOfProactive(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	v := topology.NewView(f.Store)
	br := topologytest.Bridge("hv1")
	proactive := pipeline.NewFlowSet(arpresponder.Flows(v, br)...)
	for _, n := range v.HostedNetworks("hv1") {
		for _, p := range v.NetworkPorts(n.ID) {
			ip := netip.MustParseAddr(p.FixedIPs[0].IPAddress)
			got := arpresponder.OnMiss(v, br, n.Key, ip)
			if len(got) != 1 {
				t.Fatalf("%s: OnMiss gave %d flows", p.ID, len(got))
			}
			if have, ok := proactive.Get(got[0].Key()); !ok || !have.Equal(got[0]) {
				t.Errorf("%s: %s is not in the proactive set", p.ID, got[0])
			}
		}
	}
	if got := arpresponder.OnMiss(v, br, 1, netip.MustParseAddr("10.0.0.99")); len(got) != 0 {
		t.Errorf("an unknown address got %v", got)
	}
}
