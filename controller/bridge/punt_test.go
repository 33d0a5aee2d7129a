package bridge

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/arpresponder"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// l2Punt is the packet-in of a frame from a1 (hv1) to dst that missed
// L2Lookup.
func l2Punt(t *testing.T, r *rig, dst string) ofctl.PacketIn {
	t.Helper()
	a1, _ := r.f.Store.Port("a1")
	src, _ := net.ParseMAC(a1.MACAddress)
	d, _ := net.ParseMAC(dst)
	frame := append(append(append([]byte{}, d...), src...), 0x08, 0x00)
	frame = append(frame, 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 2, 10, 0, 0, 4)
	frame = append(frame, make([]byte, 8)...)
	return ofctl.PacketIn{Table: pipeline.Table(pipeline.L2Lookup), Reason: ofctl.ReasonAction, Data: frame,
		Match:    of.Match{}.InPort(a1.OFPort).Reg(pipeline.NetworkKey, 1).Reg(pipeline.SrcPortKey, uint64(a1.Key)),
		UserData: []byte{byte(pipeline.ReasonL2Miss)}}
}

// installedTunnelsTo reports which of the bundles sent reactive flows
// (idle timeout) steering into a tunnel to ip.
func (r *rig) installedTunnelsTo(ip string) bool {
	r.sw.mu.Lock()
	defer r.sw.mu.Unlock()
	for _, b := range r.sw.bundles {
		for _, m := range b {
			if m.Command == of.FlowAdd && m.Flow.IdleTimeout != 0 && strings.Contains(m.Flow.String(), ip+"->tun_dst") {
				return true
			}
		}
	}
	return false
}

// TestStalePuntAnswerIsNotInstalled is fault injection: an answer
// computed from a view older than the bridge's — a3 still on hv2 — is
// handed to the loop after the loop applied a3's move to hv3 and deleted
// what named hv2. The stale flow is never installed; the loop answers
// from its own view instead.
func TestStalePuntAnswerIsNotInstalled(t *testing.T) {
	r := newRig(t, pipeline.Reactive, newFakeSwitch())
	r.m.SetReady()
	r.run()
	r.settled("replay", r.want(r.bindings("hv1"), 1))
	a3, _ := r.f.Store.Port("a3")
	pi := l2Punt(t, r, a3.MACAddress)
	p, _, ok := decode(pi)
	if !ok {
		t.Fatal("the punt does not decode")
	}
	old := loopView(t, r)
	stale := r.m.pipeline.OnPunt(old, topologytest.Bridge("hv1"), p)
	if stale.Outcome != app.Answered || !strings.Contains(fmt.Sprint(stale.Flows), "172.31.0.2->tun_dst") {
		t.Fatalf("the old view's answer %v does not tunnel to hv2", stale.Flows)
	}
	r.f.Rebind(t)(topologytest.Port{ID: "a3", Network: "A", Chassis: "hv3", OFPort: 4})
	r.m.Update(view.Build(r.f.Store), []topology.Change{{Resource: topology.ResourcePort, ID: "a3"}}, false)
	ovstest.Eventually(t, 5*time.Second, "the loop on the new view", func() bool {
		v, _ := r.loop().view()
		p, _ := v.LocatedPort("a3")
		return p.Chassis == "hv3"
	})
	r.loop().submit(context.Background(), &puntRequest{pi: pi, punt: p, view: old, answer: stale})
	if r.installedTunnelsTo("172.31.0.2") {
		t.Fatal("a flow from the stale answer, tunnelling to a3's old chassis, was installed")
	}
	if !r.installedTunnelsTo("172.31.0.3") {
		t.Fatal("no answer from the bridge's own view (a3 on hv3)")
	}
	if r.m.stats.Stale.Load() != 1 {
		t.Fatalf("%d answers recomputed as stale, want 1", r.m.stats.Stale.Load())
	}
}

// TestPuntHeldUntilBinding: a packet for a port that exists but is not
// plugged yet (a1x) is held, not flooded; when a1x's binding arrives the
// punt is answered from the new view and the packet re-injected. A
// packet for a port that never gets plugged is dropped after HoldFor.
func TestPuntHeldUntilBinding(t *testing.T) {
	r := newRig(t, pipeline.Reactive, newFakeSwitch())
	r.m.SetReady()
	r.run()
	r.settled("replay", r.want(r.bindings("hv1"), 1))
	a1x, _ := r.f.Store.Port("a1x")
	pi := l2Punt(t, r, a1x.MACAddress)
	r.loop().punt(context.Background(), pi)
	if r.m.stats.Held.Load() == 0 {
		t.Fatal("the punt for the unplugged a1x was not held")
	}
	r.sw.mu.Lock()
	outs := len(r.sw.outs)
	r.sw.mu.Unlock()
	if outs != 0 {
		t.Fatalf("a held punt sent %d packets", outs)
	}
	r.f.Rebind(t)(topologytest.Port{ID: "a1x", Network: "A", Chassis: "hv2", OFPort: 8})
	r.m.Update(view.Build(r.f.Store), []topology.Change{{Resource: topology.ResourcePort, ID: "a1x"}}, false)
	ovstest.Eventually(t, 5*time.Second, "the held punt answered", func() bool { return r.m.stats.HeldDone.Load() == 1 })
	if !r.installedTunnelsTo("172.31.0.2") {
		t.Fatal("no flow to a1x on hv2 after its binding")
	}
	r.sw.mu.Lock()
	outs = len(r.sw.outs)
	r.sw.mu.Unlock()
	if outs != 1 {
		t.Fatalf("%d packets re-injected, want the held one", outs)
	}
	// A port that never comes: dropped after HoldFor.
	r.change(func(i uint64) ([]string, error) {
		_, err := r.f.Store.CreatePorts(i, []topology.PortSpec{{ID: "ghost", NetworkID: strp("A")}})
		return []string{"ghost"}, err
	}, topology.ResourcePort)
	ovstest.Eventually(t, 5*time.Second, "the loop sees ghost", func() bool {
		v, _ := r.loop().view()
		_, ok := v.Port("ghost")
		return ok
	})
	ghost, _ := r.f.Store.Port("ghost")
	r.loop().punt(context.Background(), l2Punt(t, r, ghost.MACAddress))
	ovstest.Eventually(t, 5*time.Second, "the ghost's punt dropped", func() bool { return r.m.stats.HeldLost.Load() == 1 })
}

func strp(s string) *string { return &s }

// TestInvalidationSparesReconciledFlows: a1 is plugged here, so its
// L2Lookup flow is reconciled, not punted for; a change to a1 invalidates
// the L2Lookup flows punts installed for it (by cookie), and that delete
// must not take the reconciled one with it — the bridge still equals a
// full recompute afterwards. (Without the on-demand cookie bit, the
// delete reaches it and the bridge loses a1.)
func TestInvalidationSparesReconciledFlows(t *testing.T) {
	r := newRig(t, pipeline.Reactive, newFakeSwitch())
	r.m.SetReady()
	r.run()
	r.settled("replay", r.want(r.bindings("hv1"), 1))
	a1, _ := r.f.Store.Port("a1")
	lookup := func() bool {
		have, _ := r.sw.snapshot()
		for _, f := range have.Flows() {
			if f.Table == pipeline.Table(pipeline.L2Lookup) && pipeline.Cookie(f.Cookie).Object() == pipeline.PortObject(a1.Key) {
				return true
			}
		}
		return false
	}
	if !lookup() {
		t.Fatal("a1, plugged here, has no reconciled L2Lookup flow in reactive mode")
	}
	r.change(func(i uint64) ([]string, error) {
		pairs := []topology.AddressPair{{IPAddress: "10.0.0.250", MACAddress: "fa:16:3e:aa:bb:cc"}}
		_, err := r.f.Store.UpdatePort(i, topology.PortSpec{ID: "a1", AllowedAddressPairs: &pairs})
		return []string{"a1"}, err
	}, topology.ResourcePort)
	r.settled("a1's pair, and a1 still there", r.want(r.bindings("hv1"), 1))
	if !lookup() {
		t.Fatal("the invalidation of a1 deleted its reconciled L2Lookup flow")
	}
	r.sw.mu.Lock()
	defer r.sw.mu.Unlock()
	last := r.sw.bundles[len(r.sw.bundles)-1]
	deletes := 0
	for _, m := range last {
		if m.Command == of.FlowDelete {
			deletes++
			if !pipeline.Cookie(m.Flow.Cookie).OnDemand() || m.CookieMask&pipeline.OnDemandMask == 0 {
				t.Errorf("an invalidation not narrowed to flows punts installed: %s mask %#x", m.Flow, m.CookieMask)
			}
		}
	}
	if deletes == 0 {
		t.Fatal("a1's change invalidated nothing")
	}
}

// TestHeldPuntsShareOneAnswer: a stream to a port not plugged yet holds
// at most HoldPerDestination punts (the rest are dropped); the binding
// answers them all with the destination's flows installed once, in the
// bundle that brings the binding, and every held packet re-injected.
func TestHeldPuntsShareOneAnswer(t *testing.T) {
	r := newRig(t, pipeline.Reactive, newFakeSwitch())
	r.m.SetReady()
	r.run()
	r.settled("replay", r.want(r.bindings("hv1"), 1))
	a1x, _ := r.f.Store.Port("a1x")
	for range 12 {
		r.loop().punt(context.Background(), l2Punt(t, r, a1x.MACAddress))
	}
	// The punts are counted as the loop admits them, after punt returns.
	counted := func() bool { return r.m.stats.Held.Load() >= 12 } // dropped ones too
	ovstest.Eventually(t, 5*time.Second, "the 12 punts admitted", counted)
	if held, lost := r.m.stats.Held.Load(), r.m.stats.HeldLost.Load(); held != 12 || lost != 4 {
		t.Fatalf("12 punts: %d held, %d dropped; want 8 kept and 4 dropped", held, lost)
	}
	r.sw.mu.Lock()
	before := len(r.sw.bundles)
	r.sw.mu.Unlock()
	r.f.Rebind(t)(topologytest.Port{ID: "a1x", Network: "A", Chassis: "hv2", OFPort: 8})
	r.m.Update(view.Build(r.f.Store), []topology.Change{{Resource: topology.ResourcePort, ID: "a1x"}}, false)
	ovstest.Eventually(t, 5*time.Second, "the held punts answered", func() bool { return r.m.stats.HeldDone.Load() == 8 })
	r.sw.mu.Lock()
	defer r.sw.mu.Unlock()
	if got := len(r.sw.outs); got != 8 {
		t.Fatalf("%d packets re-injected, want the 8 held", got)
	}
	mac, _ := net.ParseMAC(a1x.MACAddress)
	adds := 0
	for _, b := range r.sw.bundles[before:] {
		for _, m := range b {
			if d, ok := m.Flow.Match.Get(of.FieldEthDst); m.Command == of.FlowAdd && ok && d.Value == of.MACValue(mac) {
				adds++
				if !pipeline.Cookie(m.Flow.Cookie).OnDemand() || m.Flow.IdleTimeout == 0 {
					t.Errorf("a held punt's flow installed as if reconciled: %s", m.Flow)
				}
			}
		}
	}
	if adds != 1 || len(r.sw.bundles)-before != 1 {
		t.Fatalf("a1x's L2Lookup flow added %d times in %d bundles; want once, in the bundle of the binding", adds, len(r.sw.bundles)-before)
	}
}

// TestHeldPuntForAPortPluggedHere: a punt held for a1x, which is then
// plugged on this very chassis, is delivered by a1x's reconciled flows;
// the answer installs nothing of its own over them (an on-demand copy
// would expire, or be invalidated, and leave a local VM unreachable).
func TestHeldPuntForAPortPluggedHere(t *testing.T) {
	r := newRig(t, pipeline.Reactive, newFakeSwitch())
	r.m.SetReady()
	r.run()
	r.settled("replay", r.want(r.bindings("hv1"), 1))
	a1x, _ := r.f.Store.Port("a1x")
	r.loop().punt(context.Background(), l2Punt(t, r, a1x.MACAddress))
	// The loop holds it; punt may return first.
	ovstest.Eventually(t, 5*time.Second, "the punt for the unplugged a1x held", func() bool { return r.m.stats.Held.Load() == 1 })
	local := append(r.bindings("hv1"), topology.Binding{PortID: "a1x", OFPort: 9})
	r.m.SetLocal(Local{DPID: 1, Bridge: topologytest.Bridge("hv1"), Bindings: local})
	ovstest.Eventually(t, 5*time.Second, "the held punt answered", func() bool { return r.m.stats.HeldDone.Load() == 1 })
	r.settled("a1x's reconciled flows, and nothing on demand", r.want(local, 1))
	r.sw.mu.Lock()
	defer r.sw.mu.Unlock()
	if len(r.sw.outs) != 1 {
		t.Fatalf("%d packets re-injected, want the held one", len(r.sw.outs))
	}
}

// TestRefusedHeldAnswerDoesNotBlockTheBinding: the switch refuses the
// flow a held punt's answer would install; the binding's bundle is sent
// again at once without it (the flow quarantined), the held packet is
// delivered all the same, and the loop does not spin on the refusal.
func TestRefusedHeldAnswerDoesNotBlockTheBinding(t *testing.T) {
	sw := newFakeSwitch()
	r := newRig(t, pipeline.Reactive, sw)
	r.m.SetReady()
	r.run()
	r.settled("replay", r.want(r.bindings("hv1"), 1))
	a1x, _ := r.f.Store.Port("a1x")
	r.loop().punt(context.Background(), l2Punt(t, r, a1x.MACAddress))
	r.f.Rebind(t)(topologytest.Port{ID: "a1x", Network: "A", Chassis: "hv2", OFPort: 8})
	v := view.Build(r.f.Store)
	answer := l2Answer(t, r, v, a1x.MACAddress)
	sw.mu.Lock()
	sw.bad = answer.Key()
	sw.mu.Unlock()
	r.m.Update(v, []topology.Change{{Resource: topology.ResourcePort, ID: "a1x"}}, false)
	ovstest.Eventually(t, 5*time.Second, "the held punt delivered", func() bool { return r.m.stats.HeldDone.Load() == 1 })
	if rej := r.m.Rejected(1); len(rej) != 1 {
		t.Fatalf("rejected flows %v, want the held answer's", rej)
	}
	sw.mu.Lock()
	n := len(sw.bundles)
	sw.mu.Unlock()
	time.Sleep(200 * time.Millisecond)
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if len(sw.bundles) != n {
		t.Fatalf("%d more bundles after the refusal settled: the loop spins", len(sw.bundles)-n)
	}
}

// l2Answer is the L2Lookup flow a punt to dst gets from view v on hv1.
func l2Answer(t *testing.T, r *rig, v *view.View, dst string) of.Flow {
	t.Helper()
	p, _, ok := decode(l2Punt(t, r, dst))
	if !ok {
		t.Fatal("the punt does not decode")
	}
	a := r.m.pipeline.OnPunt(v, topologytest.Bridge("hv1"), p)
	for _, f := range a.Flows {
		if f.Table == pipeline.Table(pipeline.L2Lookup) {
			return f
		}
	}
	t.Fatalf("no L2Lookup flow in %v", a)
	return of.Flow{}
}

// l2PuntFrom is the packet-in of a frame from the local port src to dst
// that missed L2Lookup.
func l2PuntFrom(t *testing.T, r *rig, src, dst string) ofctl.PacketIn {
	t.Helper()
	v := loopView(t, r)
	p, ok := v.LocatedPort(src)
	if !ok {
		t.Fatalf("no port %s", src)
	}
	pi := l2Punt(t, r, dst)
	copy(pi.Data[6:12], p.MAC)
	pi.Match = of.Match{}.InPort(p.OFPort).Reg(pipeline.NetworkKey, uint64(p.NetworkKey)).Reg(pipeline.SrcPortKey, uint64(p.Key))
	return pi
}

// TestPuntBatchWithARefusedFlow: three punts answered together — one
// whose flow the switch refuses (to a3 on hv2), a flood, one with a good
// flow (to b2 on hv3). The batch's bundle is refused and its punts are
// answered one by one: the good flow is installed and its packet
// re-injected, the flood re-injected without the loop, and the packet
// whose flow was refused is not re-injected (it would only punt again).
func TestPuntBatchWithARefusedFlow(t *testing.T) {
	r := newRig(t, pipeline.Reactive, newFakeSwitch())
	r.m.SetReady()
	r.run()
	r.settled("replay", r.want(r.bindings("hv1"), 1))
	a3, _ := r.f.Store.Port("a3")
	b2, _ := r.f.Store.Port("b2")
	v := loopView(t, r)
	toA3, flood, toB2 := l2Punt(t, r, a3.MACAddress), l2Punt(t, r, "02:00:00:00:99:99"), l2PuntFrom(t, r, "b1", b2.MACAddress)
	r.sw.mu.Lock()
	r.sw.bad = l2Answer(t, r, v, a3.MACAddress).Key()
	before := len(r.sw.outs)
	r.sw.mu.Unlock()

	r.loop().answerPunts(context.Background(), []ofctl.PacketIn{toA3, flood, toB2})

	have, _ := r.sw.snapshot()
	var toHV2, toHV3 bool
	for _, f := range have.Flows() {
		toHV2 = toHV2 || f.IdleTimeout != 0 && strings.Contains(f.String(), "172.31.0.2->tun_dst")
		toHV3 = toHV3 || f.IdleTimeout != 0 && strings.Contains(f.String(), "172.31.0.3->tun_dst")
	}
	if toHV2 || !toHV3 {
		t.Fatalf("reactive flows to hv2 %v (refused: want none), to hv3 %v (want one)", toHV2, toHV3)
	}
	r.sw.mu.Lock()
	defer r.sw.mu.Unlock()
	var sent []string
	for _, po := range r.sw.outs[before:] {
		sent = append(sent, net.HardwareAddr(po.Data[:6]).String())
	}
	if len(sent) != 2 || !slices.Contains(sent, "02:00:00:00:99:99") || !slices.Contains(sent, b2.MACAddress) {
		t.Fatalf("re-injected frames to %v, want the flood's and b2's (not a3's)", sent)
	}
	if n := r.m.stats.Flooded.Load(); n != 1 {
		t.Fatalf("%d punts flooded, want 1", n)
	}
}

// gatedSwitch is a fake switch whose bundles wait, while closed, until
// the gate opens: what a slow switch looks like to the punt path.
type gatedSwitch struct {
	*fakeSwitch
	closed atomic.Bool
	open   chan struct{}
}

func (g *gatedSwitch) Bundle(ctx context.Context, mods []of.FlowMod) error {
	if g.closed.Load() {
		select {
		case <-g.open:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.fakeSwitch.Bundle(ctx, mods)
}

func (g *gatedSwitch) Apply(ctx context.Context, meters []ofctl.Meter, mods []of.FlowMod, then ...ofctl.PacketOut) error {
	for _, m := range meters {
		if err := g.SetMeter(ctx, m); err != nil {
			return err
		}
	}
	if len(mods) > 0 {
		if err := g.Bundle(ctx, mods); err != nil {
			return err
		}
	}
	for _, po := range then {
		if err := g.PacketOut(ctx, po); err != nil {
			return err
		}
	}
	return nil
}

// arpPunt is the packet-in of a1's ARP request for ip, which missed
// ARPResponder.
func arpPunt(t *testing.T, r *rig, ip string) ofctl.PacketIn {
	t.Helper()
	a1, _ := r.f.Store.Port("a1")
	src, _ := net.ParseMAC(a1.MACAddress)
	spa := netip.MustParseAddr(a1.FixedIPs[0].IPAddress).As4()
	tpa := netip.MustParseAddr(ip).As4()
	frame := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, src...)
	frame = append(frame, 0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1)
	frame = append(append(append(frame, src...), spa[:]...), 0, 0, 0, 0, 0, 0)
	frame = append(append(frame, tpa[:]...), 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) // padding
	return ofctl.PacketIn{Table: pipeline.Table(pipeline.ARPResponder), Reason: ofctl.ReasonAction, Data: frame,
		Match:    of.Match{}.InPort(a1.OFPort).Reg(pipeline.NetworkKey, 1).Reg(pipeline.SrcPortKey, uint64(a1.Key)),
		UserData: []byte{byte(pipeline.ReasonARPMiss)}}
}

// TestARPReplyGoesAheadOfItsFlow: the reply to an ARP request the
// bridge answers goes out of the requester's port while the bundle with
// the answer flow is still with the switch (it does not depend on the
// flow), and it is the reply the flow would make; the flow is still
// installed. A re-injection, which does depend on its flow, still waits
// for the commit.
func TestARPReplyGoesAheadOfItsFlow(t *testing.T) {
	g := &gatedSwitch{fakeSwitch: newFakeSwitch(), open: make(chan struct{})}
	r := newRig(t, pipeline.Reactive, g.fakeSwitch)
	r.m.SetReady()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.m.Run(ctx, g) }()
	t.Cleanup(func() { cancel(); <-done })
	r.settled("replay", r.want(r.bindings("hv1"), 1))

	a1, _ := r.f.Store.Port("a1")
	a2, _ := r.f.Store.Port("a2")
	a3, _ := r.f.Store.Port("a3")
	a1MAC, _ := net.ParseMAC(a1.MACAddress)
	a2MAC, _ := net.ParseMAC(a2.MACAddress)
	a2IP := netip.MustParseAddr(a2.FixedIPs[0].IPAddress)
	g.closed.Store(true)
	_, bundlesBefore := g.snapshot()
	g.mu.Lock()
	before := len(g.outs)
	g.mu.Unlock()

	req := arpPunt(t, r, a2IP.String())
	answered := make(chan struct{})
	go func() { r.loop().answerPunts(ctx, []ofctl.PacketIn{req}); close(answered) }()
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Fatal("the ARP punt's worker waited for the bundle")
	}
	g.mu.Lock()
	outs := slices.Clone(g.outs[before:])
	g.mu.Unlock()
	want, _ := arpresponder.ReplyFrame(req.Data, a2MAC, a2IP)
	if len(outs) != 1 || !bytes.Equal(outs[0].Data, want) || len(outs[0].Actions) != 1 ||
		outs[0].Actions[0] != (of.Output{Port: a1.OFPort}) {
		t.Fatalf("sent %+v before the bundle committed, want the reply to a1 out of its port %d", outs, a1.OFPort)
	}
	if pkt, err := of.ParsePacket(outs[0].Data); err != nil || pkt.ARPOp != of.ARPReply || pkt.ARPSPA != a2IP ||
		!bytes.Equal(pkt.ARPSHA, a2MAC) || !bytes.Equal(pkt.ARPTHA, a1MAC) || !bytes.Equal(pkt.EthDst, a1MAC) {
		t.Fatalf("reply %+v, %v", pkt, err)
	}
	if _, n := g.snapshot(); n != bundlesBefore {
		t.Fatalf("%d bundles committed behind a closed gate", n-bundlesBefore)
	}

	// A punt answered by a flow and a re-injection waits for the commit.
	reinjected := make(chan struct{})
	go func() { r.loop().answerPunts(ctx, []ofctl.PacketIn{l2Punt(t, r, a3.MACAddress)}); close(reinjected) }()
	select {
	case <-reinjected:
		t.Fatal("the re-injection went before its flow's bundle committed")
	case <-time.After(200 * time.Millisecond):
	}
	g.mu.Lock()
	n := len(g.outs) - before
	g.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d packet-outs before the commit, want the ARP reply alone", n)
	}
	g.closed.Store(false)
	close(g.open)
	<-reinjected
	g.mu.Lock()
	last := g.outs[len(g.outs)-1]
	g.mu.Unlock()
	if !strings.HasPrefix(net.HardwareAddr(last.Data[:6]).String(), a3.MACAddress) || len(last.Actions) != 1 {
		t.Fatalf("last packet-out %+v, want the frame to a3 re-injected", last)
	}
	ovstest.Eventually(t, 5*time.Second, "the ARP answer flow installed", func() bool {
		have, _ := g.snapshot()
		for _, f := range have.Flows() {
			if f.Table == pipeline.Table(pipeline.ARPResponder) && f.IdleTimeout != 0 && strings.Contains(f.String(), a2IP.String()) {
				return true
			}
		}
		return false
	})
	if n := r.m.stats.Answered.Load(); n != 2 {
		t.Fatalf("%d punts counted answered, want 2", n)
	}
}

// TestAcceptedFlowIsNotSentAgain: ARP punts for an address whose answer
// flow the switch accepted a moment ago (a burst, or requests already on
// their way up) each get their reply and no second add; once the loop
// changes flows itself, or the flow is older than acceptedFor (half the
// idle timeout, at most a second), the next punt adds it again.
func TestAcceptedFlowIsNotSentAgain(t *testing.T) {
	sw := newFakeSwitch()
	r := newRig(t, pipeline.Reactive, sw)
	r.m.cfg.IdleTimeout = 2 // acceptedFor: a second
	r.m.SetReady()
	r.run()
	r.settled("replay", r.want(r.bindings("hv1"), 1))
	a2, _ := r.f.Store.Port("a2")
	req := arpPunt(t, r, a2.FixedIPs[0].IPAddress)
	ctx := context.Background()
	adds := func() int {
		sw.mu.Lock()
		defer sw.mu.Unlock()
		n := 0
		for _, b := range sw.bundles {
			for _, m := range b {
				if m.Command == of.FlowAdd && m.Flow.Table == pipeline.Table(pipeline.ARPResponder) && m.Flow.IdleTimeout != 0 {
					n++
				}
			}
		}
		return n
	}
	outs := func() int {
		sw.mu.Lock()
		defer sw.mu.Unlock()
		return len(sw.outs)
	}
	accepted := func(n int) func() bool {
		return func() bool {
			r.loop().mu.Lock()
			defer r.loop().mu.Unlock()
			return len(r.loop().accepted) == n
		}
	}
	r.loop().answerPunts(ctx, []ofctl.PacketIn{req})
	ovstest.Eventually(t, 5*time.Second, "the answer flow added", func() bool { return adds() == 1 })
	ovstest.Eventually(t, 5*time.Second, "the flow's bundle landed", accepted(1))
	sent := outs()
	for range 5 {
		r.loop().answerPunts(ctx, []ofctl.PacketIn{req, req})
	}
	if got := outs() - sent; got != 10 {
		t.Fatalf("%d replies to 10 punts", got)
	}
	time.Sleep(100 * time.Millisecond) // a handed-off add would be sent by now
	if n := adds(); n != 1 {
		t.Fatalf("the accepted flow was added %d times", n)
	}
	if n := r.m.stats.Answered.Load(); n != 11 {
		t.Fatalf("%d punts counted answered, want 11", n)
	}

	// Older than acceptedFor: added again.
	time.Sleep(r.loop().acceptedFor())
	r.loop().answerPunts(ctx, []ofctl.PacketIn{req})
	ovstest.Eventually(t, 5*time.Second, "the flow added again once stale", func() bool { return adds() == 2 })

	// The loop changing flows forgets what was accepted.
	ovstest.Eventually(t, 5*time.Second, "the second add landed", accepted(1))
	r.loop().kick()
	ovstest.Eventually(t, 5*time.Second, "accepted flows forgotten by a step", accepted(0))
	r.loop().answerPunts(ctx, []ofctl.PacketIn{req})
	ovstest.Eventually(t, 5*time.Second, "the flow added again after a step", func() bool { return adds() == 3 })
}

// loopView is the view the bridge loop answers punts from, once it has
// one: the switch holds a replay's flows a moment before the loop takes
// up its view (setView comes after the bundle commits), so a test that
// saw the replay settle may still find none.
func loopView(t *testing.T, r *rig) *view.View {
	t.Helper()
	ovstest.Eventually(t, 5*time.Second, "the loop's view", func() bool { v, _ := r.loop().view(); return v != nil })
	v, _ := r.loop().view()
	return v
}
