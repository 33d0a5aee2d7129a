package pipeline

import (
	"fmt"
	"github.com/wyvern-sdn/wyvern/internal/golden"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStageRegionsDoNotOverlap(t *testing.T) {
	names := map[string]bool{}
	end := 0
	for i, s := range Stages {
		if s.Size == 0 {
			t.Errorf("stage %s has an empty region", s.Name)
		}
		if int(s.First) < end {
			t.Errorf("stage %s starts at table %d, inside the region of the stage before it (ends %d)", s.Name, s.First, end)
		}
		end = int(s.First) + int(s.Size)
		if end > 254 {
			t.Errorf("stage %s region ends past table 253", s.Name)
		}
		if names[s.Name] {
			t.Errorf("stage %s declared twice", s.Name)
		}
		names[s.Name] = true
		for _, m := range []Miss{s.Miss, s.ProactiveMiss} {
			if m.Kind == MissGoto {
				if _, ok := stageByName[m.Goto]; !ok {
					t.Errorf("stage %s misses to undeclared stage %q", s.Name, m.Goto)
				} else if Table(m.Goto) <= s.First {
					t.Errorf("stage %s misses backwards to %s", s.Name, m.Goto)
				}
			}
		}
		if i == 0 && s.First != 0 {
			t.Errorf("first stage must be table 0, where OVS starts every packet")
		}
		for tbl := s.First; int(tbl) < end; tbl++ {
			if got, ok := StageOf(tbl); !ok || got.Name != s.Name {
				t.Errorf("StageOf(%d) = %v, want %s", tbl, got.Name, s.Name)
			}
		}
	}
}

func TestRegFieldsDoNotOverlap(t *testing.T) {
	for i, a := range RegFields {
		if int(a.Ofs)+int(a.Bits) > int(a.Field.Bits()) {
			t.Errorf("%s does not fit %s", a.Name, a.Field)
		}
		for _, b := range RegFields[i+1:] {
			if a.Field == b.Field && a.Mask()&b.Mask() != 0 {
				t.Errorf("%s and %s overlap in %s", a.Name, b.Name, a.Field)
			}
		}
	}
}

func TestCookieRoundTrip(t *testing.T) {
	x := uint64(88172645463325252)
	next := func() uint64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
	for i := 0; i < 10000; i++ {
		round := uint16(next())
		app := App(next())
		obj := next() & MaxObject
		c := NewCookie(round, app, obj)
		if c.Round() != round || c.App() != app || c.Object() != obj {
			t.Fatalf("NewCookie(%d,%d,%d) decodes as %d,%d,%d", round, app, obj, c.Round(), c.App(), c.Object())
		}
		r2 := uint16(next())
		if d := c.WithRound(r2); d.Round() != r2 || d.App() != app || d.Object() != obj {
			t.Fatalf("WithRound changed more than the round: %v -> %v", c, d)
		}
	}
	if RoundMask&AppMask != 0 || AppMask&ObjectMask != 0 || RoundMask|AppMask|ObjectMask != ^Cookie(0) {
		t.Fatal("cookie masks must partition the 64 bits")
	}
}

func TestBasePipelineGolden(t *testing.T) {
	golden.Check(t, "base_reactive", FormatFlows(MissFlows(Reactive, 1), PipelineNames()))
	golden.Check(t, "base_proactive", FormatFlows(MissFlows(Proactive, 1), PipelineNames()))
}

// TestFormatMatchesOVS checks flows against the exact lines
// `ovs-ofctl -O OpenFlow15 dump-flows --no-stats --names` printed for them on
// Open vSwitch 3.1 (tables unnamed, ports p1=1 and vx=2).
func TestFormatMatchesOVS(t *testing.T) {
	names := &Names{Ports: map[uint32]string{1: "p1", 2: "vx"}}
	mac1, _ := net.ParseMAC("fa:16:3e:00:00:01")
	mac2, _ := net.ParseMAC("fa:16:3e:00:00:02")
	mcast, _ := net.ParseMAC("01:00:00:00:00:00")
	cases := []struct {
		flow Flow
		want string
	}{
		{Flow{Table: 0, Priority: 100, Match: Match{}.InPort(1),
			Actions: []Action{SetReg(SrcPortKey, 5), WriteMetadata{Value: 3}, GotoTable{Table: 10}}},
			"priority=100,in_port=p1 actions=set_field:0x5->reg6,write_metadata:0x3,goto_table:10"},
		{Flow{Table: 0, Priority: 100, Cookie: 0x10000, Match: Match{}.InPort(2).TunID(0x99),
			Actions: []Action{SetReg(FromTunnel, 1), GotoTable{Table: 10}}},
			"cookie=0x10000, priority=100,tun_id=0x99,in_port=vx actions=set_field:0x1/0x1->reg0,goto_table:10"},
		{Flow{Table: 0, Priority: 0}, "priority=0 actions=drop"},
		{Flow{Table: 10, Priority: 50, Match: Match{}.Reg(FromTunnel, 0).Reg(NetworkKey, 3).EthSrc(mac1).
			EthType(EthTypeARP).ARPSPA(netip.MustParseAddr("10.0.0.1")).ARPOp(1),
			Actions: []Action{Resubmit{Table: 20}}},
			"table=10, priority=50,arp,reg0=0/0x1,metadata=0x3,dl_src=fa:16:3e:00:00:01,arp_spa=10.0.0.1,arp_op=1 actions=resubmit(,20)"},
		{Flow{Table: 20, Priority: 0, Actions: []Action{Punt{}}}, "table=20, priority=0 actions=CONTROLLER:65535"},
		{Flow{Table: 20, Priority: 12, Actions: []Action{Punt{UserData: "\x01\x02", MeterID: 3}}},
			"table=20, priority=12 actions=controller(userdata=01.02,meter_id=3)"},
		{Flow{Table: 20, Priority: 13, Actions: []Action{
			Move{Src: FieldReg0, Dst: FieldReg1, SrcOfs: 0, DstOfs: 4, Bits: 4},
			SetField{Field: FieldReg2, Value: 3, Mask: 3}}},
			"table=20, priority=13 actions=move:NXM_NX_REG0[0..3]->NXM_NX_REG1[4..7],set_field:0x3/0x3->reg2"},
		{Flow{Table: 20, Priority: 11, Match: Match{}.EthDstMasked(mcast, mcast),
			Actions: []Action{Output{Port: 1}, Output{Port: PortInPort}, Move{Src: FieldEthSrc, Dst: FieldEthDst}}},
			"table=20, priority=11,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=output:p1,IN_PORT,move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]"},
		{Flow{Table: 20, Priority: 10, IdleTimeout: 30,
			Match: Match{}.EthType(EthTypeIPv4).IPv4Dst(netip.MustParsePrefix("10.0.0.0/24")).With(FieldIPTTL, 64),
			Actions: []Action{DecTTL{}, SetField{Field: FieldEthSrc, Value: MACValue(mac2)},
				SetField{Field: FieldTunDst, Value: IPv4Value(netip.MustParseAddr("172.31.0.2"))},
				SetField{Field: FieldTunID, Value: 0x99}, Output{Port: 2}}},
			"table=20, idle_timeout=30, priority=10,ip,nw_dst=10.0.0.0/24,nw_ttl=64 actions=dec_ttl,set_field:fa:16:3e:00:00:02->eth_src,set_field:172.31.0.2->tun_dst,set_field:0x99->tun_id,output:vx"},
	}
	for _, c := range cases {
		if got := c.flow.Format(names); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}

func TestFormatUsesTableNames(t *testing.T) {
	f := Flow{Table: Table(Classifier), Priority: 0, Actions: []Action{GotoTable{Table: Table(L2Lookup)}}}
	want := "table=Classifier, priority=0 actions=goto_table:L2Lookup"
	if got := f.String(); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestInstructionsMustEndTheList(t *testing.T) {
	f := Flow{Actions: []Action{GotoTable{Table: 3}, Output{Port: 1}}}
	if _, err := AppendFlowMod(nil, 1, FlowMod{Flow: f}); err == nil {
		t.Fatal("goto_table before an action must be rejected")
	}
}

func TestDecodeRejectsTruncated(t *testing.T) {
	f := Flow{Table: 3, Priority: 9, Match: Match{}.InPort(4).Reg(NetworkKey, 5),
		Actions: []Action{SetReg(DstPortKey, 6), Punt{UserData: "x"}, WriteMetadata{Value: 1}, GotoTable{Table: 7}}}
	b, err := AppendFlowMod(nil, 1, FlowMod{Flow: f})
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(b); n++ {
		if _, _, err := DecodeFlowMod(b[:n]); err == nil {
			t.Fatalf("decoding %d of %d bytes succeeded", n, len(b))
		}
	}
}

// TestDecodePacketRegisters: OVS reports registers as OpenFlow 1.5 packet
// registers, two per 64-bit field; they decode into reg2N and reg2N+1.
func TestDecodePacketRegisters(t *testing.T) {
	b := []byte{0, 1, 0, 0}               // OXM match, length set below
	b = append(b, 0x80, 0x01, 3<<1|1, 16) // packet register 3 (reg6:reg7), masked
	b = appendUint64(b, 6<<32|7)
	b = appendUint64(b, 0xffffffff<<32|0xff)
	b = append(b, 0x80, 0x01, 0<<1, 8) // packet register 0 (reg0:reg1), exact
	b = appendUint64(b, 1<<32)         // reg0=1, reg1=0
	b[3] = byte(len(b))
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	m, n, err := DecodeMatch(b, true)
	if err != nil || n != len(b) {
		t.Fatalf("decode: %v (took %d of %d)", err, n, len(b))
	}
	want := Match{}.With(FieldReg6, 6).WithMasked(FieldReg7, 7, 0xff).With(FieldReg0, 1).With(FieldReg1, 0)
	if !m.Equal(want) {
		t.Fatalf("got %v, want %v", m.Conds(), want.Conds())
	}
}

// TestDocsDescribeEveryStage keeps docs/pipeline.md true to the
// declaration: every stage's row names its table, region and misses, and
// every register field is listed.
func TestDocsDescribeEveryStage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "pipeline.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	miss := func(m Miss) string {
		switch m.Kind {
		case MissGoto:
			return "goto " + m.Goto
		case MissPunt:
			return "punt"
		}
		return "drop"
	}
	for _, s := range Stages {
		row := fmt.Sprintf("| %d | %d–%d | %s | %s | %s | %s |", s.First, s.First, int(s.First)+int(s.Size)-1,
			s.Name, s.Owner, miss(s.Miss), miss(s.ProactiveMiss))
		if !strings.Contains(doc, row) {
			t.Errorf("docs/pipeline.md has no row starting %q", row)
		}
	}
	for _, r := range RegFields {
		bits := fmt.Sprintf("%s[%d..%d]", r.Field, r.Ofs, int(r.Ofs)+int(r.Bits)-1)
		if r.Bits == 1 {
			bits = fmt.Sprintf("%s[%d]", r.Field, r.Ofs)
		}
		if !strings.Contains(doc, "| "+r.Name+" | "+bits+" |") {
			t.Errorf("docs/pipeline.md does not list register field %s as %s", r.Name, bits)
		}
	}
}
