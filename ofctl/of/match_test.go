package of

import (
	"encoding/binary"
	"testing"
)

// TestMatchOfIsTheWithChain: MatchOf builds what the chain of With calls
// builds, in any order of its conditions, the later of two on a field
// winning and a zero mask dropping one, in one allocation.
func TestMatchOfIsTheWithChain(t *testing.T) {
	reg := RegField{Name: "net", Field: FieldReg5, Ofs: 8, Bits: 16}
	want := Match{}.Reg(reg, 7).EthType(EthTypeARP).ARPOp(ARPRequest).With(FieldARPTPA, 0x0a000001)
	got := MatchOf(Exact(FieldARPTPA, 0x0a000001), Exact(FieldARPOp, 9), reg.Cond(7), Exact(FieldEthType, EthTypeARP), Exact(FieldARPOp, ARPRequest))
	if !got.Equal(want) {
		t.Fatalf("MatchOf %v, the With chain %v", got.Conds(), want.Conds())
	}
	if m := MatchOf(Exact(FieldEthType, EthTypeARP), Cond{FieldEthType, 0, 0}); m.Len() != 0 || !m.Equal(Match{}) {
		t.Fatalf("a zero mask kept %v", m.Conds())
	}
	if n := testing.AllocsPerRun(100, func() {
		_ = MatchOf(reg.Cond(7), Exact(FieldEthType, EthTypeARP), Exact(FieldARPOp, ARPRequest))
	}); n != 1 {
		t.Fatalf("MatchOf took %v allocations, want 1", n)
	}
}

// TestPacketOutMatchIsKeptFieldsAndInPort: AppendPacketOutMatch encodes
// what AppendMatch does of m's kept fields with the in_port given (in
// place of the match's own), without allocating.
func TestPacketOutMatchIsKeptFieldsAndInPort(t *testing.T) {
	keep := func(f FieldID) bool { return f == FieldMetadata || f == FieldReg6 || f == FieldTunID }
	reg := RegField{Name: "net", Field: FieldReg5, Ofs: 8, Bits: 16}
	for _, m := range []Match{
		{},
		Match{}.InPort(3),
		Match{}.InPort(3).With(FieldMetadata, 0x1234).With(FieldReg6, 9).Reg(reg, 7).EthType(EthTypeARP),
		Match{}.WithMasked(FieldTunID, 0x10, 0xff).With(FieldReg6, 1),
	} {
		var kept Match
		for _, c := range m.Conds() {
			if keep(c.Field) {
				kept = kept.WithMasked(c.Field, c.Value, c.Mask)
			}
		}
		want := AppendMatch(nil, kept.InPort(42))
		got := AppendPacketOutMatch(nil, m, 42, keep)
		if string(got) != string(want) {
			t.Errorf("match %v: got %x, want %x", m.Conds(), got, want)
		}
	}
	m := Match{}.InPort(3).With(FieldMetadata, 0x1234).With(FieldReg6, 9).EthType(EthTypeARP)
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { _ = AppendPacketOutMatch(buf[:0], m, 42, keep) }); n != 0 {
		t.Fatalf("AppendPacketOutMatch took %v allocations, want 0", n)
	}
}

// TestDecodedMatchIsOneAllocation: DecodeOXMs gives back what was
// encoded, its conditions in one array just large enough (a punt's
// match, a dumped flow's), registers included.
func TestDecodedMatchIsOneAllocation(t *testing.T) {
	reg := RegField{Name: "net", Field: FieldReg5, Ofs: 8, Bits: 16}
	m := Match{}.InPort(3).With(FieldMetadata, 0x1234).With(FieldReg6, 9).Reg(reg, 7).EthType(EthTypeARP)
	enc := AppendMatch(nil, m)
	oxms := enc[4:binary.BigEndian.Uint16(enc[2:])] // the OXMs, without the match header and padding
	got, err := DecodeOXMs(oxms, true)
	if err != nil || !got.Equal(m) {
		t.Fatalf("decoded %v (%v), want %v", got.Conds(), err, m.Conds())
	}
	if c := cap(got.conds); c != m.Len() {
		t.Errorf("%d conditions decoded into an array of %d", m.Len(), c)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = DecodeOXMs(oxms, true) }); n != 1 {
		t.Fatalf("DecodeOXMs took %v allocations, want 1", n)
	}
}
