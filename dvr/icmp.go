package dvr

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// Reasons TimeExceeded and FragmentationNeeded give no answer.
var (
	ErrNotIPv4        = errors.New("dvr: not an untagged Ethernet/IPv4 frame")
	ErrNoInterface    = errors.New("dvr: the router has no interface on the packet's network")
	ErrNoErrorAllowed = errors.New("dvr: no ICMP error is sent about this packet (RFC 1812 4.3.2.7)")
	ErrNotTooBig      = errors.New("dvr: the packet fits the network it is routed to")
)

// ICMP errors the router sends (RFC 792, RFC 1191).
const (
	icmpUnreachable  = 3
	icmpFragNeeded   = 4 // code of Unreachable
	icmpTimeExceeded = 11
	icmpTTLInTransit = 0
	defaultTTL       = 64
)

// TimeExceeded builds the ICMP time exceeded message a router returns for
// a frame whose TTL ran out: from the router's interface on the network
// the frame came from (the one whose subnet holds its source, else the
// first), back to the sender's MAC, quoting the IP header and the first 8
// bytes of its payload. No error is built about an ICMP error, a fragment
// other than the first, or a source that is not a unicast host.
func TimeExceeded(v *view.View, router, network uint32, frame []byte) ([]byte, error) {
	return icmpError(v, router, network, frame, icmpTimeExceeded, icmpTTLInTransit, func(netip.Addr, int) (uint16, error) { return 0, nil })
}

// FragmentationNeeded builds the ICMP destination unreachable,
// fragmentation needed message (RFC 1191) a router returns for a frame
// larger than the MTU of the network it is routed to, with that MTU as
// the next-hop MTU, under the same rules as TimeExceeded. Open vSwitch
// cannot fragment, so the router answers every such packet, DF set or
// not; a sender that gets it lowers its path MTU and fragments at the
// source.
func FragmentationNeeded(v *view.View, router, network uint32, frame []byte) ([]byte, error) {
	return icmpError(v, router, network, frame, icmpUnreachable, icmpFragNeeded, func(dst netip.Addr, length int) (uint16, error) {
		r, ok := v.RouterByKey(router)
		if !ok {
			return 0, ErrNoInterface
		}
		for _, ri := range v.RouterInterfaces(r.ID) {
			if ri.Prefix.Contains(dst) {
				if ri.Network.MTU > 0 && length > ri.Network.MTU {
					return uint16(ri.Network.MTU), nil
				}
				return 0, ErrNotTooBig
			}
		}
		return 0, ErrNoInterface
	})
}

// icmpError builds an ICMP error of a type and code about frame, from the
// router's gateway on the sender's network; nextHopMTU gives the second
// half of the header's last 4 bytes (fragmentation needed) or an error.
func icmpError(v *view.View, router, network uint32, frame []byte, typ, code byte, nextHopMTU func(dst netip.Addr, length int) (uint16, error)) ([]byte, error) {
	pkt, err := of.ParsePacket(frame)
	if err != nil {
		return nil, err
	}
	if pkt.EthType != of.EthTypeIPv4 {
		return nil, ErrNotIPv4
	}
	ip := frame[pkt.L3Offset:] // ParsePacket checked it holds the header
	ihl := int(ip[0]&0x0f) * 4
	switch {
	case !pkt.IPSrc.IsValid() || pkt.IPSrc.IsUnspecified() || pkt.IPSrc.IsMulticast() || pkt.IPSrc == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return nil, ErrNoErrorAllowed
	case binary.BigEndian.Uint16(ip[6:])&0x1fff != 0: // a later fragment
		return nil, ErrNoErrorAllowed
	case pkt.IPProto == of.IPProtoICMP && len(ip) > ihl && isICMPError(ip[ihl]):
		return nil, ErrNoErrorAllowed
	}
	gw, ok := gateway(v, router, network, pkt.IPSrc)
	if !ok {
		return nil, ErrNoInterface
	}
	// The quote ends with the packet: Ethernet padding is not part of it.
	total := int(binary.BigEndian.Uint16(ip[2:])) // ≥ ihl (ParsePacket)
	mtu, err := nextHopMTU(pkt.IPDst, total)
	if err != nil {
		return nil, err
	}
	quote := ip[:min(len(ip), total, ihl+8)]
	icmpLen := 8 + len(quote)
	out := make([]byte, 0, 14+20+icmpLen)
	out = append(out, pkt.EthSrc...)
	out = append(out, gw.MAC...)
	out = binary.BigEndian.AppendUint16(out, of.EthTypeIPv4)
	h := len(out)
	out = append(out, 0x45, 0xc0) // version 4, 20-byte header; DSCP CS6 (network control)
	out = binary.BigEndian.AppendUint16(out, uint16(20+icmpLen))
	out = append(out, 0, 0, 0, 0, defaultTTL, of.IPProtoICMP, 0, 0)
	out = append(out, gw.IP.AsSlice()...)
	out = append(out, pkt.IPSrc.AsSlice()...)
	binary.BigEndian.PutUint16(out[h+10:], checksum(out[h:h+20]))
	c := len(out)
	out = append(out, typ, code, 0, 0, 0, 0)
	out = binary.BigEndian.AppendUint16(out, mtu)
	out = append(out, quote...)
	binary.BigEndian.PutUint16(out[c+2:], checksum(out[c:]))
	return out, nil
}

// isICMPError reports whether an ICMP type is an error message.
func isICMPError(typ byte) bool {
	switch typ {
	case 3, 4, 5, 11, 12: // unreachable, source quench, redirect, time exceeded, parameter problem
		return true
	}
	return false
}

// gateway is the router's interface on a network that serves src.
func gateway(v *view.View, router, network uint32, src netip.Addr) (view.RouterInterface, bool) {
	r, ok := v.RouterByKey(router)
	if !ok {
		return view.RouterInterface{}, false
	}
	var first *view.RouterInterface
	for _, ri := range v.RouterInterfaces(r.ID) {
		if ri.Network.Key != network {
			continue
		}
		if ri.Prefix.Contains(src) {
			return ri, true
		}
		if first == nil {
			first = &ri
		}
	}
	if first == nil {
		return view.RouterInterface{}, false
	}
	return *first, true
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var sum uint32
	for ; len(b) > 1; b = b[2:] {
		sum += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
