package nat_test

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/apps"
	"github.com/wyvern-sdn/wyvern/internal/golden"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/nat"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

var chassis = []string{"hv1", "hv2", "hv3"}

// TestGolden: every chassis' whole bridge for the external fixture, in
// proactive mode: a1's floating IP on hv1, R's SNAT on hv3 (the gateway
// chassis), hv2 sending to hv3, the vlan network's flows on hv2.
func TestGolden(t *testing.T) {
	f := topologytest.External(t)
	v := f.View()
	for _, c := range chassis {
		flows := append(pipeline.MissFlows(pipeline.Proactive, 0), apps.New(pipeline.Proactive).Flows(v, topologytest.ExternalBridge(c))...)
		golden.Check(t, "external_"+c+"_proactive", of.FormatFlows(flows, f.Names(c)))
	}
}

// grep is the formatted flows of a bridge that contain every substring.
func grep(flows []of.Flow, names *of.Names, subs ...string) []string {
	var out []string
	for _, line := range of.FormatFlows(flows, names) {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// TestFloatingIPIsServedWhereItsPortIs: the DNAT, the SNAT and the ARP
// answer of a1's floating IP are on hv1 alone; after a1 migrates to hv2
// they are on hv2 alone, and hv2 announces the floating IP with its own
// DVR MAC.
func TestFloatingIPIsServedWhereItsPortIs(t *testing.T) {
	f := topologytest.External(t)
	before := f.View()
	for _, c := range chassis {
		flows := nat.App{}.Flows(before, topologytest.ExternalBridge(c))
		dnat := grep(flows, f.Names(c), "nat(dst=10.0.0.2)", "nw_dst=203.0.113.20")
		snat := grep(flows, f.Names(c), "nat(src=203.0.113.20)", "nw_src=10.0.0.2")
		arp := grep(flows, f.Names(c), "arp_tpa=203.0.113.20")
		want := 0
		if c == "hv1" {
			want = 1
		}
		if len(dnat) != want || len(snat) != want || len(arp) != want {
			t.Errorf("%s: DNAT %q SNAT %q ARP %q, want %d of each", c, dnat, snat, arp, want)
		}
	}
	f.Rebind(t)(topologytest.Port{ID: "a1", Network: "A", Chassis: "hv2", OFPort: 7})
	after := f.View()
	for _, c := range chassis {
		n := len(grep(nat.App{}.Flows(after, topologytest.ExternalBridge(c)), f.Names(c), "nat(dst=10.0.0.2)"))
		if want := map[bool]int{true: 1, false: 0}[c == "hv2"]; n != want {
			t.Errorf("after the migration, %s holds %d DNAT flows of the floating IP, want %d", c, n, want)
		}
	}
	hv2, _ := after.Chassis("hv2")
	garps := nat.Announcements(before, after, topologytest.ExternalBridge("hv2"))
	if len(garps) != 1 || !slices.Equal(garps[0].Frame, nat.GratuitousARP(hv2.DVRMAC, netip.MustParseAddr("203.0.113.20"))) {
		t.Fatalf("hv2 announces %+v, want one gratuitous ARP of 203.0.113.20 at %s", garps, hv2.DVRMAC)
	}
	if got := garps[0].Actions; len(got) != 1 || got[0] != (of.Output{Port: topologytest.PhysicalPort}) {
		t.Errorf("the gratuitous ARP goes %v, want out the flat network's patch port untagged", got)
	}
	if g := nat.Announcements(before, after, topologytest.ExternalBridge("hv1")); len(g) != 0 {
		t.Errorf("hv1, which lost the floating IP, announces %v", g)
	}
}

// TestSNATRunsOnTheGatewayChassis: R's SNAT to its gateway address is on
// hv3, the only gateway chassis; hv1 and hv2 send what leaves R to hv3's
// gateway MAC; when hv3 is unreachable no chassis SNATs and hv1 sends
// nothing to it.
func TestSNATRunsOnTheGatewayChassis(t *testing.T) {
	f := topologytest.External(t)
	v := f.View()
	g, ok := v.RouterGateway("R")
	if !ok {
		t.Fatal("R has no gateway")
	}
	if c, ok := v.GatewayChassis("R"); !ok || c != "hv3" {
		t.Fatalf("R's gateway chassis is %q, want hv3", c)
	}
	for _, c := range chassis {
		flows := nat.App{}.Flows(v, topologytest.ExternalBridge(c))
		snat := grep(flows, f.Names(c), "nat(src="+g.IP.String()+")")
		toGW := grep(flows, f.Names(c), "set_field:"+g.MAC.String()+"->eth_dst")
		switch c {
		case "hv3":
			if len(snat) != 1 || len(toGW) != 0 {
				t.Errorf("hv3: SNAT %q, to the gateway %q", snat, toGW)
			}
		default:
			if len(snat) != 0 || len(toGW) == 0 {
				t.Errorf("%s: SNAT %q, to the gateway %q", c, snat, toGW)
			}
		}
	}
	f.Do(t, func(i uint64) error { _, err := f.Store.SetChassisReachable(i, "hv3", false); return err })
	v = f.View()
	if c, ok := v.GatewayChassis("R"); ok {
		t.Fatalf("with hv3 unreachable, R's gateway chassis is %s", c)
	}
	if n := len(grep(nat.App{}.Flows(v, topologytest.ExternalBridge("hv1")), f.Names("hv1"), g.MAC.String()+"->eth_dst")); n != 0 {
		t.Errorf("hv1 still sends to the gateway: %d flows", n)
	}
}

// TestVLANNetworkLeavesTagged: v1's network is vlan 100 on physnet1: hv2
// classifies it from the patch port by its tag and pops it, and floods and
// routes into it by pushing it, never through a tunnel.
func TestVLANNetworkLeavesTagged(t *testing.T) {
	f := topologytest.External(t)
	v := f.View()
	flows := apps.New(pipeline.Proactive).Flows(v, topologytest.ExternalBridge("hv2"))
	names := f.Names("hv2")
	if got := grep(flows, names, "table=Classifier", "in_port=physnet1", "dl_vlan=100", "pop_vlan"); len(got) != 1 {
		t.Errorf("classifier of the vlan network: %q", got)
	}
	flood := grep(flows, names, "table=Flood", "reg0=0/0x1", "push_vlan:0x8100", "set_field:4196->vlan_vid", "output:physnet1")
	if len(flood) != 1 {
		t.Errorf("flood of the vlan network: %q", flood)
	}
	for _, line := range grep(flows, names, "vlan_vid") {
		if strings.Contains(line, "tun_dst") {
			t.Errorf("a vlan network's flow tunnels: %s", line)
		}
	}
	// a1 (network A, hv1) routes to v1 on hv2 over the vlan: hv1's DVR
	// MAC, tagged, out the patch port.
	hv1, _ := v.Chassis("hv1")
	route := grep(apps.New(pipeline.Proactive).Flows(v, topologytest.ExternalBridge("hv1")), f.Names("hv1"),
		"table=L3Lookup", "nw_dst=10.2.0.2", "set_field:"+hv1.DVRMAC.String()+"->eth_src", "push_vlan:0x8100", "output:physnet1")
	if len(route) != 1 {
		t.Errorf("hv1's route to v1: %q", route)
	}
}

// TestBindingWithoutTheMappingIsRefused: a chassis with no bridge mapping
// of physnet1 never hosts a port of the vlan network.
func TestBindingWithoutTheMappingIsRefused(t *testing.T) {
	f := topologytest.External(t)
	f.Do(t, func(i uint64) error {
		_, err := f.Store.RegisterChassis(i, topology.ChassisSpec{Name: "hv4", EncapIP: "172.31.0.4",
			Encaps: []string{topology.TypeVXLAN}, DatapathID: "0000000000000004"})
		return err
	})
	f.AddPorts(t, topologytest.Port{ID: "v2", Network: "V", Chassis: "hv4", OFPort: 1})
	v := f.View()
	p := topologytest.MustPort(t, v, "v2")
	if p.Located() {
		t.Fatalf("v2 is located on %s", p.Chassis)
	}
	sp, _ := f.Store.Port("v2")
	if sp.VIFType != topology.VIFTypeBindingFailed {
		t.Errorf("v2's vif_type is %q, want %q", sp.VIFType, topology.VIFTypeBindingFailed)
	}
	if n := len(apps.New(pipeline.Proactive).Flows(v, topologytest.Bridge("hv4"))); n != 0 {
		t.Errorf("hv4 holds %d flows", n)
	}
}

// TestARPReplyTeachesANeighbour: an ARP reply from the physical network
// to hv3's gateway address is learned once; a second identical one is not
// written again; a reply claiming a port's address, an address outside
// the network, or answering an address the cloud does not ask from, is
// not learned.
func TestARPReplyTeachesANeighbour(t *testing.T) {
	f := topologytest.External(t)
	v := f.View()
	ext := topologytest.MustNetwork(t, v, "EXT")
	g, _ := v.RouterGateway("R")
	reply := func(mac string, ip string) app.Punt {
		sha, _ := net.ParseMAC(mac)
		pkt := of.Packet{EthType: of.EthTypeARP, ARPOp: of.ARPReply, ARPSHA: sha, ARPSPA: netip.MustParseAddr(ip),
			ARPTPA: g.IP, EthDst: g.MAC, EthSrc: sha}
		return app.Punt{Reason: pipeline.ReasonNeighbour, Packet: pkt,
			Fields: of.Match{}.Reg(pipeline.NetworkKey, uint64(ext.Key))}
	}
	br := topologytest.ExternalBridge("hv3")
	a := nat.App{}.OnPunt(v, br, reply("02:00:00:00:00:99", "203.0.113.99"))
	if a.Outcome != app.Learned || a.Learn == nil || a.Learn.IP != "203.0.113.99" || a.Learn.MAC != "02:00:00:00:00:99" {
		t.Fatalf("a new neighbour: %+v", a)
	}
	if a := (nat.App{}).OnPunt(v, br, reply("02:00:00:00:00:01", "203.0.113.1")); a.Learn != nil {
		t.Errorf("a known neighbour is written again: %+v", a.Learn)
	}
	if a := (nat.App{}).OnPunt(v, br, reply("02:00:00:00:00:66", "203.0.113.20")); a.Learn != nil {
		t.Errorf("the wire claimed a floating IP's address: %+v", a.Learn)
	}
	if a := (nat.App{}).OnPunt(v, br, reply("02:00:00:00:00:66", "192.0.2.1")); a.Learn != nil {
		t.Errorf("an address outside the network's subnets was learned: %+v", a.Learn)
	}
	unasked := reply("02:00:00:00:00:77", "203.0.113.77")
	unasked.Packet.ARPTPA = netip.MustParseAddr("203.0.113.99") // nobody of the cloud's
	if a := (nat.App{}).OnPunt(v, br, unasked); a.Learn != nil {
		t.Errorf("a reply to an address the cloud never asks from was learned: %+v", a.Learn)
	}
}
