package of

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Packet is what the pipeline apps need to know of a punted frame.
type Packet struct {
	EthDst, EthSrc net.HardwareAddr
	EthType        uint16 // after any 802.1Q tags
	L3Offset       int    // where the network header starts, after the tags

	// ARP (EthType ARP, Ethernet/IPv4 only)
	ARPOp            uint16
	ARPSHA, ARPTHA   net.HardwareAddr
	ARPSPA, ARPTPA   netip.Addr
	IPSrc, IPDst     netip.Addr // IPv4
	IPProto, IPTTL   uint8
	SrcPort, DstPort uint16 // TCP/UDP, first fragment only
}

// Errors of ParsePacket.
var (
	ErrShortFrame   = errors.New("packet: frame shorter than its headers")
	ErrMalformedARP = errors.New("packet: not an Ethernet/IPv4 ARP packet")
	ErrMalformedIP  = errors.New("packet: malformed IPv4 header")
)

// ParsePacket decodes an Ethernet frame as far as the pipeline cares. It
// never panics; a frame that lies about its lengths is an error.
func ParsePacket(b []byte) (Packet, error) { return parsePacket(b, true) }

// ParseOwnPacket is ParsePacket for a frame nobody changes or reuses
// while the packet lives (a decoded punt's, which owns its copy): the
// packet's addresses are slices of the frame, not copies, and parsing
// allocates nothing.
func ParseOwnPacket(b []byte) (Packet, error) { return parsePacket(b, false) }

func parsePacket(b []byte, copyAddrs bool) (Packet, error) {
	var p Packet
	if len(b) < 14 {
		return p, ErrShortFrame
	}
	// The addresses are copies (the frame may be reused), in one
	// allocation: the Ethernet pair, and ARP's pair behind it. Or, for a
	// frame the packet may keep, the frame's own bytes.
	var own []byte
	if copyAddrs {
		own = make([]byte, 24)
		copy(own[:12], b[:12])
	}
	p.EthDst = addr(own, 0, b, 0)
	p.EthSrc = addr(own, 6, b, 6)
	p.EthType = binary.BigEndian.Uint16(b[12:])
	off := 14
	for tags := 0; (p.EthType == 0x8100 || p.EthType == 0x88a8) && tags < 2; tags++ {
		if len(b) < off+4 {
			return p, ErrShortFrame
		}
		p.EthType = binary.BigEndian.Uint16(b[off+2:])
		off += 4
	}
	p.L3Offset = off
	l3 := b[off:]
	switch p.EthType {
	case EthTypeARP:
		if len(l3) < 28 {
			return p, ErrShortFrame
		}
		if binary.BigEndian.Uint16(l3[0:]) != 1 || binary.BigEndian.Uint16(l3[2:]) != EthTypeIPv4 || l3[4] != 6 || l3[5] != 4 {
			return p, ErrMalformedARP
		}
		p.ARPOp = binary.BigEndian.Uint16(l3[6:])
		p.ARPSHA = addr(own, 12, l3, 8)
		p.ARPSPA = netip.AddrFrom4([4]byte(l3[14:18]))
		p.ARPTHA = addr(own, 18, l3, 18)
		p.ARPTPA = netip.AddrFrom4([4]byte(l3[24:28]))
	case EthTypeIPv4:
		if len(l3) < 20 {
			return p, ErrShortFrame
		}
		ihl := int(l3[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(l3[2:]))
		if l3[0]>>4 != 4 || ihl < 20 || total < ihl || len(l3) < ihl {
			return p, fmt.Errorf("%w (version %d, header %d bytes, total %d)", ErrMalformedIP, l3[0]>>4, ihl, total)
		}
		p.IPTTL, p.IPProto = l3[8], l3[9]
		p.IPSrc = netip.AddrFrom4([4]byte(l3[12:16]))
		p.IPDst = netip.AddrFrom4([4]byte(l3[16:20]))
		firstFragment := binary.BigEndian.Uint16(l3[6:])&0x1fff == 0
		if (p.IPProto == IPProtoTCP || p.IPProto == IPProtoUDP) && firstFragment && len(l3) >= ihl+4 {
			p.SrcPort = binary.BigEndian.Uint16(l3[ihl:])
			p.DstPort = binary.BigEndian.Uint16(l3[ihl+2:])
		}
	}
	return p, nil
}

// addr is the MAC address at b[at:]: copied to own[to:], when there is
// own to copy to, else b's own bytes (capped: appending to it cannot
// write into the frame).
func addr(own []byte, to int, b []byte, at int) net.HardwareAddr {
	if own == nil {
		return net.HardwareAddr(b[at : at+6 : at+6])
	}
	copy(own[to:to+6], b[at:at+6])
	return net.HardwareAddr(own[to : to+6 : to+6])
}

// Broadcast reports whether the frame's destination is a group address.
func (p Packet) Broadcast() bool { return len(p.EthDst) == 6 && p.EthDst[0]&1 != 0 }
