package emulator

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/arpresponder"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// controller is the controller side of the test: package ofctl's real
// server, driving the emulated switch as wyvernd drives a bridge.
type controller struct {
	connected chan *ofctl.Switch
	punts     chan ofctl.PacketIn
}

func (c *controller) Connected(ctx context.Context, sw *ofctl.Switch) {
	c.connected <- sw
	<-ctx.Done()
}

// PacketIn answers a punt as the bridge loop does: one flow in a bundle,
// the packet back behind it.
func (c *controller) PacketIn(ctx context.Context, sw *ofctl.Switch, pi ofctl.PacketIn) {
	c.punts <- pi
	f := of.Flow{Table: pi.Table, Priority: 100, Cookie: 0x77, Match: of.Match{}.InPort(pi.InPort()),
		Actions: []of.Action{of.Output{Port: 1}}}
	_ = sw.Apply(ctx, nil, []of.FlowMod{{Command: of.FlowAdd, Flow: f}},
		ofctl.PacketOut{InPort: pi.InPort(), Actions: []of.Action{of.Output{Port: of.PortTable}}, Data: pi.Data})
}

func startController(t *testing.T) (*controller, string) {
	t.Helper()
	c := &controller{connected: make(chan *ofctl.Switch, 1), punts: make(chan ofctl.PacketIn, 16)}
	srv, err := ofctl.Listen(ofctl.Config{Addr: "tcp:127.0.0.1:0", TableNames: pipeline.TableNames()}, c, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c, srv.Target()
}

func testPort(n uint32) Port {
	return Port{OFPort: n, Name: "tap", MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(n)},
		IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(n)}), Key: 100 + n, NetworkKey: 7}
}

// TestSwitchAgainstOfctl runs an emulated switch under package ofctl:
// the handshake, table naming, meters, bundles (add, delete by cookie
// mask, a rejected commit), the flow dump read back by the controller's
// decoder, role requests with a stale generation, and a punt answered
// with a bundle and a packet-out.
func TestSwitchAgainstOfctl(t *testing.T) {
	c, target := startController(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec := &Recorder{}
	sw, err := Dial(ctx, target, Config{DPID: 0xabc, Ports: []Port{testPort(1), testPort(2)}, Answers: rec})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = sw.Run(ctx) }()
	var osw *ofctl.Switch
	select {
	case osw = <-c.connected:
	case <-ctx.Done():
		t.Fatal("the emulated switch never connected")
	}
	if osw.DPID() != 0xabc {
		t.Fatalf("datapath id %x, want abc", osw.DPID())
	}

	keep := func(i int, cookie uint64) of.Flow {
		return of.Flow{Table: 10, Priority: uint16(100 + i), Cookie: cookie,
			Match:   of.Match{}.Reg(pipeline.NetworkKey, 7).EthDst(net.HardwareAddr{2, 0, 0, 0, 1, byte(i)}),
			Actions: []of.Action{of.Output{Port: uint32(i + 1)}}}
	}
	var mods []of.FlowMod
	for i := range 5 {
		mods = append(mods, of.FlowMod{Command: of.FlowAdd, Flow: keep(i, 0x1_0000+uint64(i%2))})
	}
	if err := osw.Apply(ctx, []ofctl.Meter{{ID: 1, Rate: 100, Burst: 100}}, mods); err != nil {
		t.Fatal(err)
	}
	// Again: the meter exists now and is modified, as after a restart.
	if err := osw.Apply(ctx, []ofctl.Meter{{ID: 1, Rate: 200, Burst: 100}}, nil); err != nil {
		t.Fatal(err)
	}
	// Deletes the flows whose cookie ends in 1 (two of the five).
	if err := osw.Bundle(ctx, []of.FlowMod{of.DeleteByCookie(1, 0xf)}); err != nil {
		t.Fatal(err)
	}
	d, err := osw.DumpFlows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Undecodable) != 0 || len(d.Flows) != 3 {
		t.Fatalf("dump: %d flows, %d undecodable; want 3 and 0", len(d.Flows), len(d.Undecodable))
	}
	for _, i := range []int{0, 2, 4} {
		want := keep(i, 0x1_0000)
		if !slices.ContainsFunc(d.Flows, want.Equal) {
			t.Fatalf("dump lacks %s", want)
		}
	}
	ms, err := osw.MeterStats(ctx)
	if err != nil || len(ms) != 1 || ms[0].ID != 1 {
		t.Fatalf("meter stats %+v, %v", ms, err)
	}
	if _, _, err := osw.RequestRole(ctx, ofctl.RoleMaster, 5); err != nil {
		t.Fatal(err)
	}
	if _, _, err := osw.RequestRole(ctx, ofctl.RoleMaster, 4); !errors.Is(err, ofctl.ErrStaleRole) {
		t.Fatalf("stale role request: %v, want ErrStaleRole", err)
	}

	seq, err := sw.SendPunt(Punt{Kind: ARPRequest, From: testPort(2), Target: netip.MustParseAddr("10.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	var pi ofctl.PacketIn
	select {
	case pi = <-c.punts:
	case <-ctx.Done():
		t.Fatal("no punt reached the controller")
	}
	reason, _, ok := pipeline.ParsePuntData(pi.UserData)
	if !ok || reason != pipeline.ReasonARPMiss || pi.InPort() != 2 || pi.Table != pipeline.Table(pipeline.ARPResponder) {
		t.Fatalf("punt: reason %v ok %v in_port %d table %d", reason, ok, pi.InPort(), pi.Table)
	}
	if r, ok := pi.Match.Get(of.FieldReg6); !ok || r.Value != 102 {
		t.Fatalf("punt reg6 %+v, want the port key 102", r)
	}
	if pkt, err := of.ParsePacket(pi.Data); err != nil || pkt.ARPTPA != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("punted frame: %+v %v", pkt, err)
	}
	if got, ok := seqOf(pi.Data); !ok || got != seq {
		t.Fatalf("punted frame carries seq %d %v, want %d", got, ok, seq)
	}
	deadline := time.Now().Add(5 * time.Second)
	for rec.Count() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if rec.Count() != 1 || sw.Outstanding() != 0 {
		t.Fatalf("answers %d, outstanding %d; want 1 and 0", rec.Count(), sw.Outstanding())
	}
	at, err := sw.WaitFlow(ctx, func(f of.Flow) bool { return f.Cookie == 0x77 })
	if err != nil || at.IsZero() {
		t.Fatalf("the answer's flow: %v", err)
	}
	if n := sw.Stats.Bundles.Load(); n != 3 {
		t.Fatalf("%d bundles committed, want 3", n)
	}
}

// TestCovers holds the non-strict selection: a flow-mod's match selects
// the flows at least as specific as it.
func TestCovers(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	flow := of.Match{}.Reg(pipeline.NetworkKey, 7).EthDst(mac)
	for _, c := range []struct {
		m    of.Match
		want bool
	}{
		{of.Match{}, true},
		{of.Match{}.Reg(pipeline.NetworkKey, 7), true},
		{of.Match{}.Reg(pipeline.NetworkKey, 8), false},
		{of.Match{}.Reg(pipeline.NetworkKey, 7).EthType(of.EthTypeARP), false},
	} {
		if got := covers(c.m, flow); got != c.want {
			t.Errorf("covers(%v) = %v, want %v", c.m.Conds(), got, c.want)
		}
	}
}

// packetOutMsg encodes a PACKET_OUT of frame with one output action.
func packetOutMsg(inPort, output uint32, frame []byte) []byte {
	m := of.AppendMatch(nil, of.Match{}.InPort(inPort))
	b := appendHeader(nil, typePacketOut, 9)
	b = be32(b, 0xffffffff) // no buffer
	b = be16(b, 16)         // actions length
	b = append(b, 0, 0)
	b = append(b, m...)
	b = be16(b, 0) // OFPAT_OUTPUT
	b = be16(b, 16)
	b = be32(b, output)
	b = append(b, 0xff, 0xff, 0, 0, 0, 0, 0, 0)
	b = append(b, frame...)
	return finish(b, 0)
}

// TestAnswersAreChecked: an answer counts only if it is right for its
// punt: the punted frame sent back, or the ARP reply the controller's
// arpresponder builds, out of the requester's port; a reply with a
// wrong address or out of another port is counted wrong.
func TestAnswersAreChecked(t *testing.T) {
	p1, p2 := testPort(1), testPort(2)
	rec := &Recorder{}
	s := &Switch{cfg: Config{Ports: []Port{p1, p2}, Answers: rec}, pending: map[uint64]pendingPunt{},
		templates: map[templateKey]*puntTemplate{}, ready: make(chan struct{}), done: make(chan struct{})}
	punt := Punt{Kind: ARPRequest, From: p2, Target: p1.IP}
	frameOf := func(seq uint64) []byte {
		s.pmu.Lock()
		defer s.pmu.Unlock()
		msg, got := s.appendPunt(nil, punt, true, time.Now())
		if got != seq {
			t.Fatalf("seq %d, want %d", got, seq)
		}
		tp := s.template(punt, true)
		return append([]byte(nil), msg[tp.frameAt:tp.frameAt+len(tp.frame)]...)
	}
	reply := func(req []byte, mac net.HardwareAddr, ip netip.Addr) []byte {
		b, ok := arpresponder.ReplyFrame(req, mac, ip)
		if !ok {
			t.Fatal("no reply frame")
		}
		return b
	}
	for i, c := range []struct {
		msg   func(req []byte) []byte
		right bool
	}{
		{func(req []byte) []byte { return packetOutMsg(2, of.PortTable, req) }, true},
		{func(req []byte) []byte { return packetOutMsg(of.PortController, 2, reply(req, p1.MAC, p1.IP)) }, true},
		{func(req []byte) []byte { return packetOutMsg(2, of.PortInPort, reply(req, p1.MAC, p1.IP)) }, true},
		{func(req []byte) []byte { return packetOutMsg(of.PortController, 1, reply(req, p1.MAC, p1.IP)) }, false},
		{func(req []byte) []byte { return packetOutMsg(of.PortController, 2, reply(req, p2.MAC, p1.IP)) }, false},
		{func(req []byte) []byte { return packetOutMsg(of.PortController, 2, reply(req, p1.MAC, p2.IP)) }, false},
	} {
		before, wrong := rec.Count(), s.Stats.WrongAnswers.Load()
		if err := s.answered(c.msg(frameOf(uint64(i + 1)))); err != nil {
			t.Fatal(err)
		}
		if got := rec.Count() - before; got != map[bool]uint64{true: 1}[c.right] {
			t.Errorf("case %d: counted %d answers (wrong: %d, %q)", i, got, s.Stats.WrongAnswers.Load()-wrong, s.FirstWrongAnswer())
		}
		if got := s.Stats.WrongAnswers.Load() - wrong; got != map[bool]uint64{false: 1}[c.right] {
			t.Errorf("case %d: %d wrong answers", i, got)
		}
		if s.Outstanding() != 0 {
			t.Errorf("case %d: the punt is still outstanding", i)
		}
	}
}
