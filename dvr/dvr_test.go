package dvr_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/dvr"
	"github.com/wyvern-sdn/wyvern/internal/apps"
	"github.com/wyvern-sdn/wyvern/internal/golden"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

var chassis = []string{"hv1", "hv2", "hv3"}

// leg is router R's interface on a subnet of the routed fixture.
func leg(t *testing.T, v *view.View, subnet string) view.RouterInterface {
	t.Helper()
	for _, ri := range v.RouterInterfaces("R") {
		if ri.Subnet == subnet {
			return ri
		}
	}
	t.Fatalf("R has no interface on %s", subnet)
	return view.RouterInterface{}
}

// TestGoldenProactive: the whole bridge of each chassis of the routed
// fixture in proactive mode — routes, router MACs in L2Lookup, gateway
// answers, DVR MAC restores in Delivery — as one golden file each.
func TestGoldenProactive(t *testing.T) {
	f := topologytest.Routed(t)
	v := f.View()
	for _, c := range chassis {
		flows := append(pipeline.MissFlows(pipeline.Proactive, 0), apps.New(pipeline.Proactive).Flows(v, topologytest.Bridge(c))...)
		golden.Check(t, "routed_"+c+"_proactive", of.FormatFlows(flows, f.Names(c)))
	}
}

// TestGoldenReactive: what each bridge holds in reactive mode before any
// traffic, and then after one packet to every address the router can
// reach has been punted and answered.
func TestGoldenReactive(t *testing.T) {
	f := topologytest.Routed(t)
	v := f.View()
	for _, c := range chassis {
		br := topologytest.Bridge(c)
		flows := append(pipeline.MissFlows(pipeline.Reactive, 0), apps.New(pipeline.Reactive).Flows(v, br)...)
		golden.Check(t, "routed_"+c+"_reactive_cold", of.FormatFlows(flows, f.Names(c)))
		r, _ := v.Router("R")
		for _, dst := range []string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.1.0.2", "10.1.0.3"} {
			flows = append(flows, dvr.OnMiss(v, br, r.Key, netip.MustParseAddr(dst))...)
		}
		golden.Check(t, "routed_"+c+"_reactive_routed", of.FormatFlows(flows, f.Names(c)))
	}
}

// TestReactiveIsSubsetOfProactive: every route OnMiss gives is verbatim in
// the proactive set, one per located address of the router's subnets, and
// the proactive set holds no route OnMiss would not give.
func TestReactiveIsSubsetOfProactive(t *testing.T) {
	f := topologytest.Routed(t)
	v := f.View()
	r, _ := v.Router("R")
	for _, c := range chassis {
		br := topologytest.Bridge(c)
		proactive := of.NewFlowSet((dvr.App{}).Flows(v, br)...)
		routes := 0
		for _, fl := range (dvr.App{}).Flows(v, br) {
			if (dvr.App{}).PerDestination(fl) {
				routes++
			}
		}
		got := 0
		for _, p := range f.Store.Ports() {
			if !p.Located() {
				continue
			}
			for _, fip := range p.FixedIPs {
				flows := dvr.OnMiss(v, br, r.Key, netip.MustParseAddr(fip.IPAddress))
				if len(flows) != 1 {
					t.Fatalf("%s: OnMiss for %s (%s) gave %d flows, want its route", c, fip.IPAddress, p.ID, len(flows))
				}
				have, ok := proactive.Get(flows[0].Key())
				if !ok || !have.Equal(flows[0]) || !(dvr.App{}).PerDestination(flows[0]) {
					t.Errorf("%s: reactive route %s is not in the proactive set", c, flows[0])
				}
				got++
			}
		}
		if got != routes {
			t.Errorf("%s: %d routes proactive, %d reachable reactively", c, routes, got)
		}
		for _, dst := range []string{"10.0.0.1", "10.0.0.99", "10.1.0.1", "192.168.0.1"} {
			if flows := dvr.OnMiss(v, br, r.Key, netip.MustParseAddr(dst)); len(flows) != 0 {
				t.Errorf("%s: %s is no VM's, yet OnMiss routes it: %v", c, dst, flows)
			}
		}
		if flows := dvr.OnMiss(v, br, r.Key+1, netip.MustParseAddr("10.1.0.2")); len(flows) != 0 {
			t.Errorf("%s: an unknown router routes: %v", c, flows)
		}
	}
}

// TestRouteRewrites: hv1 routes a1 (A, vxlan) → b2 (B, gre, on hv3) with
// hv1's DVR MAC as the source, straight into the GRE tunnel to hv3 with
// B's key; and a2 → b1, both on hv1, with the router's MAC on B and no
// tunnel at all.
func TestRouteRewrites(t *testing.T) {
	f := topologytest.Routed(t)
	v := f.View()
	r, _ := v.Router("R")
	br := topologytest.Bridge("hv1")
	hv1, _ := v.Chassis("hv1")
	onB := leg(t, v, "B4")
	b1, _ := v.LocatedPort("b1")
	b2, _ := v.LocatedPort("b2")
	remote := dvr.OnMiss(v, br, r.Key, b2.FixedIPs[0].Addr)[0].Format(f.Names("hv1"))
	for _, want := range []string{"set_field:" + hv1.DVRMAC.String() + "->eth_src", "set_field:" + b2.MAC.String() + "->eth_dst",
		"dec_ttl", "set_field:172.31.0.3->tun_dst", "set_field:0xc8->tun_id", "output:gre0"} {
		if !strings.Contains(remote, want) {
			t.Errorf("route to b2 on hv3 lacks %q: %s", want, remote)
		}
	}
	if strings.Contains(remote, onB.MAC.String()) {
		t.Errorf("a route leaving hv1 carries the router MAC: %s", remote)
	}
	local := dvr.OnMiss(v, br, r.Key, b1.FixedIPs[0].Addr)[0].Format(f.Names("hv1"))
	for _, want := range []string{"set_field:" + onB.MAC.String() + "->eth_src", "set_field:" + b1.MAC.String() + "->eth_dst",
		"dec_ttl", "goto_table:Delivery"} {
		if !strings.Contains(local, want) {
			t.Errorf("route to b1 on hv1 lacks %q: %s", want, local)
		}
	}
	if strings.Contains(local, "tun_dst") || strings.Contains(local, hv1.DVRMAC.String()) {
		t.Errorf("a local route tunnels or uses the DVR MAC: %s", local)
	}
}

// TestRemovedInterfaceLeavesNoTrace: after R leaves B4, no bridge has a
// route to B, B's router MAC, B's gateway answer or a DVR restore on B;
// after R leaves A4 too, no DVR flow is left anywhere.
func TestRemovedInterfaceLeavesNoTrace(t *testing.T) {
	f := topologytest.Routed(t)
	v := f.View()
	onA, onB := leg(t, v, "A4"), leg(t, v, "B4")
	dump := func(c string) string { // DHCP's requests to the gateway stay: they are the subnet's, not the router's
		var fs []of.Flow
		for _, fl := range apps.New(pipeline.Proactive).Flows(f.View(), topologytest.Bridge(c)) {
			if pipeline.Cookie(fl.Cookie).App() != pipeline.AppDHCP {
				fs = append(fs, fl)
			}
		}
		return strings.Join(of.FormatFlows(fs, nil), "\n")
	}
	for _, c := range chassis {
		if !strings.Contains(dump(c), "nw_dst=10.1.0.") {
			t.Fatalf("%s has no route to B before the removal", c)
		}
	}
	f.RemoveRouterInterface(t, "R", "B4")
	for _, c := range chassis {
		d := dump(c)
		for _, gone := range []string{onB.MAC.String(), "nw_dst=10.1.0.", "arp_tpa=10.1.0.1,"} {
			if strings.Contains(d, gone) {
				t.Errorf("%s still has %q after R left B4", c, gone)
			}
		}
	}
	f.RemoveRouterInterface(t, "R", "A4")
	for _, c := range chassis {
		for _, fl := range apps.New(pipeline.Proactive).Flows(f.View(), topologytest.Bridge(c)) {
			if pipeline.Cookie(fl.Cookie).App() == pipeline.AppDVR || fl.Table == pipeline.Table(pipeline.L3Lookup) ||
				pipeline.Cookie(fl.Cookie).Kind() == pipeline.KindRouter {
				t.Errorf("%s keeps a DVR flow with no interface left: %s", c, fl)
			}
			if s := fl.String(); strings.Contains(s, onA.MAC.String()) || strings.Contains(s, "fa:16:3f") {
				t.Errorf("%s keeps a router or DVR MAC: %s", c, s)
			}
		}
	}
}

// TestRouterDownRoutesNothing: a router with admin_state_up false has no
// flows, and its gateways are not answered.
func TestRouterDownRoutesNothing(t *testing.T) {
	f := topologytest.Routed(t)
	down := false
	if _, err := f.Store.UpdateRouter(1000, topology.RouterSpec{ID: "R", AdminStateUp: &down}); err != nil {
		t.Fatal(err)
	}
	v := f.View()
	for _, c := range chassis {
		for _, fl := range apps.New(pipeline.Proactive).Flows(v, topologytest.Bridge(c)) {
			if pipeline.Cookie(fl.Cookie).App() == pipeline.AppDHCP {
				continue // the DHCP server answers for the gateway address while the router does not
			}
			if s := fl.String(); fl.Table == pipeline.Table(pipeline.L3Lookup) || strings.Contains(s, "arp_tpa=10.0.0.1,") {
				t.Errorf("%s: a router that is down still has %s", c, s)
			}
		}
	}
}

// frame builds an Ethernet/IPv4 frame with a payload.
func frame(src, dst net.HardwareAddr, ipSrc, ipDst string, ttl, proto uint8, payload []byte) []byte {
	b := append(append(append([]byte{}, dst...), src...), 0x08, 0x00)
	ip := []byte{0x45, 0, 0, 0, 0x12, 0x34, 0, 0, ttl, proto, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(payload)))
	ip = append(ip, netip.MustParseAddr(ipSrc).AsSlice()...)
	ip = append(ip, netip.MustParseAddr(ipDst).AsSlice()...)
	return append(append(b, ip...), payload...)
}

// TestTimeExceeded: a TTL 1 echo request from a1 to b2 is answered from
// A's gateway, to a1's MAC, with a correct ICMP time exceeded quoting the
// request; an ICMP error or a later fragment gets no answer.
func TestTimeExceeded(t *testing.T) {
	f := topologytest.Routed(t)
	v := f.View()
	r, _ := v.Router("R")
	a, _ := v.Network("A")
	a1, _ := v.LocatedPort("a1")
	onA := leg(t, v, "A4")
	src := a1.MAC
	echo := []byte{8, 0, 0xf7, 0xfe, 0, 1, 0, 0, 'p', 'i', 'n', 'g', '!', '!'}
	in := frame(src, onA.MAC, a1.FixedIPs[0].Addr.String(), "10.1.0.3", 1, of.IPProtoICMP, echo)
	out, err := dvr.TimeExceeded(v, r.Key, a.Key, in)
	if err != nil {
		t.Fatal(err)
	}
	pkt, err := of.ParsePacket(out)
	if err != nil {
		t.Fatal(err)
	}
	if pkt.EthDst.String() != a1.MAC.String() || pkt.EthSrc.String() != onA.MAC.String() ||
		pkt.IPSrc.String() != "10.0.0.1" || pkt.IPDst.String() != a1.FixedIPs[0].Addr.String() || pkt.IPProto != of.IPProtoICMP {
		t.Fatalf("answer %+v", pkt)
	}
	ip := out[14:]
	if sum(ip[:20]) != 0xffff || sum(ip[20:]) != 0xffff {
		t.Errorf("checksums do not verify: ip %#x icmp %#x", sum(ip[:20]), sum(ip[20:]))
	}
	if ip[20] != 11 || ip[21] != 0 {
		t.Errorf("ICMP type %d code %d, want 11/0", ip[20], ip[21])
	}
	if quoted := ip[28:]; string(quoted) != string(in[14:14+28]) {
		t.Errorf("quote %x, want the IP header and 8 bytes %x", quoted, in[14:14+28])
	}
	// An 802.1Q-tagged frame is answered too (untagged), quoting the IP
	// header that follows the tag.
	tagged := append(append(append([]byte{}, in[:12]...), 0x81, 0x00, 0x00, 0x05), in[12:]...)
	if out, err := dvr.TimeExceeded(v, r.Key, a.Key, tagged); err != nil || string(out[14+20+8:]) != string(in[14:14+28]) {
		t.Errorf("a tagged frame: %v, quote %x", err, out)
	}
	// A short packet padded to Ethernet's minimum: the padding is not
	// quoted.
	short := append(frame(src, onA.MAC, a1.FixedIPs[0].Addr.String(), "10.1.0.3", 1, of.IPProtoUDP, []byte{0, 1, 0, 2}), make([]byte, 22)...)
	if out, err := dvr.TimeExceeded(v, r.Key, a.Key, short); err != nil || len(out) != 14+20+8+24 {
		t.Errorf("a padded 24-byte packet: answer of %d bytes (%v), want %d quoting 24", len(out), err, 14+20+8+24)
	}
	for name, bad := range map[string][]byte{
		"an ICMP error": frame(src, onA.MAC, "10.0.0.2", "10.1.0.3", 1, of.IPProtoICMP, []byte{3, 1, 0, 0, 0, 0, 0, 0}),
		"ARP":           append(append(append([]byte{}, onA.MAC...), src...), 0x08, 0x06),
		"a short frame": {1, 2, 3},
	} {
		if out, err := dvr.TimeExceeded(v, r.Key, a.Key, bad); err == nil {
			t.Errorf("%s got an answer: %x", name, out)
		}
	}
	later := frame(src, onA.MAC, "10.0.0.2", "10.1.0.3", 1, of.IPProtoUDP, make([]byte, 8))
	later[14+6] = 0x00
	later[14+7] = 0x10 // fragment offset 16
	if _, err := dvr.TimeExceeded(v, r.Key, a.Key, later); err == nil {
		t.Error("a later fragment got an answer")
	}
	if _, err := dvr.TimeExceeded(v, r.Key+1, a.Key, in); err == nil {
		t.Error("an unknown router answered")
	}
}

// sum is the one's complement sum of b; a header with a correct checksum
// sums to 0xffff.
func sum(b []byte) uint16 {
	var s uint32
	for ; len(b) > 1; b = b[2:] {
		s += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// FuzzTimeExceeded: any punted frame gets an answer or an error, never a
// panic, and an answer is a well-formed ICMP error of the type asked for
// (time exceeded, fragmentation needed).
func FuzzTimeExceeded(f *testing.F) {
	fx := topologytest.Routed(f)
	v := view.Build(fx.Store)
	src, _ := net.ParseMAC("fa:16:3e:00:00:01")
	f.Add(frame(src, src, "10.0.0.2", "10.1.0.3", 1, 1, []byte{8, 0, 0, 0, 0, 0, 0, 0}))
	f.Add(frame(src, src, "10.1.0.2", "10.0.0.3", 64, 17, make([]byte, 1440)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for typ, build := range map[byte]func(*view.View, uint32, uint32, []byte) ([]byte, error){
			11: dvr.TimeExceeded, 3: dvr.FragmentationNeeded} {
			for _, network := range []uint32{1, 2} {
				out, err := build(v, 1, network, b)
				if err != nil {
					continue
				}
				pkt, err := of.ParsePacket(out)
				if err != nil || pkt.IPProto != of.IPProtoICMP || out[14+20] != typ {
					t.Fatalf("answer %x: %v", out, err)
				}
			}
		}
	})
}

// TestRoutesToAddressPairsAndVIPs: the router reaches what the ARP
// responder answers for — a single-address pair of b2 (with the pair's
// MAC), and a VIP shared by a1 and a3 at whichever announced it last —
// and a VIP nobody has announced is not routed. hv2 (hosts only A) routes
// b2's pair into GRE; the VIP follows its holder.
func TestRoutesToAddressPairsAndVIPs(t *testing.T) {
	f := topologytest.Routed(t)
	pair := func(ip, mac string) *[]topology.AddressPair {
		return &[]topology.AddressPair{{IPAddress: ip, MACAddress: mac}}
	}
	for i, u := range []struct {
		id  string
		aap *[]topology.AddressPair
	}{{"b2", pair("10.1.0.50", "fa:16:3e:aa:00:50")}, {"a1", pair("10.0.0.100", "")}, {"a3", pair("10.0.0.100", "")}} {
		if _, err := f.Store.UpdatePort(uint64(100+i), topology.PortSpec{ID: u.id, AllowedAddressPairs: u.aap}); err != nil {
			t.Fatal(err)
		}
	}
	br := topologytest.Bridge("hv2")
	routeTo := func(dst string) string {
		v := f.View()
		r, _ := v.Router("R")
		got := dvr.OnMiss(v, br, r.Key, netip.MustParseAddr(dst))
		if len(got) == 0 {
			return ""
		}
		return got[0].Format(f.Names("hv2"))
	}
	if got := routeTo("10.1.0.50"); !strings.Contains(got, "fa:16:3e:aa:00:50->eth_dst") || !strings.Contains(got, "output:gre0") {
		t.Errorf("route to b2's pair: %q", got)
	}
	if got := routeTo("10.0.0.100"); got != "" {
		t.Errorf("a VIP nobody announced is routed: %s", got)
	}
	a1, _ := f.Store.Port("a1")
	a3, _ := f.Store.Port("a3")
	if _, err := f.Store.SetVIPOwner(200, "a1", "10.0.0.100"); err != nil {
		t.Fatal(err)
	}
	if got := routeTo("10.0.0.100"); !strings.Contains(got, a1.MACAddress+"->eth_dst") || !strings.Contains(got, "172.31.0.1->tun_dst") {
		t.Errorf("route to the VIP held by a1 (hv1): %q", got)
	}
	if _, err := f.Store.SetVIPOwner(201, "a3", "10.0.0.100"); err != nil {
		t.Fatal(err)
	}
	if got := routeTo("10.0.0.100"); !strings.Contains(got, a3.MACAddress+"->eth_dst") || !strings.Contains(got, "goto_table:Delivery") {
		t.Errorf("route to the VIP held by a3 (hv2, local): %q", got)
	}
	// hv3 delivers what is routed to b2's pair with R's MAC on B.
	v := f.View()
	var restored bool
	for _, fl := range apps.New(pipeline.Reactive).Flows(v, topologytest.Bridge("hv3")) {
		if s := fl.Format(nil); strings.Contains(s, "nw_dst=10.1.0.50") && strings.Contains(s, fmt.Sprintf("table=%d,", pipeline.Table(pipeline.Delivery))) && strings.Contains(s, "->eth_src") {
			restored = true
		}
	}
	if !restored {
		t.Error("hv3 has no DVR MAC restore for b2's pair address")
	}
	// The routed frame arrives at hv3 addressed to the pair's MAC: hv3's
	// L2Lookup must know it as b2's, or it would be flooded and miss the
	// restore.
	b2, _ := v.LocatedPort("b2")
	var known bool
	for _, fl := range apps.New(pipeline.Proactive).Flows(v, topologytest.Bridge("hv3")) {
		if s := fl.Format(nil); strings.Contains(s, "dl_dst=fa:16:3e:aa:00:50") && strings.Contains(s, fmt.Sprintf("set_field:%#x->reg7", b2.Key)) {
			known = true
		}
	}
	if !known {
		t.Error("hv3's L2Lookup does not send b2's pair MAC to b2")
	}
}

// TestFragmentationNeeded: a 1458-byte packet from b1 (B, GRE, MTU 1458)
// to a2 (A, VXLAN, MTU 1450) is answered from B's gateway with "fragmentation
// needed" and a next-hop MTU of 1450; a packet that fits gets no answer.
// On hv1 the router checks packets to A, the smaller network, and only
// those.
func TestFragmentationNeeded(t *testing.T) {
	f := topologytest.Routed(t)
	v := f.View()
	r, _ := v.Router("R")
	netA, _ := v.Network("A")
	netB, _ := v.Network("B")
	if netA.MTU != 1450 || netB.MTU != 1458 {
		t.Fatalf("fixture MTUs A %d, B %d", netA.MTU, netB.MTU)
	}
	b1, _ := v.LocatedPort("b1")
	onB := leg(t, v, "B4")
	src := b1.MAC
	big := frame(src, onB.MAC, b1.FixedIPs[0].Addr.String(), "10.0.0.3", 64, of.IPProtoUDP, make([]byte, 1458-20))
	out, err := dvr.FragmentationNeeded(v, r.Key, netB.Key, big)
	if err != nil {
		t.Fatal(err)
	}
	pkt, _ := of.ParsePacket(out)
	ip := out[14:]
	if pkt.IPSrc.String() != "10.1.0.1" || pkt.EthDst.String() != b1.MAC.String() || ip[20] != 3 || ip[21] != 4 ||
		binary.BigEndian.Uint16(ip[26:]) != 1450 || sum(ip[20:]) != 0xffff {
		t.Errorf("answer from %s to %s, type %d code %d, next-hop MTU %d", pkt.IPSrc, pkt.EthDst, ip[20], ip[21], binary.BigEndian.Uint16(ip[26:]))
	}
	fits := frame(src, onB.MAC, b1.FixedIPs[0].Addr.String(), "10.0.0.3", 64, of.IPProtoUDP, make([]byte, 1450-20))
	if _, err := dvr.FragmentationNeeded(v, r.Key, netB.Key, fits); err == nil {
		t.Error("a packet that fits A's MTU got fragmentation needed")
	}
	var checks []string
	for _, fl := range (dvr.App{}).Flows(v, topologytest.Bridge("hv1")) {
		if fl.Priority == dvr.PriorityMTUCheck {
			checks = append(checks, fl.Format(nil))
		}
	}
	if len(checks) != 1 || !strings.Contains(checks[0], "nw_dst=10.0.0.0/24") || !strings.Contains(checks[0], "check_pkt_larger(1464)") {
		t.Errorf("hv1's MTU checks: %v", checks)
	}
}

// TestPairCannotTakeTheRouterMAC: a port's allowed pair with the router's
// MAC on its network gets no L2Lookup flow; only the router's flow
// switches that MAC (two flows at one priority would leave the choice to
// the switch).
func TestPairCannotTakeTheRouterMAC(t *testing.T) {
	f := topologytest.Routed(t)
	v := f.View()
	onA := leg(t, v, "A4")
	pair := &[]topology.AddressPair{{IPAddress: "10.0.0.200", MACAddress: onA.MAC.String()}}
	if _, err := f.Store.UpdatePort(1000, topology.PortSpec{ID: "a3", AllowedAddressPairs: pair}); err != nil {
		t.Fatal(err)
	}
	for _, c := range chassis {
		var lookups []string
		for _, fl := range apps.New(pipeline.Proactive).Flows(f.View(), topologytest.Bridge(c)) {
			if s := fl.Format(nil); fl.Table == pipeline.Table(pipeline.L2Lookup) && strings.Contains(s, "dl_dst="+onA.MAC.String()) {
				lookups = append(lookups, s)
			}
		}
		if len(lookups) > 1 || len(lookups) == 1 && !strings.Contains(lookups[0], fmt.Sprintf("goto_table:%d", pipeline.Table(pipeline.L3Lookup))) {
			t.Errorf("%s switches R's MAC on A by: %v", c, lookups)
		}
	}
}
