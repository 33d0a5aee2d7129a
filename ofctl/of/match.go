package of

import (
	"net"
	"net/netip"
	"slices"
	"sort"
)

// Cond is one matched field: the packet's field ANDed with Mask equals Value.
type Cond struct {
	Field FieldID
	Value uint64
	Mask  uint64
}

// Match is a set of field conditions, kept sorted by field so that equal
// matches have equal representations. The zero Match matches everything.
// Match is a value: the With methods return a new Match.
type Match struct {
	conds []Cond
}

// Ethernet types and IP protocols the pipeline names.
const (
	EthTypeIPv4 = 0x0800
	EthTypeARP  = 0x0806
	EthTypeIPv6 = 0x86dd

	IPProtoICMP = 1
	IPProtoTCP  = 6
	IPProtoUDP  = 17
	IPProtoSCTP = 132

	ARPRequest = 1
	ARPReply   = 2
)

// Conds returns the match's conditions in canonical order.
func (m Match) Conds() []Cond { return m.conds }

// Len is the number of matched fields.
func (m Match) Len() int { return len(m.conds) }

// Get returns the condition on a field.
func (m Match) Get(f FieldID) (Cond, bool) {
	i := sort.Search(len(m.conds), func(i int) bool { return m.conds[i].Field >= f })
	if i < len(m.conds) && m.conds[i].Field == f {
		return m.conds[i], true
	}
	return Cond{}, false
}

// WithMasked returns m plus a masked condition on f, replacing any earlier
// condition on f. A zero mask removes the condition.
func (m Match) WithMasked(f FieldID, value, mask uint64) Match {
	mask &= f.fullMask()
	value &= mask
	out := make([]Cond, 0, len(m.conds)+1)
	placed := false
	for _, c := range m.conds {
		if c.Field == f {
			continue
		}
		if !placed && c.Field > f {
			if mask != 0 {
				out = append(out, Cond{f, value, mask})
			}
			placed = true
		}
		out = append(out, c)
	}
	if !placed && mask != 0 {
		out = append(out, Cond{f, value, mask})
	}
	return Match{conds: out}
}

// set is WithMasked in place, for a Match being built that nothing
// shares yet (a decoder's): one slice grown, not one a condition.
func (m *Match) set(f FieldID, value, mask uint64) {
	mask &= f.fullMask()
	value &= mask
	if n := len(m.conds); mask != 0 && (n == 0 || m.conds[n-1].Field < f) && cap(m.conds) > n {
		m.conds = append(m.conds, Cond{f, value, mask}) // in order, with room: a decoded punt's fields
		return
	}
	i := sort.Search(len(m.conds), func(i int) bool { return m.conds[i].Field >= f })
	switch {
	case i < len(m.conds) && m.conds[i].Field == f && mask == 0:
		m.conds = append(m.conds[:i], m.conds[i+1:]...)
	case i < len(m.conds) && m.conds[i].Field == f:
		m.conds[i] = Cond{f, value, mask}
	case mask != 0:
		if m.conds == nil {
			m.conds = make([]Cond, 0, 8) // a punt's registers and metadata
		}
		m.conds = slices.Insert(m.conds, i, Cond{f, value, mask})
	}
}

// MatchOf is the match of conds, given in any order, built in one
// allocation where a chain of With calls makes one a condition: for the
// punt path, which builds a flow a punt. Of two conditions on one field
// the later wins, as with With; a zero mask drops its condition.
func MatchOf(conds ...Cond) Match {
	out := make([]Cond, 0, len(conds))
	for _, c := range conds {
		c.Mask &= c.Field.fullMask()
		c.Value &= c.Mask
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(a, b Cond) int { return int(a.Field) - int(b.Field) })
	keep := out[:0]
	for i, c := range out {
		if i+1 < len(out) && out[i+1].Field == c.Field || c.Mask == 0 {
			continue
		}
		keep = append(keep, c)
	}
	if len(keep) == 0 {
		return Match{}
	}
	return Match{conds: keep}
}

// Exact is an exact condition on f, for MatchOf.
func Exact(f FieldID, value uint64) Cond { return Cond{f, value, f.fullMask()} }

// With returns m plus an exact condition on f.
func (m Match) With(f FieldID, value uint64) Match {
	return m.WithMasked(f, value, f.fullMask())
}

// InPort matches the OpenFlow ingress port.
func (m Match) InPort(port uint32) Match { return m.With(FieldInPort, uint64(port)) }

// Reg matches a declared register field.
func (m Match) Reg(r RegField, v uint64) Match {
	if c, ok := m.Get(r.Field); ok {
		// Several register fields may share one register: merge.
		mask := c.Mask | r.Mask()
		return m.WithMasked(r.Field, c.Value&^r.Mask()|r.Value(v), mask)
	}
	return m.WithMasked(r.Field, r.Value(v), r.Mask())
}

// TunID matches the tunnel key (VNI or GRE key).
func (m Match) TunID(id uint64) Match { return m.With(FieldTunID, id) }

// EthSrc matches the Ethernet source.
func (m Match) EthSrc(mac net.HardwareAddr) Match { return m.With(FieldEthSrc, MACValue(mac)) }

// EthDst matches the Ethernet destination.
func (m Match) EthDst(mac net.HardwareAddr) Match { return m.With(FieldEthDst, MACValue(mac)) }

// EthDstMasked matches the Ethernet destination under a mask (e.g. the
// multicast bit).
func (m Match) EthDstMasked(mac, mask net.HardwareAddr) Match {
	return m.WithMasked(FieldEthDst, MACValue(mac), MACValue(mask))
}

// EthType matches the Ethernet type.
func (m Match) EthType(t uint16) Match { return m.With(FieldEthType, uint64(t)) }

// IPProto matches the IP protocol (needs EthType IPv4).
func (m Match) IPProto(p uint8) Match { return m.With(FieldIPProto, uint64(p)) }

// IPv4Src matches an IPv4 source prefix.
func (m Match) IPv4Src(p netip.Prefix) Match {
	return m.WithMasked(FieldIPv4Src, IPv4Value(p.Addr()), prefixMask(p))
}

// IPv4Dst matches an IPv4 destination prefix.
func (m Match) IPv4Dst(p netip.Prefix) Match {
	return m.WithMasked(FieldIPv4Dst, IPv4Value(p.Addr()), prefixMask(p))
}

// UDPSrc matches the UDP source port (needs IPProto UDP).
func (m Match) UDPSrc(port uint16) Match { return m.With(FieldUDPSrc, uint64(port)) }

// UDPDst matches the UDP destination port (needs IPProto UDP).
func (m Match) UDPDst(port uint16) Match { return m.With(FieldUDPDst, uint64(port)) }

// ARPOp matches the ARP opcode (needs EthType ARP).
func (m Match) ARPOp(op uint16) Match { return m.With(FieldARPOp, uint64(op)) }

// ARPTPA matches the ARP target protocol address.
func (m Match) ARPTPA(ip netip.Addr) Match { return m.With(FieldARPTPA, IPv4Value(ip)) }

// ARPSPA matches the ARP sender protocol address.
func (m Match) ARPSPA(ip netip.Addr) Match { return m.With(FieldARPSPA, IPv4Value(ip)) }

// VLAN matches frames whose outermost 802.1Q tag carries VLAN id vid
// (ovs-ofctl: dl_vlan=vid).
func (m Match) VLAN(vid uint16) Match {
	return m.With(FieldVLANVID, VLANPresent|uint64(vid&0xfff))
}

// NoVLAN matches frames without an 802.1Q tag (ovs-ofctl:
// vlan_tci=0x0000/0x1fff).
func (m Match) NoVLAN() Match { return m.With(FieldVLANVID, 0) }

// CTState matches the connection tracker's state bits: those in set must
// be 1 and those in unset 0, so CTState(CTTrk|CTEst, CTNew) is ovs-ofctl's
// ct_state=-new+est+trk. It adds to an earlier CTState of the match; a bit
// in both set and unset must be 1.
func (m Match) CTState(set, unset uint32) Match {
	value, mask := uint64(set), uint64(set|unset)
	if c, ok := m.Get(FieldCTState); ok {
		value |= c.Value &^ mask
		mask |= c.Mask
	}
	return m.WithMasked(FieldCTState, value, mask)
}

// CTZone matches the connection tracking zone the packet was last tracked in.
func (m Match) CTZone(zone uint16) Match { return m.With(FieldCTZone, uint64(zone)) }

// CTMark matches the bits of the connection's ct_mark under mask.
func (m Match) CTMark(mark, mask uint32) Match {
	return m.WithMasked(FieldCTMark, uint64(mark), uint64(mask))
}

func prefixMask(p netip.Prefix) uint64 {
	bits := p.Bits()
	if bits <= 0 {
		return 0
	}
	return uint64(0xffffffff) << (32 - bits) & 0xffffffff
}

// MACValue packs a MAC address into the low 48 bits of a uint64.
func MACValue(mac net.HardwareAddr) uint64 {
	var v uint64
	for _, b := range mac {
		v = v<<8 | uint64(b)
	}
	return v
}

// MACFromValue unpacks MACValue.
func MACFromValue(v uint64) net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	for i := 5; i >= 0; i-- {
		mac[i] = byte(v)
		v >>= 8
	}
	return mac
}

// IPv4Value packs an IPv4 address into a uint64.
func IPv4Value(ip netip.Addr) uint64 {
	a := ip.As4()
	return uint64(a[0])<<24 | uint64(a[1])<<16 | uint64(a[2])<<8 | uint64(a[3])
}

// IPv4FromValue unpacks IPv4Value.
func IPv4FromValue(v uint64) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// appendKey appends a canonical binary form of the match.
func (m Match) appendKey(b []byte) []byte {
	for _, c := range m.conds {
		b = append(b, byte(c.Field))
		b = appendUint64(b, c.Value)
		b = appendUint64(b, c.Mask)
	}
	return b
}

// Equal reports whether two matches are the same.
func (m Match) Equal(o Match) bool {
	if len(m.conds) != len(o.conds) {
		return false
	}
	for i := range m.conds {
		if m.conds[i] != o.conds[i] {
			return false
		}
	}
	return true
}

func appendUint64(b []byte, v uint64) []byte {
	return append(b, byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
