package trace

// The packet as the walk carries it: its fields, how a match reads them,
// the frame they make, and what a hop changed.

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// state is the packet's fields as the flows see them.
type state struct {
	f      [64]uint64
	length uint16
}

func fieldIdx(f of.FieldID) int { return int(f) }

func newState(p Packet) *state {
	s := &state{length: p.Len}
	if s.length == 0 {
		s.length = 98
	}
	s.f[of.FieldInPort] = uint64(p.InPort)
	s.f[of.FieldEthSrc] = of.MACValue(p.EthSrc)
	s.f[of.FieldEthDst] = of.MACValue(p.EthDst)
	if p.VLAN != 0 {
		s.f[of.FieldVLANVID] = of.VLANPresent | uint64(p.VLAN&0xfff)
	}
	s.f[of.FieldTunID] = p.TunID
	if p.TunSrc.Is4() {
		s.f[of.FieldTunSrc] = of.IPv4Value(p.TunSrc)
	}
	if p.TunDst.Is4() {
		s.f[of.FieldTunDst] = of.IPv4Value(p.TunDst)
	}
	et := p.EthType
	if et == 0 {
		et = of.EthTypeIPv4
	}
	s.f[of.FieldEthType] = uint64(et)
	switch et {
	case of.EthTypeARP:
		op := p.ARPOp
		if op == 0 {
			op = of.ARPRequest
		}
		s.f[of.FieldARPOp] = uint64(op)
		s.f[of.FieldARPSHA] = of.MACValue(p.EthSrc)
		if p.IPSrc.Is4() {
			s.f[of.FieldARPSPA] = of.IPv4Value(p.IPSrc)
		}
		if p.IPDst.Is4() {
			s.f[of.FieldARPTPA] = of.IPv4Value(p.IPDst)
		}
		if op == of.ARPReply {
			s.f[of.FieldARPTHA] = of.MACValue(p.EthDst)
		}
	case of.EthTypeIPv4:
		if p.IPSrc.Is4() {
			s.f[of.FieldIPv4Src] = of.IPv4Value(p.IPSrc)
		}
		if p.IPDst.Is4() {
			s.f[of.FieldIPv4Dst] = of.IPv4Value(p.IPDst)
		}
		ttl := p.TTL
		if ttl == 0 {
			ttl = 64
		}
		s.f[of.FieldIPTTL] = uint64(ttl)
		proto := p.Proto
		if proto == 0 {
			proto = of.IPProtoICMP
		}
		s.f[of.FieldIPProto] = uint64(proto)
		switch proto {
		case of.IPProtoICMP:
			s.f[of.FieldICMPType] = 8
		case of.IPProtoTCP:
			s.f[of.FieldTCPSrc], s.f[of.FieldTCPDst] = uint64(p.SrcPort), uint64(p.DstPort)
		case of.IPProtoUDP:
			s.f[of.FieldUDPSrc], s.f[of.FieldUDPDst] = uint64(p.SrcPort), uint64(p.DstPort)
		}
	}
	return s
}

func (s *state) clone() *state { c := *s; return &c }

func (s *state) get(f of.FieldID) uint64 { return s.f[f] }

func (s *state) set(f of.FieldID, v, mask uint64) { s.f[f] = s.f[f]&^mask | v&mask }

func (s *state) ethType() uint16 { return uint16(s.f[of.FieldEthType]) }

// matches reports whether the packet matches every condition. A field
// the packet does not have (a TCP port of a UDP packet) reads as 0, which
// the apps' prerequisites (eth_type, nw_proto) keep from mattering.
func (s *state) matches(m of.Match) bool {
	for _, c := range m.Conds() {
		if s.f[c.Field]&c.Mask != c.Value {
			return false
		}
	}
	return true
}

func maskOf(f of.FieldID, m uint64) uint64 {
	if m != 0 {
		return m
	}
	n := f.Bits()
	if f == of.FieldVLANVID {
		return 0x1fff
	}
	return bitMask(n)
}

func bitMask(n uint8) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<n - 1
}

// frame is the packet as bytes, for an app's answer that reads or
// builds on the frame (an ICMP error quotes it).
func (s *state) frame() []byte {
	b := make([]byte, 0, s.length)
	dst, src := of.MACFromValue(s.f[of.FieldEthDst]), of.MACFromValue(s.f[of.FieldEthSrc])
	b = append(b, dst...)
	b = append(b, src...)
	if v := s.f[of.FieldVLANVID]; v&of.VLANPresent != 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, uint16(v&0xfff))
	}
	b = binary.BigEndian.AppendUint16(b, s.ethType())
	switch s.ethType() {
	case of.EthTypeARP:
		b = binary.BigEndian.AppendUint16(b, 1)
		b = binary.BigEndian.AppendUint16(b, of.EthTypeIPv4)
		b = append(b, 6, 4)
		b = binary.BigEndian.AppendUint16(b, uint16(s.f[of.FieldARPOp]))
		b = append(b, of.MACFromValue(s.f[of.FieldARPSHA])...)
		b = binary.BigEndian.AppendUint32(b, uint32(s.f[of.FieldARPSPA]))
		b = append(b, of.MACFromValue(s.f[of.FieldARPTHA])...)
		b = binary.BigEndian.AppendUint32(b, uint32(s.f[of.FieldARPTPA]))
	case of.EthTypeIPv4:
		l3 := len(b)
		total := max(int(s.length)-l3, 28)
		proto := uint8(s.f[of.FieldIPProto])
		b = append(b, 0x45, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(total))
		b = append(b, 0, 0, 0x40, 0, uint8(s.f[of.FieldIPTTL]), proto, 0, 0)
		b = binary.BigEndian.AppendUint32(b, uint32(s.f[of.FieldIPv4Src]))
		b = binary.BigEndian.AppendUint32(b, uint32(s.f[of.FieldIPv4Dst]))
		var sum uint32
		for i := l3; i < l3+20; i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(b[l3+10:], ^uint16(sum))
		switch proto {
		case of.IPProtoTCP:
			b = binary.BigEndian.AppendUint16(b, uint16(s.f[of.FieldTCPSrc]))
			b = binary.BigEndian.AppendUint16(b, uint16(s.f[of.FieldTCPDst]))
			b = append(b, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0)
		case of.IPProtoUDP:
			b = binary.BigEndian.AppendUint16(b, uint16(s.f[of.FieldUDPSrc]))
			b = binary.BigEndian.AppendUint16(b, uint16(s.f[of.FieldUDPDst]))
			b = binary.BigEndian.AppendUint16(b, uint16(total-20))
			b = append(b, 0, 0)
		case of.IPProtoICMP:
			b = append(b, uint8(s.f[of.FieldICMPType]), uint8(s.f[of.FieldICMPCode]), 0, 0, 0, 1, 0, 1)
		}
		for len(b) < l3+total {
			b = append(b, 0)
		}
	}
	return b
}

// changes are the fields a flow changed, by their pipeline names where
// the pipeline declares them (SrcPortKey=0x1 (reg6)).
func changes(before, after *state) []string {
	var out []string
	for f := of.FieldID(1); int(f) < len(after.f) && f.String() != "<unknown field>"; f++ {
		if before.f[f] == after.f[f] || f == of.FieldConjID {
			continue
		}
		named := false
		for _, r := range pipeline.RegFields {
			if r.Field != f || (before.f[f]^after.f[f])&r.Mask() == 0 {
				continue
			}
			named = true
			out = append(out, fmt.Sprintf("%s=%#x (%s)", r.Name, (after.f[f]&r.Mask())>>r.Ofs, f))
		}
		if !named {
			out = append(out, f.String()+"="+formatValue(f, after.f[f]))
		}
	}
	return out
}

func formatValue(f of.FieldID, v uint64) string {
	switch f {
	case of.FieldEthSrc, of.FieldEthDst, of.FieldARPSHA, of.FieldARPTHA:
		return of.MACFromValue(v).String()
	case of.FieldIPv4Src, of.FieldIPv4Dst, of.FieldTunSrc, of.FieldTunDst, of.FieldARPSPA, of.FieldARPTPA:
		return of.IPv4FromValue(v).String()
	case of.FieldCTState:
		return ctState(v)
	case of.FieldIPTTL, of.FieldCTZone, of.FieldInPort, of.FieldTCPSrc, of.FieldTCPDst, of.FieldUDPSrc, of.FieldUDPDst:
		return strconv.FormatUint(v, 10)
	}
	return "0x" + strconv.FormatUint(v, 16)
}

func ctState(v uint64) string {
	names := []string{"new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"}
	var b strings.Builder
	for i, n := range names {
		if v&(1<<i) != 0 {
			b.WriteString("+" + n)
		}
	}
	if b.Len() == 0 {
		return "0"
	}
	return b.String()
}
