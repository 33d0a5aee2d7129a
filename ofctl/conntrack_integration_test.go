package ofctl

import (
	"context"
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// conntrackFlows uses every VLAN and conntrack action and field of the
// model, in forms a netdev bridge accepts (ct and nat need an IP match,
// pop_vlan and set_field:->vlan_vid a tag), from port 1 and port 2.
func conntrackFlows() []of.Flow {
	ip := of.Match{}.EthType(of.EthTypeIPv4)
	cookie := pipeline.NewCookie(1, pipeline.AppTest, 35)
	snat := netip.MustParseAddr("203.0.113.10")
	backend := netip.MustParseAddr("10.0.0.5")
	anyVLAN := of.Match{}.WithMasked(of.FieldVLANVID, of.VLANPresent, of.VLANPresent)
	return []of.Flow{
		{Table: 0, Priority: 100, Cookie: cookie, Match: of.Match{}.InPort(1).NoVLAN(),
			Actions: []of.Action{of.PushVLAN{}, of.SetVLAN(100), of.Output{Port: 2}}},
		{Table: 0, Priority: 100, Cookie: cookie, Match: of.Match{}.InPort(2).VLAN(100),
			Actions: []of.Action{of.PopVLAN{}, of.Output{Port: 1}}},
		{Table: 0, Priority: 90, Cookie: cookie, Match: ip.InPort(2).NoVLAN(),
			Actions: []of.Action{of.CT{Commit: true, Zone: 32769, Table: 11,
				NAT: of.NAT{Kind: of.NATSrc, Addr: snat}, SetMark: true, Mark: 1, MarkMask: 1}}},
		{Table: 0, Priority: 80, Cookie: cookie, Match: ip.InPort(3),
			Actions: []of.Action{of.CT{Zone: 7, Table: 12, NAT: of.NAT{Kind: of.NATReverse}}}},
		{Table: 0, Priority: 80, Cookie: cookie, Match: anyVLAN.EthType(of.EthTypeIPv4),
			Actions: []of.Action{of.PopVLAN{}, of.CT{Table: 12}}},
		{Table: 0, Priority: 70, Cookie: cookie, Match: ip.InPort(1),
			Actions: []of.Action{of.CT{Commit: true, Table: of.NoRecirc, NAT: of.NAT{Kind: of.NATDst, Addr: backend, Port: 8080}}, of.Output{Port: 2}}},
		{Table: 0, Priority: 60, Cookie: cookie, Match: ip,
			Actions: []of.Action{of.CT{Commit: true, Table: of.NoRecirc, NAT: of.NAT{Kind: of.NATSrc}}, of.CT{Zone: 9, Table: 12}}},
		{Table: 11, Priority: 10, Cookie: cookie, Match: ip.CTState(of.CTEst|of.CTTrk, 0).CTZone(32769).CTMark(1, 1),
			Actions: []of.Action{of.Output{Port: 1}}},
		{Table: 11, Priority: 9, Cookie: cookie, Match: ip.CTState(of.CTTrk, of.CTNew),
			Actions: []of.Action{of.Move{Src: of.FieldCTMark, Dst: of.FieldReg1}, of.Move{Src: of.FieldCTZone, Dst: of.FieldReg2, Bits: 16}, of.Output{Port: 1}}},
		{Table: 12, Priority: 10, Cookie: cookie, Match: ip.With(of.FieldCTState, of.CTNew|of.CTTrk).CTMark(5, 0xffffffff),
			Actions: []of.Action{of.CT{Commit: true, Zone: 7, Table: of.NoRecirc, SetMark: true}}},
		{Table: 12, Priority: 9, Cookie: cookie, Match: of.Match{}.With(of.FieldCTState, 0)},
		{Table: 12, Priority: 8, Cookie: cookie, Match: of.Match{}.CTState(0, of.CTTrk)},
	}
}

// TestConntrackAndVLANOnRealOVS installs flows with every VLAN and
// conntrack action and field through the Go session (our encoder), then:
// ovs-ofctl prints each exactly as Flow.Format does; our decoder reads the
// switch's flow stats back to the same flows; the same flows added as text
// by ovs-ofctl decode to them too; and ofproto/trace shows push_vlan with
// the VID set and the ct(commit,nat(src=...)) reaching the datapath.
func TestConntrackAndVLANOnRealOVS(t *testing.T) {
	o, br, _, sw := realSwitch(t)
	ctx := context.Background()
	p1, p2 := ovstest.Name("ctp"), ovstest.Name("ctp")
	o.Vsctl("add-port", br, p1, "--", "set", "interface", p1, "type=internal", "ofport_request=1",
		"--", "add-port", br, p2, "--", "set", "interface", p2, "type=internal", "ofport_request=2")
	names := &of.Names{Ports: map[uint32]string{1: p1, 2: p2}, Tables: pipeline.TableNames()}

	flows := conntrackFlows()
	want := of.NewFlowSet(flows...)
	mods := make([]of.FlowMod, 0, len(flows))
	for _, f := range flows {
		mods = append(mods, of.FlowMod{Command: of.FlowAdd, Flow: f})
	}
	if err := sw.Bundle(ctx, mods); err != nil {
		t.Fatal(err)
	}
	checkDump := func(how string) {
		t.Helper()
		dump, err := sw.DumpFlows(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range dump.Undecodable {
			t.Errorf("%s: undecodable flow %s: %v", how, u.Flow, u.Err)
		}
		if got := of.NewFlowSet(dump.Flows...); !got.Equal(want) {
			c := of.Diff(want, got)
			t.Fatalf("%s: the switch's flows decode differently: %s; first: %v", how, c, firstOf(c))
		}
		text := o.DumpFlows(br)
		model := of.FormatFlows(flows, names)
		if len(text) != len(model) {
			t.Fatalf("%s: ovs-ofctl printed %d flows, the model %d:\n%s", how, len(text), len(model), strings.Join(text, "\n"))
		}
		for i := range text {
			if text[i] != model[i] {
				t.Errorf("%s: ovs-ofctl and the model print differently:\novs-ofctl: %s\nmodel:     %s", how, text[i], model[i])
			}
		}
	}
	checkDump("installed by the session")

	// trace returns the "Datapath actions:" of each pass (the first, then
	// one per recirculation). Datapath ports differ from OpenFlow ports.
	trace := func(args ...string) []string {
		t.Helper()
		out, err := o.Appctl(append([]string{"ofproto/trace", br}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var dp []string
		for _, l := range strings.Split(out, "\n") {
			if a, ok := strings.CutPrefix(l, "Datapath actions: "); ok {
				dp = append(dp, a)
			}
		}
		t.Logf("trace %s: %q", args, dp)
		return dp
	}
	expect := func(dp []string, want ...string) {
		t.Helper()
		if len(dp) != len(want) {
			t.Fatalf("datapath actions %q, want %d passes matching %q", dp, len(want), want)
		}
		for i := range want {
			if !regexp.MustCompile(want[i]).MatchString(dp[i]) {
				t.Fatalf("datapath actions %q, want %q", dp, want)
			}
		}
	}
	const pkt = "dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,ip,nw_src=10.0.0.1,nw_dst=10.0.0.2"
	// push_vlan then set_field:4196->vlan_vid leaves tagged with VID 100.
	expect(trace("in_port=1,"+pkt), `^push_vlan\(vid=100,pcp=0\),\d+$`)
	popped := trace("in_port=2,dl_vlan=100," + pkt)
	expect(popped, `^pop_vlan,\d+$`)
	port1 := strings.TrimPrefix(popped[0], "pop_vlan,") // OpenFlow port 1 in the datapath
	// ct(commit,nat(src=...),exec(ct_mark)) reaches the datapath; resumed
	// as an established connection, the packet matches table 11 on
	// ct_state, ct_zone and ct_mark and goes out port 1.
	expect(trace("in_port=2,"+pkt, "--ct-next", "trk,est"),
		`^ct\(commit,zone=32769,mark=0x1/0x1,nat\(src=203\.0\.113\.10\)\),recirc\(0x[0-9a-f]+\)$`, `^`+port1+`$`)

	// The same flows as text through ovs-ofctl (numbers, not names) decode
	// to the same model.
	o.Ofctl("del-flows", br)
	var lines []string
	for _, f := range flows {
		lines = append(lines, f.Format(nil))
	}
	file := filepath.Join(o.Dir, "ct-flows.txt")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o.Ofctl("add-flows", br, file)
	checkDump("added as text by ovs-ofctl")
}

// TestConntrackPacketInOnRealOVS: a packet-out through ct(commit,zone=5,
// exec(set_field:0x2a->ct_mark),table=11) and a punt in table 11 comes
// back with the tracker's verdict in its metadata, which OVS reports as
// NXM ct_state (masked 0xff), ct_zone and ct_mark: they decode into the
// model's fields.
func TestConntrackPacketInOnRealOVS(t *testing.T) {
	punts := make(chan PacketIn, 4)
	_, _, _, sw := realSwitchPunting(t, func(pi PacketIn) { punts <- pi })
	ctx := context.Background()
	cookie := pipeline.NewCookie(1, pipeline.AppTest, 36)
	flows := []of.FlowMod{
		{Command: of.FlowAdd, Flow: of.Flow{Table: 0, Priority: 10, Cookie: cookie, Match: of.Match{}.EthType(of.EthTypeIPv4),
			Actions: []of.Action{of.CT{Commit: true, Zone: 5, Table: 11, SetMark: true, Mark: 0x2a}}}},
		{Command: of.FlowAdd, Flow: of.Flow{Table: 11, Priority: 10, Cookie: cookie, Match: of.Match{}.CTState(of.CTTrk, 0),
			Actions: []of.Action{of.Punt{UserData: "ct"}}}},
	}
	if err := sw.Bundle(ctx, flows); err != nil {
		t.Fatal(err)
	}
	frame := udpFrame(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), 4000, 53)
	if err := sw.PacketOut(ctx, PacketOut{InPort: of.PortController, Actions: []of.Action{of.Resubmit{Table: 0}}, Data: frame}); err != nil {
		t.Fatal(err)
	}
	select {
	case pi := <-punts:
		state, _ := pi.Match.Get(of.FieldCTState)
		zone, _ := pi.Match.Get(of.FieldCTZone)
		mark, _ := pi.Match.Get(of.FieldCTMark)
		t.Logf("punt from table %d: ct_state=%#x/%#x ct_zone=%d ct_mark=%#x", pi.Table, state.Value, state.Mask, zone.Value, mark.Value)
		want := of.Match{}.With(of.FieldCTState, of.CTNew|of.CTTrk).CTZone(5).CTMark(0x2a, 0xffffffff)
		for _, f := range []of.FieldID{of.FieldCTState, of.FieldCTZone, of.FieldCTMark} {
			got, _ := pi.Match.Get(f)
			w, _ := want.Get(f)
			if got != w {
				t.Errorf("punt %s: got %#x/%#x, want %#x/%#x", f, got.Value, got.Mask, w.Value, w.Mask)
			}
		}
		if string(pi.UserData) != "ct" || pi.Table != 11 {
			t.Errorf("punt: userdata %q from table %d", pi.UserData, pi.Table)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no punt")
	}
}

// udpFrame builds an Ethernet/IPv4/UDP frame with a correct IPv4 header
// checksum (the userspace connection tracker drops a bad one).
func udpFrame(src, dst netip.Addr, sport, dport uint16) []byte {
	b := []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00}
	ip := []byte{0x45, 0, 0, 28, 0, 1, 0, 0, 64, of.IPProtoUDP, 0, 0}
	ip = append(ip, src.AsSlice()...)
	ip = append(ip, dst.AsSlice()...)
	var sum uint32
	for i := 0; i < len(ip); i += 2 {
		sum += uint32(ip[i])<<8 | uint32(ip[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	b = append(b, ip...)
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = append(b, 0, 8, 0, 0) // length 8, no checksum
	return append(b, make([]byte, 60-len(b))...)
}
