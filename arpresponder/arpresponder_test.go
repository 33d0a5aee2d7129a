package arpresponder_test

import (
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
