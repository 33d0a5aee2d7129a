package trace_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/apps"
	"github.com/wyvern-sdn/wyvern/internal/golden"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
	"github.com/wyvern-sdn/wyvern/trace"
)

func bridgeOf(v *view.View, chassis string, mode pipeline.Mode) trace.Bridge {
	return trace.ForBridge(apps.New(mode), v, topologytest.Bridge(chassis), 1)
}

func walk(t *testing.T, b trace.Bridge, r trace.Request) trace.Result {
	t.Helper()
	p, err := b.Packet(r)
	if err != nil {
		t.Fatal(err)
	}
	return b.Walk(p)
}

// TestGoldenTraces: the stage-by-stage walks of the cases an operator
// asks about, on the routed fixture, both modes: to a VM on the same
// chassis, to a remote one (into the tunnel), from a spoofed source, and
// to another network through the router (DVR).
func TestGoldenTraces(t *testing.T) {
	f := topologytest.Routed(t)
	v := f.View()
	a3 := topologytest.MustPort(t, v, "a3")
	a2 := topologytest.MustPort(t, v, "a2")
	b2 := topologytest.MustPort(t, v, "b2")
	cases := []struct {
		name string
		req  trace.Request
	}{
		{"local", trace.Request{From: "a1", To: a2.FixedIPs[0].Addr.String()}},
		{"remote", trace.Request{From: "a1", To: a3.FixedIPs[0].Addr.String(), Proto: "tcp", DstPort: 80}},
		{"spoofed", trace.Request{From: "a1", To: a3.FixedIPs[0].Addr.String(), SrcIP: "10.0.0.99"}},
		{"routed", trace.Request{From: "a1", To: b2.FixedIPs[0].Addr.String()}},
	}
	for _, mode := range []pipeline.Mode{pipeline.Reactive, pipeline.Proactive} {
		b := bridgeOf(v, "hv1", mode)
		b.Options.Names = f.Names("hv1")
		for _, c := range cases {
			t.Run(mode.String()+"/"+c.name, func(t *testing.T) {
				r := walk(t, b, c.req)
				golden.Check(t, "routed_hv1_"+mode.String()+"_"+c.name, strings.Split(strings.TrimSuffix(trace.Format(r, true), "\n"), "\n"))
			})
		}
	}
}

// TestVerdicts asserts the decisive facts of the golden cases, so that
// an -update cannot bless a wrong walk.
func TestVerdicts(t *testing.T) {
	f := topologytest.Routed(t)
	v := f.View()
	hv1, _ := v.Chassis("hv1")
	a3 := topologytest.MustPort(t, v, "a3")
	b2 := topologytest.MustPort(t, v, "b2")
	for _, mode := range []pipeline.Mode{pipeline.Reactive, pipeline.Proactive} {
		b := bridgeOf(v, "hv1", mode)
		r := walk(t, b, trace.Request{From: "a1", To: b2.FixedIPs[0].Addr.String()})
		o := only(t, r)
		if o.Kind != trace.PortTunnel || o.Name != "gre" || *o.TunID != 200 || o.TunDst != "172.31.0.3" {
			t.Errorf("%s routed: %s, want into gre with tun_id 0xc8 to 172.31.0.3", mode, trace.FormatOutput(o))
		}
		if o.EthSrc != hv1.DVRMAC.String() || o.EthDst != b2.MAC.String() || o.TTL != 63 {
			t.Errorf("%s routed: %s, want eth_src %s (hv1's DVR MAC), eth_dst %s, ttl 63", mode, trace.FormatOutput(o), hv1.DVRMAC, b2.MAC)
		}
		rewrote := false
		for _, h := range r.Hops {
			for _, c := range h.Changes {
				if h.Stage == pipeline.L3Lookup && c == "eth_src="+hv1.DVRMAC.String() {
					rewrote = true
				}
			}
		}
		if !rewrote {
			t.Errorf("%s routed: no hop of L3Lookup names the DVR MAC rewrite:\n%s", mode, trace.Format(r, false))
		}
		r = walk(t, b, trace.Request{From: "a1", To: a3.FixedIPs[0].Addr.String(), SrcIP: "10.0.0.99"})
		if r.End.Kind != trace.EndDrop || r.End.Stage != pipeline.PortSecurity {
			t.Errorf("%s spoofed: %+v, want a drop in PortSecurity", mode, r.End)
		}
		r = walk(t, b, trace.Request{From: "a1", To: a3.FixedIPs[0].Addr.String()})
		if mode == pipeline.Reactive {
			punted := false
			for _, h := range r.Hops {
				if h.Punt != nil && h.Punt.Reason == "l2-miss" && h.Punt.Outcome == "answered" && len(h.Punt.Installed) > 0 {
					punted = true
				}
			}
			if !punted {
				t.Errorf("reactive remote: no answered l2-miss punt:\n%s", trace.Format(r, false))
			}
		}
	}
}

func only(t *testing.T, r trace.Result) trace.Output {
	t.Helper()
	if r.End.Kind != trace.EndOutput || len(r.End.Outputs) != 1 {
		t.Fatalf("end %+v, want one output:\n%s", r.End, trace.Format(r, true))
	}
	return r.End.Outputs[0]
}

// TestOracle: across the fixture, on every chassis and in both modes,
// every plugged VM reaches every other plugged VM of its network — out
// its port when local, else into the tunnel of the network's type with
// the network's key and the remote chassis' encap IP, its frame
// unchanged — and the same packets from a spoofed source die in
// PortSecurity; to a VM of the other network, the router's MAC as
// destination, it is routed (the destination's MAC, TTL - 1, and the DVR
// MAC of the source chassis when it leaves by a tunnel).
func TestOracle(t *testing.T) {
	f := topologytest.Routed(t)
	f.AddPorts(t, topologytest.Port{ID: "a4", Network: "A", Chassis: "hv3", OFPort: 7},
		topologytest.Port{ID: "b3", Network: "B", Chassis: "hv2", OFPort: 8}, topologytest.Port{ID: "b4", Network: "B", Chassis: "hv1", OFPort: 9})
	v := f.View()
	checked := 0
	for _, mode := range []pipeline.Mode{pipeline.Reactive, pipeline.Proactive} {
		for _, chassis := range []string{"hv1", "hv2", "hv3"} {
			b := bridgeOf(v, chassis, mode)
			here, _ := v.Chassis(chassis)
			for _, src := range v.LocalPorts(chassis) {
				if src.DeviceOwner != "" {
					continue
				}
				srcNet, _ := v.Network(src.NetworkID)
				for _, net := range []string{"A", "B"} {
					for _, dst := range v.NetworkPorts(net) {
						if dst.ID == src.ID || dst.DeviceOwner != "" || len(dst.FixedIPs) == 0 {
							continue
						}
						name := fmt.Sprintf("%s %s: %s -> %s", mode, chassis, src.ID, dst.ID)
						r := walk(t, b, trace.Request{From: src.ID, To: dst.FixedIPs[0].Addr.String(), Proto: "udp", DstPort: 53 + uint16(checked%7)})
						checked++
						if r.End.Kind != trace.EndOutput || len(r.End.Outputs) != 1 {
							t.Errorf("%s: end %+v, want one output\n%s", name, r.End, trace.Format(r, false))
							continue
						}
						o := r.End.Outputs[0]
						routed := dst.NetworkID != src.NetworkID
						dstNet, _ := v.Network(dst.NetworkID)
						wantTTL := uint8(64)
						if routed {
							wantTTL = 63
						}
						if o.EthDst != dst.MAC.String() || o.IPDst != dst.FixedIPs[0].Addr.String() || o.TTL != wantTTL {
							t.Errorf("%s: %s, want eth_dst %s ip_dst %s ttl %d", name, trace.FormatOutput(o), dst.MAC, dst.FixedIPs[0].Addr, wantTTL)
						}
						if dst.Chassis == chassis {
							if o.Kind != trace.PortVM || o.Port != dst.OFPort {
								t.Errorf("%s: %s, want out its local port %d", name, trace.FormatOutput(o), dst.OFPort)
							}
							continue
						}
						remote, _ := v.Chassis(dst.Chassis)
						if o.Kind != trace.PortTunnel || o.Name != dstNet.Type || o.TunID == nil ||
							*o.TunID != uint64(dstNet.SegmentationID) || o.TunDst != remote.EncapIP.String() {
							t.Errorf("%s: %s, want into %s with tun_id %#x to %s", name, trace.FormatOutput(o), dstNet.Type, dstNet.SegmentationID, remote.EncapIP)
						}
						wantSrc := src.MAC.String()
						if routed {
							wantSrc = here.DVRMAC.String()
						}
						if o.EthSrc != wantSrc {
							t.Errorf("%s: eth_src %s, want %s", name, o.EthSrc, wantSrc)
						}
						// The far end: the same packet, from the tunnel,
						// on the destination's chassis reaches its port,
						// a routed one from the router's MAC again.
						in := trace.Packet{InPort: tunnelPort(dstNet.Type), EthSrc: mustMAC(t, o.EthSrc), EthDst: mustMAC(t, o.EthDst),
							IPSrc: netip.MustParseAddr(o.IPSrc), IPDst: netip.MustParseAddr(o.IPDst), TTL: o.TTL,
							Proto: of.IPProtoUDP, SrcPort: 40000, DstPort: 53, TunID: *o.TunID, TunSrc: here.EncapIP, TunDst: remote.EncapIP}
						far := bridgeOf(v, dst.Chassis, mode).Walk(in)
						if far.End.Kind != trace.EndOutput || len(far.End.Outputs) != 1 {
							t.Errorf("%s, on %s: end %+v, want one output\n%s", name, dst.Chassis, far.End, trace.Format(far, false))
							continue
						}
						fo := far.End.Outputs[0]
						wantSrc = src.MAC.String()
						if routed {
							for _, ri := range v.NetworkInterfaces(dst.NetworkID) {
								wantSrc = ri.MAC.String()
							}
						}
						if fo.Kind != trace.PortVM || fo.Port != dst.OFPort || fo.EthSrc != wantSrc || fo.EthDst != dst.MAC.String() {
							t.Errorf("%s, on %s: %s, want out port %d from %s", name, dst.Chassis, trace.FormatOutput(fo), dst.OFPort, wantSrc)
						}
						if dst.NetworkID == srcNet.ID {
							spoof := netip.MustParseAddr("10.9.9.9")
							r := walk(t, b, trace.Request{From: src.ID, To: dst.FixedIPs[0].Addr.String(), SrcIP: spoof.String()})
							if r.End.Kind != trace.EndDrop || r.End.Stage != pipeline.PortSecurity {
								t.Errorf("%s from %s: %+v, want a drop in PortSecurity", name, spoof, r.End)
							}
						}
					}
				}
			}
		}
	}
	if checked < 50 {
		t.Fatalf("only %d pairs checked", checked)
	}
	t.Logf("%d pairs checked", checked)
}

func tunnelPort(typ string) uint32 {
	if typ == "gre" {
		return topologytest.GREPort
	}
	return topologytest.VXLANPort
}

func mustMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestWalkMechanics: resubmit comes back, a conjunction completes only
// with every clause, a loop is cut, a table with no flow drops.
func TestWalkMechanics(t *testing.T) {
	m := of.Match{}
	flows := []of.Flow{
		{Table: 0, Priority: 10, Actions: []of.Action{of.Resubmit{Table: 1}, of.SetField{Field: of.FieldReg1, Value: 7}, of.GotoTable{Table: 2}}},
		{Table: 1, Priority: 10, Actions: []of.Action{of.SetField{Field: of.FieldReg2, Value: 5}}},
		{Table: 2, Priority: 20, Match: m.With(of.FieldReg2, 5), Actions: []of.Action{of.Conjunction{ID: 9, Clause: 1, Of: 2}}},
		{Table: 2, Priority: 20, Match: m.With(of.FieldReg1, 8), Actions: []of.Action{of.Conjunction{ID: 9, Clause: 2, Of: 2}}},
		{Table: 2, Priority: 20, Match: m.With(of.FieldConjID, 9), Actions: []of.Action{of.Output{Port: 1}}},
		{Table: 2, Priority: 5, Actions: []of.Action{of.GotoTable{Table: 3}}},
		{Table: 3, Priority: 5, Match: m.With(of.FieldReg1, 7), Actions: []of.Action{of.GotoTable{Table: 3}}},
	}
	r := trace.Walk(flows, trace.Packet{InPort: 1}, trace.Options{})
	if r.End.Kind != trace.EndDrop || !strings.Contains(r.End.Reason, "loop") {
		t.Fatalf("the loop: %+v\n%s", r.End, trace.Format(r, true))
	}
	if r.Hops[1].Table != 1 || r.Hops[1].Depth != 1 || r.Hops[2].Table != 2 || r.Hops[2].Priority != 5 {
		t.Fatalf("resubmit or half a conjunction:\n%s", trace.Format(r, true))
	}
	flows[3].Match = m.With(of.FieldReg1, 7) // both clauses now
	r = trace.Walk(flows, trace.Packet{InPort: 1}, trace.Options{Ports: map[uint32]trace.Port{1: {Name: "p", Kind: trace.PortVM}}})
	if r.End.Kind != trace.EndOutput || r.End.Outputs[0].Name != "p" {
		t.Fatalf("the conjunction: %+v\n%s", r.End, trace.Format(r, true))
	}
	r = trace.Walk(flows[:1], trace.Packet{InPort: 1}, trace.Options{})
	if r.End.Kind != trace.EndDrop || !r.Hops[1].Miss {
		t.Fatalf("a table with no flow: %+v\n%s", r.End, trace.Format(r, true))
	}
}

// TestRequests: what a request cannot mean is an error naming why.
func TestRequests(t *testing.T) {
	f := topologytest.Routed(t)
	v := f.View()
	b := bridgeOf(v, "hv1", pipeline.Reactive)
	for _, c := range []struct {
		req  trace.Request
		want error
	}{
		{trace.Request{From: "nope", To: "10.0.0.3"}, trace.ErrNoSuchPort},
		{trace.Request{From: "a3", To: "10.0.0.3"}, trace.ErrNotHere},
		{trace.Request{From: "a1x", To: "10.0.0.3"}, trace.ErrNotHere},
		{trace.Request{From: "a1", To: "10.0.0.200"}, trace.ErrNoSuchTarget},
		{trace.Request{From: "a1", To: "192.0.2.1"}, nil}, // beyond the subnet: to the router
		{trace.Request{From: "a1", To: "fa:16:3e:99:99:99"}, trace.ErrNoSuchTarget},
		{trace.Request{From: "a1", To: "nonsense"}, trace.ErrBadRequest},
		{trace.Request{From: "a1", To: "10.0.0.3", Proto: "tcp"}, trace.ErrBadRequest},
		{trace.Request{From: "a1", To: "10.0.0.3", Proto: "sctp", DstPort: 1}, trace.ErrBadRequest},
		{trace.Request{From: "a1", To: "10.0.0.3", SrcIP: "::1"}, trace.ErrBadRequest},
	} {
		_, err := b.Packet(c.req)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%+v: %v, want %v", c.req, err, c.want)
		}
	}
	b2 := topologytest.MustPort(t, v, "b2")
	p, err := b.Packet(trace.Request{From: "b1", To: b2.MAC.String()})
	if err != nil || p.IPDst != b2.FixedIPs[0].Addr {
		t.Errorf("to b2's MAC: %+v %v, want its address", p, err)
	}
}

// TestOracleSecurityGroups: on the security-group fixture of package
// secgroup (web: TCP 8080-8081 from 10.0.0.0/8 and anything from members
// of app, on a1; app on a2), a1's chassis delivers to a1 what a rule
// admits — from b1 (routed, no group) TCP 8080, from a2 (a member of app,
// a conjunction of port and remote group) UDP 53 — and drops the rest in
// SGIngress, each ct() assumed +trk+new.
func TestOracleSecurityGroups(t *testing.T) {
	f := topologytest.Routed(t)
	str := func(s string) *string { return &s }
	num := func(n int) *int { return &n }
	for _, g := range []string{"web", "app"} {
		f.Do(t, func(i uint64) error {
			_, err := f.Store.CreateSecurityGroup(i, topology.SecurityGroupSpec{ID: g, Name: str(g), EgressRuleID: g + "-out"})
			return err
		})
	}
	for _, r := range []topology.SecurityGroupRuleSpec{
		{ID: "web-8080", SecurityGroupID: "web", Direction: "ingress", Protocol: "tcp", PortRangeMin: num(8080), PortRangeMax: num(8081), RemoteIPPrefix: "10.0.0.0/8"},
		{ID: "web-app", SecurityGroupID: "web", Direction: "ingress", RemoteGroupID: "app"},
	} {
		f.Do(t, func(i uint64) error { _, err := f.Store.CreateSecurityGroupRule(i, r); return err })
	}
	for port, groups := range map[string][]string{"a1": {"web"}, "a2": {"app"}} {
		f.Do(t, func(i uint64) error {
			_, err := f.Store.UpdatePort(i, topology.PortSpec{ID: port, SecurityGroups: groups})
			return err
		})
	}
	v := f.View()
	a1 := topologytest.MustPort(t, v, "a1")
	to := a1.FixedIPs[0].Addr.String()
	for _, mode := range []pipeline.Mode{pipeline.Reactive, pipeline.Proactive} {
		b := bridgeOf(v, "hv1", mode)
		for _, c := range []struct {
			from, proto string
			port        uint16
			admitted    bool
		}{
			{"b1", "tcp", 8080, true},
			{"b1", "tcp", 8081, true},
			{"b1", "tcp", 80, false},
			{"b1", "udp", 8080, false},
			{"a2", "udp", 53, true},
			{"a2", "tcp", 22, true},
		} {
			r := walk(t, b, trace.Request{From: c.from, To: to, Proto: c.proto, DstPort: c.port})
			if testing.Verbose() && c.from == "a2" && mode == pipeline.Proactive {
				t.Logf("%s", trace.Format(r, true))
			}
			name := fmt.Sprintf("%s %s -> a1 %s %d", mode, c.from, c.proto, c.port)
			if c.admitted {
				if o := only(t, r); o.Port != a1.OFPort || o.Kind != trace.PortVM || o.Stage != pipeline.SGIngress {
					t.Errorf("%s: %s, want out a1's port from SGIngress", name, trace.FormatOutput(o))
				}
				continue
			}
			if r.End.Kind != trace.EndDrop || r.End.Stage != pipeline.SGIngress {
				t.Errorf("%s: %+v, want a drop in SGIngress\n%s", name, r.End, trace.Format(r, true))
			}
		}
	}
}

// TestUnansweredPunt: without the pipeline's answer (no OnPunt), a
// reactive bridge's first packet to a remote VM ends in L2Lookup's punt.
func TestUnansweredPunt(t *testing.T) {
	f := topologytest.Routed(t)
	v := f.View()
	b := bridgeOf(v, "hv1", pipeline.Reactive)
	b.Options.OnPunt = nil
	a3 := topologytest.MustPort(t, v, "a3")
	r := walk(t, b, trace.Request{From: "a1", To: a3.FixedIPs[0].Addr.String()})
	if r.End.Kind != trace.EndPunt || r.End.Stage != pipeline.L2Lookup || r.End.Reason != "l2-miss" {
		t.Errorf("end %+v, want the l2-miss punt in L2Lookup\n%s", r.End, trace.Format(r, true))
	}
	if got := trace.FormatEnd(r.End); got != "=> punt to the controller in L2Lookup: l2-miss\n" {
		t.Errorf("FormatEnd: %q", got)
	}
}
