package of

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"reflect"
	"testing"
)

func arpFrame(op uint16, sha net.HardwareAddr, spa, tpa string) []byte {
	var b bytes.Buffer
	b.Write([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	b.Write(sha)
	_ = binary.Write(&b, binary.BigEndian, []uint16{EthTypeARP, 1, EthTypeIPv4})
	b.Write([]byte{6, 4})
	_ = binary.Write(&b, binary.BigEndian, op)
	b.Write(sha)
	s := netip.MustParseAddr(spa).As4()
	b.Write(s[:])
	b.Write(make([]byte, 6))
	d := netip.MustParseAddr(tpa).As4()
	b.Write(d[:])
	return b.Bytes()
}

func udpFrame(src, dst string, sport, dport uint16, vlan bool) []byte {
	var b bytes.Buffer
	b.Write([]byte{0xfa, 0x16, 0x3e, 0, 0, 2, 0xfa, 0x16, 0x3e, 0, 0, 1})
	if vlan {
		_ = binary.Write(&b, binary.BigEndian, []uint16{0x8100, 7})
	}
	_ = binary.Write(&b, binary.BigEndian, uint16(EthTypeIPv4))
	ip := []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, IPProtoUDP, 0, 0}
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	ip = append(append(append(ip, s[:]...), d[:]...), 0, 0, 0, 0, 0, 8, 0, 0)
	binary.BigEndian.PutUint16(ip[20:], sport)
	binary.BigEndian.PutUint16(ip[22:], dport)
	b.Write(ip)
	return b.Bytes()
}

func TestParsePacket(t *testing.T) {
	mac, _ := net.ParseMAC("fa:16:3e:00:00:01")
	p, err := ParsePacket(arpFrame(ARPRequest, mac, "10.0.0.1", "10.0.0.9"))
	if err != nil || p.ARPOp != ARPRequest || p.ARPSPA.String() != "10.0.0.1" || p.ARPTPA.String() != "10.0.0.9" ||
		p.ARPSHA.String() != mac.String() || !p.Broadcast() {
		t.Fatalf("ARP: %+v %v", p, err)
	}
	p, err = ParsePacket(udpFrame("10.0.0.1", "10.0.0.2", 68, 67, true))
	if err != nil || p.EthType != EthTypeIPv4 || p.IPProto != IPProtoUDP || p.IPTTL != 64 ||
		p.IPSrc.String() != "10.0.0.1" || p.IPDst.String() != "10.0.0.2" || p.SrcPort != 68 || p.DstPort != 67 || p.Broadcast() || p.L3Offset != 18 {
		t.Fatalf("VLAN-tagged UDP: %+v %v", p, err)
	}
	full := udpFrame("10.0.0.1", "10.0.0.2", 1, 2, false)
	for n := 0; n < 14+20; n++ {
		if _, err := ParsePacket(full[:n]); err == nil {
			t.Fatalf("a %d-byte prefix of a UDP frame parsed", n)
		}
	}
	// A frame's own packet: the same fields, its addresses the frame's
	// bytes, capped so that appending to one cannot write over the next,
	// and nothing allocated.
	arp := arpFrame(ARPRequest, mac, "10.0.0.1", "10.0.0.9")
	copied, _ := ParsePacket(arp)
	own, err := ParseOwnPacket(arp)
	if err != nil || !reflect.DeepEqual(own, copied) || &own.ARPSHA[0] != &arp[22] || cap(own.EthSrc) != 6 {
		t.Fatalf("own ARP packet %+v %v, copied %+v", own, err, copied)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseOwnPacket(arp) }); n != 0 {
		t.Fatalf("ParseOwnPacket allocates %.0f times", n)
	}
	bad := udpFrame("10.0.0.1", "10.0.0.2", 1, 2, false)
	bad[14] = 0x44 // IHL 4 words: shorter than the fixed header
	if _, err := ParsePacket(bad); err == nil {
		t.Fatal("an IPv4 header with IHL 4 parsed")
	}
}

// FuzzParsePacket: any punted frame decodes or is refused; never a panic,
// and the fields come from inside the frame.
func FuzzParsePacket(f *testing.F) {
	mac, _ := net.ParseMAC("fa:16:3e:00:00:01")
	f.Add(arpFrame(ARPRequest, mac, "10.0.0.1", "10.0.0.9"))
	f.Add(arpFrame(ARPReply, mac, "10.0.0.1", "10.0.0.1"))
	f.Add(udpFrame("10.0.0.1", "10.0.0.2", 68, 67, true))
	f.Add(udpFrame("192.168.0.1", "10.0.0.2", 5000, 53, false))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePacket(b)
		q, qerr := ParseOwnPacket(b)
		if (err == nil) != (qerr == nil) || !reflect.DeepEqual(p, q) {
			t.Fatalf("a frame's own packet %+v (%v) is not its copied one %+v (%v)", q, qerr, p, err)
		}
		if err != nil {
			return
		}
		if len(b) < 14 || len(p.EthSrc) != 6 || len(p.EthDst) != 6 {
			t.Fatalf("parsed a %d-byte frame into %+v", len(b), p)
		}
	})
}
