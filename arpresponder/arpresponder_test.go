package arpresponder_test

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/pipeline"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/arpresponder"
	"github.com/wyvern-sdn/wyvern/internal/golden"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

func TestGoldenPerChassis(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	v := f.View()
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		golden.Check(t, "three_chassis_"+c, of.FormatFlows((arpresponder.App{}).Flows(v, topologytest.Bridge(c)), f.Names(c)))
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
	flowsOn := func() string {
		return strings.Join(of.FormatFlows((arpresponder.App{}).Flows(f.View(), topologytest.Bridge("hv1")), nil), "\n")
	}
	lines := flowsOn()
	answers := func(ls, ip string) []string {
		var out []string
		for _, l := range strings.Split(ls, "\n") {
			if strings.Contains(l, "arp_tpa="+ip) && strings.Contains(l, "set_field:2->arp_op") {
				out = append(out, l)
			}
		}
		return out
	}
	if got := answers(lines, "10.0.0.100"); len(got) != 0 {
		t.Errorf("a VIP two ports share and nobody announced is answered: %v", got)
	}
	if !strings.Contains(lines, "priority=110,arp,metadata=0x1,arp_spa=10.0.0.100,arp_tpa=10.0.0.100,arp_op=1 actions=controller(userdata=06,meter_id=4294901759),goto_table:"+fmt.Sprint(pipeline.Table(pipeline.L2Lookup))) {
		t.Errorf("no learning flow for the VIP:\n%s", lines)
	}
	// a3 announces it: hv1 answers with a3's MAC.
	if _, err := f.Store.SetVIPOwner(101, "a3", "10.0.0.100"); err != nil {
		t.Fatal(err)
	}
	a3, _ := f.Store.Port("a3")
	if got := answers(flowsOn(), "10.0.0.100"); len(got) != 1 || !strings.Contains(got[0], "set_field:"+a3.MACAddress+"->eth_src") {
		t.Errorf("after a3's announcement the VIP's answer is %v, want a3's MAC", got)
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
	v := f.View()
	br := topologytest.Bridge("hv1")
	proactive := of.NewFlowSet((arpresponder.App{}).Flows(v, br)...)
	for _, n := range v.HostedNetworks("hv1") {
		for _, p := range v.NetworkPorts(n.ID) {
			ip := p.FixedIPs[0].Addr
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

// TestReactiveEqualsProactiveWithRoutersAndVIPs: on the routed fixture,
// with a single-address pair and an announced shared VIP, the answers
// OnMiss gives over every address are exactly the per-destination flows
// of the proactive set, gateways included.
func TestReactiveEqualsProactiveWithRoutersAndVIPs(t *testing.T) {
	f := topologytest.Routed(t)
	pair := func(ip string) *[]topology.AddressPair { return &[]topology.AddressPair{{IPAddress: ip}} }
	for i, u := range []struct {
		id  string
		aap *[]topology.AddressPair
	}{{"b2", pair("10.1.0.50")}, {"a1", pair("10.0.0.100")}, {"a3", pair("10.0.0.100")}} {
		if _, err := f.Store.UpdatePort(uint64(100+i), topology.PortSpec{ID: u.id, AllowedAddressPairs: u.aap}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Store.SetVIPOwner(200, "a3", "10.0.0.100"); err != nil {
		t.Fatal(err)
	}
	v := f.View()
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		br := topologytest.Bridge(c)
		want := of.NewFlowSet()
		for _, fl := range (arpresponder.App{}).Flows(v, br) {
			if (arpresponder.App{}).PerDestination(fl) {
				want.Add(fl)
			}
		}
		got := of.NewFlowSet()
		for _, n := range v.HostedNetworks(c) {
			for _, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.100", "10.0.0.99",
				"10.1.0.1", "10.1.0.2", "10.1.0.3", "10.1.0.50"} {
				for _, fl := range arpresponder.OnMiss(v, br, n.Key, netip.MustParseAddr(ip)) {
					got.Add(fl)
				}
			}
		}
		if !got.Equal(want) || want.Len() == 0 {
			t.Errorf("%s: reactive and proactive differ: %s", c, of.Diff(want, got))
		}
	}
}

// TestUnpluggedPortIsAnswered: a port that exists but is plugged nowhere
// (a1x, 10.0.0.5) is answered with its MAC on every chassis hosting its
// network, so a VM that pings it while it boots gets its echo out at once
// instead of re-ARPing a second later; once plugged, the answer is the
// same flow.
func TestUnpluggedPortIsAnswered(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	a1x, _ := f.Store.Port("a1x")
	ip := netip.MustParseAddr("10.0.0.5")
	for _, c := range []string{"hv1", "hv2"} {
		got := arpresponder.OnMiss(f.View(), topologytest.Bridge(c), 1, ip)
		if len(got) != 1 || !strings.Contains(got[0].String(), "set_field:"+a1x.MACAddress+"->eth_src") {
			t.Fatalf("%s: ARP for the unplugged a1x answered with %v", c, got)
		}
	}
	before := arpresponder.OnMiss(f.View(), topologytest.Bridge("hv1"), 1, ip)[0]
	f.Rebind(t)(topologytest.Port{ID: "a1x", Network: "A", Chassis: "hv2", OFPort: 7})
	if after := arpresponder.OnMiss(f.View(), topologytest.Bridge("hv1"), 1, ip); len(after) != 1 || !after[0].Equal(before) {
		t.Fatalf("plugging a1x changed its answer: %v -> %v", before, after)
	}
	if got := arpresponder.OnMiss(f.View(), topologytest.Bridge("hv3"), 1, ip); len(got) != 0 {
		t.Fatalf("hv3 hosts no port of A but answers for it: %v", got)
	}
}

// TestReplyIsWhatTheFlowMakes: the reply an answered punt carries is the
// request with the answer flow's rewrites (addresses of the target, to
// the requester, padding kept), out of the requester's port; a request
// from no local port (reg6 0), or one that is not plain Ethernet/ARP,
// gets none and is re-injected as before.
func TestReplyIsWhatTheFlowMakes(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	a1, _ := f.Store.Port("a1")
	a2, _ := f.Store.Port("a2")
	src, _ := net.ParseMAC(a1.MACAddress)
	dst, _ := net.ParseMAC(a2.MACAddress)
	spa := netip.MustParseAddr(a1.FixedIPs[0].IPAddress)
	tpa := netip.MustParseAddr(a2.FixedIPs[0].IPAddress)
	frame, pkt := arpRequest(t, a1, a2, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18})
	punt := func(reg6 uint64) app.Punt {
		return app.Punt{Reason: pipeline.ReasonARPMiss, InPort: a1.OFPort, Packet: pkt, Frame: frame,
			Fields: of.Match{}.Reg(pipeline.NetworkKey, 1).Reg(pipeline.SrcPortKey, reg6)}
	}
	a := arpresponder.App{}.OnPunt(f.View(), topologytest.Bridge("hv1"), punt(uint64(a1.Key)))
	if a.Outcome != app.Answered || len(a.Flows) != 1 || !a.Reinject || a.Reply == nil {
		t.Fatalf("answer %+v", a)
	}
	if len(a.Reply.Actions) != 1 || a.Reply.Actions[0] != (of.Output{Port: a1.OFPort}) {
		t.Fatalf("reply actions %v, want output:%d", a.Reply.Actions, a1.OFPort)
	}
	r, err := of.ParsePacket(a.Reply.Frame)
	if err != nil || r.ARPOp != of.ARPReply || r.ARPSPA != tpa || r.ARPTPA != spa || !bytes.Equal(r.ARPSHA, dst) ||
		!bytes.Equal(r.ARPTHA, src) || !bytes.Equal(r.EthSrc, dst) || !bytes.Equal(r.EthDst, src) ||
		!bytes.Equal(a.Reply.Frame[42:], frame[42:]) {
		t.Fatalf("reply %+v (%v), frame % x", r, err, a.Reply.Frame)
	}
	if frame[21] != 1 || !bytes.Equal(frame[:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) {
		t.Fatal("the request's frame was changed")
	}
	if a := (arpresponder.App{}).OnPunt(f.View(), topologytest.Bridge("hv1"), punt(0)); a.Reply != nil || !a.Reinject {
		t.Fatalf("a request from no local port got a reply: %+v", a)
	}
	if _, ok := arpresponder.ReplyFrame(frame[:40], dst, tpa); ok {
		t.Fatal("a short frame made a reply")
	}
}

// TestRememberedAnswerIsTheFreshOne: the controller's responder (New)
// remembers answers, and what it answers is what the zero App builds
// afresh; an answer is made of its key alone, so a port that changes its
// MAC is answered with the new one — nothing remembered goes stale.
func TestRememberedAnswerIsTheFreshOne(t *testing.T) {
	f := topologytest.ThreeChassis(t)
	a1, _ := f.Store.Port("a1")
	a2, _ := f.Store.Port("a2")
	frame, pkt := arpRequest(t, a1, a2, make([]byte, 18))
	punt := app.Punt{Reason: pipeline.ReasonARPMiss, InPort: a1.OFPort, Packet: pkt, Frame: frame,
		Fields: of.Match{}.Reg(pipeline.NetworkKey, 1).Reg(pipeline.SrcPortKey, uint64(a1.Key))}
	br := topologytest.Bridge("hv1")
	responder := arpresponder.New()
	same := func(when string) {
		t.Helper()
		v := f.View()
		fresh := arpresponder.App{}.OnPunt(v, br, punt)
		for i := range 2 {
			got := responder.OnPunt(v, br, punt)
			if len(got.Flows) != 1 || len(fresh.Flows) != 1 || !got.Flows[0].Equal(fresh.Flows[0]) ||
				got.Reply == nil || !bytes.Equal(got.Reply.Frame, fresh.Reply.Frame) ||
				len(got.Reply.Actions) != 1 || got.Reply.Actions[0] != fresh.Reply.Actions[0] {
				t.Fatalf("%s, answer %d: %+v, built afresh %+v", when, i+1, got, fresh)
			}
		}
	}
	same("first")
	mac := "fa:16:3e:00:99:02"
	f.Do(t, func(i uint64) error {
		_, err := f.Store.UpdatePort(i, topology.PortSpec{ID: "a2", MACAddress: &mac})
		return err
	})
	same("a2 with a new MAC")
	if got := responder.OnPunt(f.View(), br, punt); !strings.Contains(got.Flows[0].String(), "set_field:"+mac+"->eth_src") {
		t.Fatalf("after a2's MAC changed, answered with %v", got.Flows[0])
	}
}

// arpRequest is a broadcast ARP request from port from for to's address,
// padded with pad, and its decoded packet.
func arpRequest(t *testing.T, from, to topology.Port, pad []byte) ([]byte, of.Packet) {
	t.Helper()
	src, _ := net.ParseMAC(from.MACAddress)
	spa := netip.MustParseAddr(from.FixedIPs[0].IPAddress)
	tpa := netip.MustParseAddr(to.FixedIPs[0].IPAddress)
	frame := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, src...)
	frame = append(frame, 0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1)
	frame = append(append(append(frame, src...), spa.AsSlice()...), 0, 0, 0, 0, 0, 0)
	frame = append(append(frame, tpa.AsSlice()...), pad...)
	pkt, err := of.ParsePacket(frame)
	if err != nil {
		t.Fatal(err)
	}
	return frame, pkt
}
