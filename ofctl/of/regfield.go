package of

// RegField is a named bit range of a pipeline register. Wyvern's layout
// declares each one once (package pipeline).
type RegField struct {
	Name  string
	Field FieldID // FieldMetadata or FieldReg0..FieldReg7
	Ofs   uint8   // first bit
	Bits  uint8   // width
}

// Mask is the field's bit mask within its register.
func (r RegField) Mask() uint64 {
	if r.Bits >= 64 {
		return ^uint64(0)
	}
	return (1<<r.Bits - 1) << r.Ofs
}

// Value places v into the field's bits.
func (r RegField) Value(v uint64) uint64 { return v << r.Ofs & r.Mask() }

// Cond is the condition that the field holds v, for MatchOf. Two fields
// of one register need With's merge (Match.Reg), not two Conds.
func (r RegField) Cond(v uint64) Cond { return Cond{r.Field, r.Value(v), r.Mask()} }
