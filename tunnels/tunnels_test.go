package tunnels_test

import (
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/golden"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/tunnels"
)

func TestGoldenPerChassis(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	v := f.View()
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		golden.Check(t, "three_chassis_"+c, of.FormatFlows((tunnels.App{}).Flows(v, topologytest.Bridge(c)), f.Names(c)))
	}
}

// TestNoEncapNoSteering: a chassis that does not terminate an
// encapsulation gets no tunnel to it, and a bridge without the tunnel port
// carries no network of that type off the chassis.
func TestNoEncapNoSteering(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	if _, err := f.Store.RegisterChassis(99, topology.ChassisSpec{Name: "hv2", EncapIP: "172.31.0.2", Encaps: []string{topology.TypeGRE}}); err != nil {
		t.Fatal(err)
	}
	v := f.View()
	for _, l := range of.FormatFlows((tunnels.App{}).Flows(v, topologytest.Bridge("hv1")), f.Names("hv1")) {
		if strings.Contains(l, "172.31.0.2") {
			t.Errorf("hv2 lost vxlan but hv1 still tunnels to it: %s", l)
		}
	}
	noGRE := topologytest.Bridge("hv1")
	delete(noGRE.TunnelPorts, topology.TypeGRE)
	localB := false
	for _, l := range of.FormatFlows((tunnels.App{}).Flows(v, noGRE), f.Names("hv1")) {
		if strings.Contains(l, "tun_id=0xc8") || strings.Contains(l, "gre0") {
			t.Errorf("a bridge without a gre port steers network B: %s", l)
		}
		// b1 (port key 4) still gets its local egress: B switches locally.
		if strings.Contains(l, "table=Egress, priority=100,reg7=0x4 actions=goto_table:Delivery") {
			localB = true
		}
	}
	if !localB {
		t.Error("without a gre port, network B's local ports lost their egress flows")
	}
}

// TestProbes: a bridge probes exactly the chassis it shares a network
// with, once each, with tunnel key 0 through the tunnel port of a shared
// network.
func TestProbes(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	v := f.View()
	render := func(c string) []string {
		var out []string
		for _, p := range tunnels.Probes(v, topologytest.Bridge(c)) {
			_, actions, _ := strings.Cut(of.Flow{Actions: p.Actions}.Format(f.Names(c)), "actions=")
			out = append(out, p.Remote.String()+" "+actions)
		}
		return out
	}
	for c, want := range map[string][]string{
		// hv1 shares A with hv2 and B with hv3.
		"hv1": {"172.31.0.2 set_field:172.31.0.2->tun_dst,set_field:0->tun_id,output:vxlan0",
			"172.31.0.3 set_field:172.31.0.3->tun_dst,set_field:0->tun_id,output:gre0"},
		// hv2 hosts only A, hv3 only B: neither tunnels to the other.
		"hv2": {"172.31.0.1 set_field:172.31.0.1->tun_dst,set_field:0->tun_id,output:vxlan0"},
		"hv3": {"172.31.0.1 set_field:172.31.0.1->tun_dst,set_field:0->tun_id,output:gre0"},
	} {
		if got := render(c); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s probes:\n got %q\nwant %q", c, got, want)
		}
	}
}

// TestProbesReachRoutedChassis: with router R between A and B, hv2 (only
// A) routes straight into hv3's tunnels (only B), so each probes the
// other too.
func TestProbesReachRoutedChassis(t *testing.T) {
	f := topologytest.Routed(t)
	v := f.View()
	for c, want := range map[string]string{"hv2": "172.31.0.1 172.31.0.3", "hv3": "172.31.0.1 172.31.0.2"} {
		var got []string
		for _, p := range tunnels.Probes(v, topologytest.Bridge(c)) {
			got = append(got, p.Remote.String())
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s probes %v, want %s", c, got, want)
		}
	}
}
