package dnsmsg

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Reply builds the Ethernet frame answering q with a: from q.EthDst to
// q.EthSrc (so the VM's ARP entry for its resolver stays true), with
// q's 802.1Q tag if it had one, IPv4 from q.IPDst to q.IPSrc (DF set,
// ID 0, TTL 64), UDP from q.DstPort to q.SrcPort, both checksums
// computed. The DNS header has q's ID, QR=1, AA=1, RD copied, RA=1 and
// a.RCode; the question is echoed as sent; each record's owner is a
// compression pointer to the question (0xc00c) and has TTL a.TTL; if q
// had an OPT record the reply has one offering EDNSPayloadSize. The
// frame is padded to Ethernet's 60-byte minimum.
func Reply(q Query, a Answer) ([]byte, error) {
	if len(q.EthSrc) != 6 || len(q.EthDst) != 6 || !q.IPSrc.Is4() || !q.IPDst.Is4() {
		return nil, fmt.Errorf("%w: query addressing %v %v %v %v is not Ethernet/IPv4", ErrBadAnswer, q.EthSrc, q.EthDst, q.IPSrc, q.IPDst)
	}
	qname, err := questionWire(q)
	if err != nil {
		return nil, err
	}
	if a.RCode > 0xf {
		return nil, fmt.Errorf("%w: RCode %d needs extended RCODE", ErrBadAnswer, a.RCode)
	}
	n := len(a.Addrs) + len(a.PTR)
	if n > 0 && a.RCode != RCodeSuccess {
		return nil, fmt.Errorf("%w: %d records with RCode %d", ErrBadAnswer, n, a.RCode)
	}
	if n > 0 && q.Question.Class != ClassINET {
		return nil, fmt.Errorf("%w: records for class %d", ErrBadAnswer, q.Question.Class)
	}

	msg := make([]byte, dnsHeaderLen, 512)
	binary.BigEndian.PutUint16(msg[0:2], q.ID)
	flags := uint16(flagQR|flagAA|flagRA) | uint16(a.RCode)
	if q.RD {
		flags |= flagRD
	}
	binary.BigEndian.PutUint16(msg[2:4], flags)
	binary.BigEndian.PutUint16(msg[4:6], 1)
	binary.BigEndian.PutUint16(msg[6:8], uint16(n))
	if q.OPT {
		binary.BigEndian.PutUint16(msg[10:12], 1)
	}
	msg = append(msg, qname...)
	msg = binary.BigEndian.AppendUint16(msg, q.Question.Type)
	msg = binary.BigEndian.AppendUint16(msg, q.Question.Class)

	qt := q.Question.Type
	for _, ip := range a.Addrs {
		var typ uint16
		var rdata []byte
		switch {
		case ip.Is4() && (qt == TypeA || qt == TypeANY):
			b := ip.As4()
			typ, rdata = TypeA, b[:]
		case ip.Is6() && ip.Zone() == "" && (qt == TypeAAAA || qt == TypeANY):
			b := ip.As16()
			typ, rdata = TypeAAAA, b[:]
		default:
			return nil, fmt.Errorf("%w: address %v for a type %d question", ErrBadAnswer, ip, qt)
		}
		msg = appendRecord(msg, typ, a.TTL, rdata)
	}
	for _, name := range a.PTR {
		if qt != TypePTR && qt != TypeANY {
			return nil, fmt.Errorf("%w: PTR %q for a type %d question", ErrBadAnswer, name, qt)
		}
		rdata, err := appendName(nil, name)
		if err != nil {
			return nil, err
		}
		msg = appendRecord(msg, TypePTR, a.TTL, rdata)
	}
	if q.OPT {
		msg = append(msg, 0) // root owner
		msg = binary.BigEndian.AppendUint16(msg, TypeOPT)
		msg = binary.BigEndian.AppendUint16(msg, EDNSPayloadSize)
		msg = binary.BigEndian.AppendUint32(msg, 0) // extended RCODE 0, version 0, DO=0
		msg = binary.BigEndian.AppendUint16(msg, 0) // no options
	}
	if limit := payloadLimit(q); len(msg) > limit {
		return nil, fmt.Errorf("%w: %d-byte reply, client accepts %d", ErrTooLarge, len(msg), limit)
	}
	return frame(q, msg), nil
}

// payloadLimit is the largest DNS message q's sender accepts over UDP.
func payloadLimit(q Query) int {
	if !q.OPT || q.UDPSize <= 512 {
		return 512
	}
	return int(min(q.UDPSize, EDNSPayloadSize))
}

// appendRecord appends a record owned by the question's name.
func appendRecord(msg []byte, typ uint16, ttl uint32, rdata []byte) []byte {
	msg = append(msg, 0xc0, dnsHeaderLen)
	msg = binary.BigEndian.AppendUint16(msg, typ)
	msg = binary.BigEndian.AppendUint16(msg, ClassINET)
	msg = binary.BigEndian.AppendUint32(msg, ttl)
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(rdata)))
	return append(msg, rdata...)
}

// questionWire is q's question name in wire form, from q.Raw when
// present (case kept), else from q.Question.Name.
func questionWire(q Query) ([]byte, error) {
	if len(q.Raw) == 0 {
		return appendName(nil, q.Question.Name)
	}
	wire, _, err := readName(q.Raw, dnsHeaderLen)
	if err != nil {
		return nil, fmt.Errorf("%w: Raw question: %w", ErrBadAnswer, err)
	}
	name, err := dotted(wire)
	if err != nil {
		return nil, fmt.Errorf("%w: Raw question: %w", ErrBadAnswer, err)
	}
	if !strings.EqualFold(name, q.Question.Name) {
		return nil, fmt.Errorf("%w: Raw asks for %q, Question for %q", ErrBadAnswer, name, q.Question.Name)
	}
	return wire, nil
}

// frame wraps a DNS message in Ethernet/IPv4/UDP headers answering q.
func frame(q Query, msg []byte) []byte {
	l2 := ethHeaderLen
	if q.Tagged {
		l2 += vlanTagLen
	}
	udpLen := udpHeaderLen + len(msg)
	ipLen := ipv4HeaderLen + udpLen
	f := make([]byte, max(l2+ipLen, 60))

	copy(f[0:6], q.EthSrc)
	copy(f[6:12], q.EthDst)
	if q.Tagged {
		binary.BigEndian.PutUint16(f[12:14], etherTypeVLAN)
		binary.BigEndian.PutUint16(f[14:16], q.TCI)
	}
	binary.BigEndian.PutUint16(f[l2-2:l2], etherTypeIPv4)

	ip := f[l2 : l2+ipv4HeaderLen]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], uint16(ipLen))
	binary.BigEndian.PutUint16(ip[6:8], 0x4000) // DF
	ip[8] = 64
	ip[9] = protoUDP
	src, dst := q.IPDst.As4(), q.IPSrc.As4()
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:12], ^checksum(0, ip))

	udp := f[l2+ipv4HeaderLen : l2+ipLen]
	binary.BigEndian.PutUint16(udp[0:2], q.DstPort)
	binary.BigEndian.PutUint16(udp[2:4], q.SrcPort)
	binary.BigEndian.PutUint16(udp[4:6], uint16(udpLen))
	copy(udp[udpHeaderLen:], msg)
	binary.BigEndian.PutUint16(udp[6:8], udpChecksum(ip[12:16], ip[16:20], udp))
	return f
}

// udpChecksum is the UDP checksum of seg (checksum field zero) between
// IPv4 addresses src and dst; 0 is sent as 0xffff.
func udpChecksum(src, dst, seg []byte) uint16 {
	pseudo := make([]byte, 0, 12)
	pseudo = append(pseudo, src...)
	pseudo = append(pseudo, dst...)
	pseudo = append(pseudo, 0, protoUDP)
	pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(seg)))
	c := ^checksum(checksum(0, pseudo), seg)
	if c == 0 {
		c = 0xffff
	}
	return c
}

// checksum adds b to the ones'-complement sum sum (RFC 1071) and
// returns the folded sum; a correct header sums to 0xffff, so callers
// verifying one compare ^checksum with 0.
func checksum(sum uint16, b []byte) uint16 {
	s := uint32(sum)
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
