package of

// FieldID names a packet or pipeline field that flows match on and actions
// write. The order of the constants is the canonical order of a Match.
type FieldID uint8

// The fields Wyvern's pipeline uses. IPv4 only: the northbound API accepts
// ip_version 4.
const (
	FieldInPort FieldID = iota + 1
	FieldMetadata
	FieldReg0
	FieldReg1
	FieldReg2
	FieldReg3
	FieldReg4
	FieldReg5
	FieldReg6
	FieldReg7
	FieldTunID
	FieldTunSrc
	FieldTunDst
	FieldEthSrc
	FieldEthDst
	FieldEthType
	FieldIPProto
	FieldIPv4Src
	FieldIPv4Dst
	FieldIPTTL
	FieldARPOp
	FieldARPSPA
	FieldARPTPA
	FieldARPSHA
	FieldARPTHA
	FieldTCPSrc
	FieldTCPDst
	FieldUDPSrc
	FieldUDPDst
	FieldICMPType
	FieldICMPCode
	FieldVLANVID // OpenFlow 1.2+ vlan_vid: the VID with VLANPresent; 0 is no 802.1Q header
	FieldCTState // the connection tracker's verdict on a tracked packet: CTNew, CTTrk...
	FieldCTZone
	FieldCTMark
	FieldConjID // set by a completed conjunctive match; flows match it to act on one
	fieldCount
)

// valueKind says how ovs-ofctl prints a field's value.
type valueKind uint8

const (
	kindHex     valueKind = iota // 0x1f, masked 0x1/0x1 (regs, metadata, tun_id)
	kindDecimal                  // 64; masked as 0x../0x.. (ports, ttl, proto, arp_op)
	kindMAC                      // fa:16:3e:00:00:01[/mask]
	kindIPv4                     // 10.0.0.1, 10.0.0.0/24, or ip/mask
	kindPort                     // OpenFlow port: name, reserved name or number
)

// oxmClass values (OpenFlow 1.5 section 7.2.3.2).
const (
	oxmClassNXM0  = 0x0000
	oxmClassNXM1  = 0x0001
	oxmClassBasic = 0x8000
	// oxmClassPacketRegs is OpenFlow 1.5's OXM_OF_PKT_REG class, in which
	// OVS reports reg0..reg7 as four 64-bit pairs.
	oxmClassPacketRegs = 0x8001
)

// fieldInfo is everything the formatter and the codec need about a field.
type fieldInfo struct {
	name    string // ovs-ofctl match and set_field name
	nxmName string // name ovs-ofctl uses in move:SRC[]->DST[]
	bytes   uint8  // width on the wire
	kind    valueKind
	class   uint16 // OXM class Wyvern encodes with
	field   uint8  // OXM field Wyvern encodes with
	// aliases are other (class, field) pairs a switch may use for this
	// field in dumps and packet-ins.
	aliases [][2]uint16
}

var fields = [fieldCount]fieldInfo{
	FieldInPort:   {"in_port", "NXM_OF_IN_PORT", 4, kindPort, oxmClassBasic, 0, nil},
	FieldMetadata: {"metadata", "OXM_OF_METADATA", 8, kindHex, oxmClassBasic, 2, nil},
	FieldReg0:     {"reg0", "NXM_NX_REG0", 4, kindHex, oxmClassNXM1, 0, nil},
	FieldReg1:     {"reg1", "NXM_NX_REG1", 4, kindHex, oxmClassNXM1, 1, nil},
	FieldReg2:     {"reg2", "NXM_NX_REG2", 4, kindHex, oxmClassNXM1, 2, nil},
	FieldReg3:     {"reg3", "NXM_NX_REG3", 4, kindHex, oxmClassNXM1, 3, nil},
	FieldReg4:     {"reg4", "NXM_NX_REG4", 4, kindHex, oxmClassNXM1, 4, nil},
	FieldReg5:     {"reg5", "NXM_NX_REG5", 4, kindHex, oxmClassNXM1, 5, nil},
	FieldReg6:     {"reg6", "NXM_NX_REG6", 4, kindHex, oxmClassNXM1, 6, nil},
	FieldReg7:     {"reg7", "NXM_NX_REG7", 4, kindHex, oxmClassNXM1, 7, nil},
	FieldTunID:    {"tun_id", "NXM_NX_TUN_ID", 8, kindHex, oxmClassBasic, 38, [][2]uint16{{oxmClassNXM1, 16}}},
	FieldTunSrc:   {"tun_src", "NXM_NX_TUN_IPV4_SRC", 4, kindIPv4, oxmClassNXM1, 31, nil},
	FieldTunDst:   {"tun_dst", "NXM_NX_TUN_IPV4_DST", 4, kindIPv4, oxmClassNXM1, 32, nil},
	FieldEthSrc:   {"eth_src", "NXM_OF_ETH_SRC", 6, kindMAC, oxmClassBasic, 4, [][2]uint16{{oxmClassNXM0, 2}}},
	FieldEthDst:   {"eth_dst", "NXM_OF_ETH_DST", 6, kindMAC, oxmClassBasic, 3, [][2]uint16{{oxmClassNXM0, 1}}},
	FieldEthType:  {"eth_type", "NXM_OF_ETH_TYPE", 2, kindHex, oxmClassBasic, 5, [][2]uint16{{oxmClassNXM0, 3}}},
	FieldIPProto:  {"nw_proto", "NXM_OF_IP_PROTO", 1, kindDecimal, oxmClassBasic, 10, [][2]uint16{{oxmClassNXM0, 6}}},
	FieldIPv4Src:  {"ip_src", "NXM_OF_IP_SRC", 4, kindIPv4, oxmClassBasic, 11, [][2]uint16{{oxmClassNXM0, 7}}},
	FieldIPv4Dst:  {"ip_dst", "NXM_OF_IP_DST", 4, kindIPv4, oxmClassBasic, 12, [][2]uint16{{oxmClassNXM0, 8}}},
	FieldIPTTL:    {"nw_ttl", "NXM_NX_IP_TTL", 1, kindDecimal, oxmClassNXM1, 29, nil},
	FieldARPOp:    {"arp_op", "NXM_OF_ARP_OP", 2, kindDecimal, oxmClassBasic, 21, [][2]uint16{{oxmClassNXM0, 15}}},
	FieldARPSPA:   {"arp_spa", "NXM_OF_ARP_SPA", 4, kindIPv4, oxmClassBasic, 22, [][2]uint16{{oxmClassNXM0, 16}}},
	FieldARPTPA:   {"arp_tpa", "NXM_OF_ARP_TPA", 4, kindIPv4, oxmClassBasic, 23, [][2]uint16{{oxmClassNXM0, 17}}},
	FieldARPSHA:   {"arp_sha", "NXM_NX_ARP_SHA", 6, kindMAC, oxmClassBasic, 24, [][2]uint16{{oxmClassNXM1, 17}}},
	FieldARPTHA:   {"arp_tha", "NXM_NX_ARP_THA", 6, kindMAC, oxmClassBasic, 25, [][2]uint16{{oxmClassNXM1, 18}}},
	FieldTCPSrc:   {"tcp_src", "NXM_OF_TCP_SRC", 2, kindDecimal, oxmClassBasic, 13, [][2]uint16{{oxmClassNXM0, 9}}},
	FieldTCPDst:   {"tcp_dst", "NXM_OF_TCP_DST", 2, kindDecimal, oxmClassBasic, 14, [][2]uint16{{oxmClassNXM0, 10}}},
	FieldUDPSrc:   {"udp_src", "NXM_OF_UDP_SRC", 2, kindDecimal, oxmClassBasic, 15, [][2]uint16{{oxmClassNXM0, 11}}},
	FieldUDPDst:   {"udp_dst", "NXM_OF_UDP_DST", 2, kindDecimal, oxmClassBasic, 16, [][2]uint16{{oxmClassNXM0, 12}}},
	FieldICMPType: {"icmp_type", "NXM_OF_ICMP_TYPE", 1, kindDecimal, oxmClassBasic, 19, [][2]uint16{{oxmClassNXM0, 13}}},
	FieldICMPCode: {"icmp_code", "NXM_OF_ICMP_CODE", 1, kindDecimal, oxmClassBasic, 20, [][2]uint16{{oxmClassNXM0, 14}}},
	// OVS matches and reports vlan_vid in OpenFlow 1.2+ as OXM_OF_VLAN_VID
	// (flow stats included; packet-in metadata never carries it). Its
	// NXM_OF_VLAN_TCI (class 0, field 4) also holds the PCP, so it is no
	// alias: decoding it here would drop bits.
	FieldVLANVID: {"vlan_vid", "OXM_OF_VLAN_VID", 2, kindDecimal, oxmClassBasic, 6, nil},
	FieldCTState: {"ct_state", "NXM_NX_CT_STATE", 4, kindHex, oxmClassNXM1, 105, nil},
	FieldCTZone:  {"ct_zone", "NXM_NX_CT_ZONE", 2, kindDecimal, oxmClassNXM1, 106, nil},
	FieldCTMark:  {"ct_mark", "NXM_NX_CT_MARK", 4, kindHex, oxmClassNXM1, 107, nil},
	FieldConjID:  {"conj_id", "NXM_NX_CONJ_ID", 4, kindDecimal, oxmClassNXM1, 37, nil},
}

// narrowFields are the fields OVS keeps fewer bits of than they take on
// the wire. bits is the width a move or check_pkt_larger may address (OVS's
// n_bits); mask is the part a match or set_field holds, which is also the
// mask OVS reports an exact match with.
var narrowFields = [fieldCount]struct {
	bits uint8
	mask uint64
}{
	// The 12-bit VID; a match or set_field also carries VLANPresent.
	FieldVLANVID: {12, VLANPresent | 0xfff},
	// Eight state bits: OVS answers an exact 32-bit match with mask 0xff.
	FieldCTState: {32, 0xff},
}

// oxmIndex maps a (class, field) pair to a FieldID for decoding.
var oxmIndex = func() map[uint32]FieldID {
	m := make(map[uint32]FieldID)
	for id := FieldInPort; id < fieldCount; id++ {
		fi := fields[id]
		m[uint32(fi.class)<<8|uint32(fi.field)] = id
		for _, a := range fi.aliases {
			m[uint32(a[0])<<8|uint32(a[1])] = id
		}
	}
	return m
}()

// String returns the field's ovs-ofctl name.
func (f FieldID) String() string {
	if f == 0 || f >= fieldCount {
		return "<unknown field>"
	}
	return fields[f].name
}

// Bits is the width of the field in bits, as a move or check_pkt_larger
// addresses it (for vlan_vid, the 12-bit VID).
func (f FieldID) Bits() uint8 {
	if n := narrowFields[f].bits; n != 0 {
		return n
	}
	return fields[f].bytes * 8
}

// fullMask is the mask of an exact match or a whole-field set_field: the
// field's width, or the bits OVS keeps of it.
func (f FieldID) fullMask() uint64 {
	if m := narrowFields[f].mask; m != 0 {
		return m
	}
	b := fields[f].bytes * 8
	if b >= 64 {
		return ^uint64(0)
	}
	return 1<<b - 1
}

func (f FieldID) valid() bool { return f > 0 && f < fieldCount }
