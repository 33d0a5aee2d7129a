package dhcpv4

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
)

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// Reply builds the Ethernet frame that answers req with typ, MsgOffer,
// MsgAck or MsgNak; opts are the port's options from Options.Encode and
// must hold the server id (54); message, when not empty, is sent as
// option 56 (the reason of a NAK) in place of any 56 in opts.
//
// The BOOTREPLY copies xid, flags, giaddr and chaddr; siaddr, sname and
// file are zero; ciaddr is the client's for an ACK, zero otherwise (RFC
// 2131 table 3). Options are 53, then opts, then 56, then end, and the
// message is padded to 300 bytes. A NAK carries only 53, 54 and 56 and
// yiaddr 0.
//
// An ACK to an INFORM (RFC 2131 §4.3.5) has yiaddr 0 (yiaddr must be
// invalid or 0.0.0.0) and leaves out the lease options 51, 58 and 59.
//
// Addressing (RFC 2131 §4.1): from serverMAC and the server id, UDP 67 to
// 68, IP TTL 64, both checksums computed. A NAK is broadcast
// (ff:ff:ff:ff:ff:ff, 255.255.255.255). Otherwise a client with ciaddr
// set (RENEWING, REBINDING, INFORM) gets a unicast to ciaddr at the
// frame's Ethernet source; else a client that set the broadcast flag, or
// has no address to be reached at, a broadcast; else a unicast to yiaddr
// at chaddr. A relayed request (giaddr set) is refused: answers to a
// relay go to its port 67, which a controller answering local punts
// never needs. If the request was 802.1Q tagged, the answer carries the
// same tag.
//
// The answer never exceeds the IP datagram size the client accepts
// (max(576, option 57)); ErrTooLarge says it would.
func Reply(req Request, typ MessageType, yiaddr netip.Addr, serverMAC net.HardwareAddr, opts []byte, message string) ([]byte, error) {
	switch typ {
	case MsgOffer, MsgAck, MsgNak:
	default:
		return nil, fmt.Errorf("dhcpv4: reply type %v: must be DHCPOFFER, DHCPACK or DHCPNAK", typ)
	}
	if len(req.CHAddr) != 6 {
		return nil, fmt.Errorf("%w: chaddr %v", ErrUnsupported, req.CHAddr)
	}
	if len(serverMAC) != 6 {
		return nil, fmt.Errorf("dhcpv4: server MAC %v: not 6 bytes", serverMAC)
	}
	if req.GIAddr.IsValid() && !req.GIAddr.IsUnspecified() {
		return nil, fmt.Errorf("%w: relayed request (giaddr %v)", ErrUnsupported, req.GIAddr)
	}
	if len(message) > maxOption {
		return nil, fmt.Errorf("%w: message is %d bytes, over %d", ErrInvalidOption, len(message), maxOption)
	}
	inform := req.Type == MsgInform && typ == MsgAck
	switch {
	case typ == MsgNak:
		yiaddr = netip.IPv4Unspecified()
	case inform:
		if yiaddr.IsValid() && yiaddr != netip.IPv4Unspecified() {
			return nil, fmt.Errorf("dhcpv4: ACK to an INFORM with yiaddr %v: must be 0.0.0.0", yiaddr)
		}
		yiaddr = netip.IPv4Unspecified()
	default:
		if !yiaddr.Is4() || yiaddr.IsUnspecified() {
			return nil, fmt.Errorf("dhcpv4: %v with yiaddr %v: need an IPv4 address", typ, yiaddr)
		}
	}
	ciaddr := netip.IPv4Unspecified()
	if req.CIAddr.Is4() {
		ciaddr = req.CIAddr
	}

	// Options: 53, the port's, 56, end.
	var serverID netip.Addr
	options := []byte{optMessageType, 1, byte(typ)}
	err := scanOptions(opts, func(code byte, v []byte) {
		if code == optServerID && len(v) == 4 {
			serverID = netip.AddrFrom4([4]byte(v))
		}
		switch {
		case code == optServerID:
		case typ == MsgNak:
			return
		case code == optMessage && message != "":
			return
		case inform && (code == optLease || code == optT1 || code == optT2):
			return
		}
		options = append(options, code, byte(len(v)))
		options = append(options, v...)
	})
	if err != nil {
		return nil, err
	}
	if !serverID.IsValid() {
		return nil, fmt.Errorf("%w: encoded options have no server id (54)", ErrInvalidOption)
	}
	if message != "" {
		options = append(options, optMessage, byte(len(message)))
		options = append(options, message...)
	}
	// RFC 6842: a server echoes the client identifier it was sent.
	if n := len(req.ClientID); n > 0 && n <= maxOption {
		options = append(options, optClientID, byte(n))
		options = append(options, req.ClientID...)
	}
	options = append(options, optEnd)

	// Where it goes.
	ethDst, ipDst := broadcastMAC, netip.AddrFrom4([4]byte{255, 255, 255, 255})
	switch {
	case typ == MsgNak:
	case !ciaddr.IsUnspecified():
		ipDst, ethDst = ciaddr, req.EthSrc
		if len(ethDst) != 6 {
			ethDst = req.CHAddr
		}
	case req.Broadcast() || yiaddr.IsUnspecified():
	default:
		ipDst, ethDst = yiaddr, req.CHAddr
	}
	if typ != MsgAck {
		ciaddr = netip.IPv4Unspecified()
	}

	// The BOOTP message.
	blen := max(bootpFixed+len(magicCookie)+len(options), bootpMin)
	ipTotal := ipv4Len + udpLen + blen
	if limit := max(int(req.MaxMessage), minMaxMessage); ipTotal > limit {
		return nil, fmt.Errorf("%w: %d-byte IP datagram, client takes %d", ErrTooLarge, ipTotal, limit)
	}
	l2 := ethLen
	if req.Tagged {
		l2 += vlanLen
	}
	frame := make([]byte, l2+ipTotal)

	// Ethernet.
	copy(frame[0:6], ethDst)
	copy(frame[6:12], serverMAC)
	e := frame[12:]
	if req.Tagged {
		binary.BigEndian.PutUint16(e[0:2], etherTypeVLAN)
		binary.BigEndian.PutUint16(e[2:4], req.TCI)
		e = e[vlanLen:]
	}
	binary.BigEndian.PutUint16(e[0:2], etherTypeIPv4)

	// IPv4.
	ip := frame[l2 : l2+ipv4Len]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], uint16(ipTotal))
	ip[8] = 64 // TTL
	ip[9] = protoUDP
	src, dst := serverID.As4(), ipDst.As4()
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:12], checksum(ip, 0))

	// BOOTP.
	m := frame[l2+ipv4Len+udpLen:]
	m[0], m[1], m[2] = bootReply, htypeEther, 6
	binary.BigEndian.PutUint32(m[4:8], req.XID)
	binary.BigEndian.PutUint16(m[10:12], req.Flags)
	ci, yi := ciaddr.As4(), yiaddr.As4()
	copy(m[12:16], ci[:])
	copy(m[16:20], yi[:])
	copy(m[28:34], req.CHAddr)
	copy(m[bootpFixed:], magicCookie[:])
	copy(m[bootpFixed+len(magicCookie):], options)

	// UDP, its checksum over the pseudo-header (RFC 768).
	udp := frame[l2+ipv4Len:]
	binary.BigEndian.PutUint16(udp[0:2], portServer)
	binary.BigEndian.PutUint16(udp[2:4], portClient)
	binary.BigEndian.PutUint16(udp[4:6], uint16(udpLen+blen))
	sum := ^checksum(ip[12:20], uint32(protoUDP)+uint32(udpLen+blen))
	c := checksum(udp, uint32(sum))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:8], c)
	return frame, nil
}
