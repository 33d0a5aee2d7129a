package pipeline

// RegField is a named bit range of a pipeline register. Every register use
// in Wyvern is declared here, once, with its bits.
type RegField struct {
	Name  string
	Field FieldID // FieldMetadata or FieldReg0..FieldReg7
	Ofs   uint8   // first bit
	Bits  uint8   // width
}

// The pipeline's register layout.
//
//	metadata[0..63]  NetworkKey   logical network of the packet
//	reg0[0]          FromTunnel   packet entered through a tunnel port
//	reg0[1]          Routed       packet was routed by DVR on this chassis
//	reg0[2]          PktLarger    packet is larger than the MTU of the network it is routed to
//	reg0[3]          MTUChecked   L3Lookup has checked the packet against that MTU
//	reg5[0..31]      RouterKey    logical router routing the packet
//	reg6[0..31]      SrcPortKey   logical port the packet came from
//	reg7[0..31]      DstPortKey   logical port the packet goes to
var (
	NetworkKey = RegField{"NetworkKey", FieldMetadata, 0, 64}
	FromTunnel = RegField{"FromTunnel", FieldReg0, 0, 1}
	Routed     = RegField{"Routed", FieldReg0, 1, 1}
	PktLarger  = RegField{"PktLarger", FieldReg0, 2, 1}
	MTUChecked = RegField{"MTUChecked", FieldReg0, 3, 1}
	RouterKey  = RegField{"RouterKey", FieldReg5, 0, 32}
	SrcPortKey = RegField{"SrcPortKey", FieldReg6, 0, 32}
	DstPortKey = RegField{"DstPortKey", FieldReg7, 0, 32}
)

// RegFields lists every declared register field, for the overlap test and
// for documentation.
var RegFields = []RegField{NetworkKey, FromTunnel, Routed, PktLarger, MTUChecked, RouterKey, SrcPortKey, DstPortKey}

// Mask is the field's bit mask within its register.
func (r RegField) Mask() uint64 {
	if r.Bits >= 64 {
		return ^uint64(0)
	}
	return (1<<r.Bits - 1) << r.Ofs
}

// Value places v into the field's bits.
func (r RegField) Value(v uint64) uint64 { return v << r.Ofs & r.Mask() }
