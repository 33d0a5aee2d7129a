package pipeline

import "github.com/wyvern-sdn/wyvern/ofctl/of"

// The pipeline's register layout.
//
//	metadata[0..63]  NetworkKey   logical network of the packet
//	reg0[0]          FromRemote   packet entered from another chassis: a tunnel port or a physical network
//	reg0[4]          FromPhysical packet entered from a physical network (a bridge mapping's patch port)
//	reg0[1]          Routed       packet was routed by DVR on this chassis
//	reg0[2]          PktLarger    packet is larger than the MTU of the network it is routed to
//	reg0[3]          MTUChecked   L3Lookup has checked the packet against that MTU
//	reg5[0..31]      RouterKey    logical router routing the packet
//	reg6[0..31]      SrcPortKey   logical port the packet came from
//	reg7[0..31]      DstPortKey   logical port the packet goes to
var (
	NetworkKey   = of.RegField{Name: "NetworkKey", Field: of.FieldMetadata, Ofs: 0, Bits: 64}
	FromRemote   = of.RegField{Name: "FromRemote", Field: of.FieldReg0, Ofs: 0, Bits: 1}
	Routed       = of.RegField{Name: "Routed", Field: of.FieldReg0, Ofs: 1, Bits: 1}
	PktLarger    = of.RegField{Name: "PktLarger", Field: of.FieldReg0, Ofs: 2, Bits: 1}
	MTUChecked   = of.RegField{Name: "MTUChecked", Field: of.FieldReg0, Ofs: 3, Bits: 1}
	FromPhysical = of.RegField{Name: "FromPhysical", Field: of.FieldReg0, Ofs: 4, Bits: 1}
	RouterKey    = of.RegField{Name: "RouterKey", Field: of.FieldReg5, Ofs: 0, Bits: 32}
	SrcPortKey   = of.RegField{Name: "SrcPortKey", Field: of.FieldReg6, Ofs: 0, Bits: 32}
	DstPortKey   = of.RegField{Name: "DstPortKey", Field: of.FieldReg7, Ofs: 0, Bits: 32}
)

// RegFields lists every declared register field, for the overlap test and
// for documentation.
var RegFields = []of.RegField{NetworkKey, FromRemote, Routed, PktLarger, MTUChecked, FromPhysical, RouterKey, SrcPortKey, DstPortKey}

// PortZone is the conntrack zone of a filtered port's connections, both
// directions: 1..0x7fff, from its key.
func PortZone(key uint32) uint16 { return uint16((key-1)%0x7fff + 1) }

// CTMarkBlocked is the ct_mark bit of a connection that no rule allows
// any more (a rule was removed): its packets are dropped, both ways.
const CTMarkBlocked = 0x1

// RouterZone is the conntrack zone of a router's NAT on every chassis:
// its floating IPs' DNAT and SNAT, its port forwardings and its
// gateway's SNAT share it. Zones 0x8000 and up are routers'; the rest is
// left to ports.
func RouterZone(key uint32) uint16 { return 0x8000 | uint16(key&0x7fff) }
