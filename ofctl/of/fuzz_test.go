package of_test

import (
	"encoding/binary"
	"math/rand"
	"net/netip"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/flowgen"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// flowDesc builds an ofp_flow_desc entry, as a switch sends in a dump.
func flowDesc(f of.Flow) []byte {
	fm, err := of.AppendFlowMod(nil, 0, of.FlowMod{Flow: f})
	if err != nil {
		panic(err)
	}
	b := make([]byte, 24)
	b[4] = f.Table
	binary.BigEndian.PutUint16(b[6:], f.Priority)
	binary.BigEndian.PutUint16(b[8:], f.IdleTimeout)
	binary.BigEndian.PutUint16(b[10:], f.HardTimeout)
	binary.BigEndian.PutUint64(b[16:], uint64(f.Cookie))
	b = of.AppendMatch(b, f.Match)
	// ofp_stats with duration and packet count, as OVS sends them.
	b = append(b, 0, 0, 0, 28)
	b = append(b, 0x80, 0x02, 0x00, 0x08, 0, 0, 0, 1, 0, 0, 0, 2)
	b = append(b, 0x80, 0x02, 0x08, 0x08, 0, 0, 0, 0, 0, 0, 0, 3)
	b = append(b, 0, 0, 0, 0)
	// The flow-mod's instructions follow its 48-byte header and match.
	_, n, _ := of.DecodeMatch(fm[48:], true)
	b = append(b, fm[48+n:]...)
	binary.BigEndian.PutUint16(b, uint16(len(b)))
	return b
}

// conntrackSeeds are flows with every VLAN and conntrack action and field,
// so the fuzzers start from their encodings too.
func conntrackSeeds() []of.Flow {
	ip := of.Match{}.EthType(of.EthTypeIPv4)
	addr := netip.MustParseAddr("203.0.113.10")
	return []of.Flow{
		{Table: 1, Priority: 10, Match: of.Match{}.InPort(1).NoVLAN(),
			Actions: []of.Action{of.PushVLAN{}, of.SetVLAN(100), of.Output{Port: 2}}},
		{Table: 1, Priority: 11, Match: of.Match{}.VLAN(100), Actions: []of.Action{of.PopVLAN{}, of.GotoTable{Table: 2}}},
		{Table: 2, Priority: 10, Match: ip, Actions: []of.Action{
			of.CT{Commit: true, Zone: 32769, Table: 11, NAT: of.NAT{Kind: of.NATSrc, Addr: addr, Port: 4000},
				SetMark: true, Mark: 1, MarkMask: 1}}},
		{Table: 2, Priority: 11, Match: ip, Actions: []of.Action{of.CT{Zone: 7, Table: 12, NAT: of.NAT{Kind: of.NATReverse}}}},
		{Table: 2, Priority: 12, Match: ip, Actions: []of.Action{of.CT{Commit: true, Table: of.NoRecirc, NAT: of.NAT{Kind: of.NATDst}}}},
		{Table: 12, Priority: 10, Match: ip.CTState(of.CTTrk|of.CTEst, of.CTNew).CTZone(7).CTMark(1, 1),
			Actions: []of.Action{of.Move{Src: of.FieldCTMark, Dst: of.FieldReg1}}},
	}
}

// FuzzDecodeFlowDesc feeds flow-dump entries to the decoder: it must never
// panic, must consume within bounds, and a flow it accepts must survive a
// re-encode unchanged.
func FuzzDecodeFlowDesc(f *testing.F) {
	rng := rand.New(rand.NewSource(11))
	for i := 0; i < 16; i++ {
		f.Add(flowDesc(flowgen.Flow(rng)))
	}
	for _, fl := range conntrackSeeds() {
		f.Add(flowDesc(fl))
	}
	f.Add([]byte{0, 24})
	f.Fuzz(func(t *testing.T, b []byte) {
		fl, n, err := of.DecodeFlowDesc(b)
		if n < 0 || n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		if err != nil {
			return
		}
		again, n2, err := of.DecodeFlowDesc(flowDesc(fl))
		if err != nil || n2 == 0 || !again.Equal(fl) {
			t.Fatalf("accepted flow does not round-trip: %v\n got %s\nwant %s", err, again, fl)
		}
	})
}

// FuzzDecodeFlowMod checks the flow-mod decoder the same way.
func FuzzDecodeFlowMod(f *testing.F) {
	rng := rand.New(rand.NewSource(12))
	for i := 0; i < 16; i++ {
		b, err := of.AppendFlowMod(nil, uint32(i), of.FlowMod{Flow: flowgen.Flow(rng)})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for i, fl := range conntrackSeeds() {
		b, err := of.AppendFlowMod(nil, uint32(100+i), of.FlowMod{Flow: fl})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		xid, fm, err := of.DecodeFlowMod(b)
		if err != nil {
			return
		}
		enc, err := of.AppendFlowMod(nil, xid, fm)
		if err != nil {
			// The decoder accepts only what the encoder can write.
			t.Fatalf("decoded flow-mod does not encode: %v", err)
		}
		_, again, err := of.DecodeFlowMod(enc)
		if err != nil || !again.Flow.Equal(fm.Flow) {
			t.Fatalf("accepted flow-mod does not round-trip: %v", err)
		}
	})
}
