package of

import "testing"

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
