package of

import (
	"net"
	"net/netip"
	"testing"
)

// Register fields of the tests' own, as a pipeline declares them.
var (
	testNetwork = RegField{Name: "Network", Field: FieldMetadata, Ofs: 0, Bits: 64}
	testFlag    = RegField{Name: "Flag", Field: FieldReg0, Ofs: 0, Bits: 1}
	testSrcPort = RegField{Name: "SrcPort", Field: FieldReg6, Ofs: 0, Bits: 32}
	testDstPort = RegField{Name: "DstPort", Field: FieldReg7, Ofs: 0, Bits: 32}
)

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
			Actions: []Action{SetReg(testSrcPort, 5), WriteMetadata{Value: 3}, GotoTable{Table: 10}}},
			"priority=100,in_port=p1 actions=set_field:0x5->reg6,write_metadata:0x3,goto_table:10"},
		{Flow{Table: 0, Priority: 100, Cookie: 0x10000, Match: Match{}.InPort(2).TunID(0x99),
			Actions: []Action{SetReg(testFlag, 1), GotoTable{Table: 10}}},
			"cookie=0x10000, priority=100,tun_id=0x99,in_port=vx actions=set_field:0x1/0x1->reg0,goto_table:10"},
		{Flow{Table: 0, Priority: 0}, "priority=0 actions=drop"},
		{Flow{Table: 10, Priority: 50, Match: Match{}.Reg(testFlag, 0).Reg(testNetwork, 3).EthSrc(mac1).
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

func TestInstructionsMustEndTheList(t *testing.T) {
	f := Flow{Actions: []Action{GotoTable{Table: 3}, Output{Port: 1}}}
	if _, err := AppendFlowMod(nil, 1, FlowMod{Flow: f}); err == nil {
		t.Fatal("goto_table before an action must be rejected")
	}
}

func TestDecodeRejectsTruncated(t *testing.T) {
	f := Flow{Table: 3, Priority: 9, Match: Match{}.InPort(4).Reg(testNetwork, 5),
		Actions: []Action{SetReg(testDstPort, 6), Punt{UserData: "x"}, WriteMetadata{Value: 1}, GotoTable{Table: 7}}}
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
