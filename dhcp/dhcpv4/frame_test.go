package dhcpv4_test

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/dhcp/dhcpv4"
)

// readHex reads testdata/<name>.hex: hex digits, '#' comment lines.
func readHex(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".hex"))
	if err != nil {
		t.Fatal(err)
	}
	var s strings.Builder
	for line := range strings.Lines(string(raw)) {
		if !strings.HasPrefix(line, "#") {
			s.WriteString(strings.TrimSpace(line))
		}
	}
	b, err := hex.DecodeString(s.String())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// hexLines is a frame as golden lines: offset, then 16 bytes in pairs.
func hexLines(b []byte) []string {
	var lines []string
	for off := 0; off < len(b); off += 16 {
		row := b[off:min(off+16, len(b))]
		var s strings.Builder
		fmt.Fprintf(&s, "%04x ", off)
		for i := 0; i < len(row); i += 2 {
			fmt.Fprintf(&s, " %x", row[i:min(i+2, len(row))])
		}
		lines = append(lines, s.String())
	}
	return lines
}

// onesSum is the Internet checksum written out independently of the
// package's: 0 over data that holds its correct checksum.
func onesSum(parts ...[]byte) uint16 {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var s uint64
	for i := 0; i < len(all); i += 2 {
		s += uint64(binary.BigEndian.Uint16(all[i:]))
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// reply is a decoded answer frame.
type reply struct {
	EthDst, EthSrc  net.HardwareAddr
	Tagged          bool
	TCI             uint16
	IPSrc, IPDst    netip.Addr
	TTL             byte
	SPort, DPort    uint16
	BOOTPLen        int
	Op, HType, HLen byte
	XID             uint32
	Flags           uint16
	CIAddr, YIAddr  netip.Addr
	SIAddr, GIAddr  netip.Addr
	CHAddr          net.HardwareAddr
	ZeroSnameFile   bool
	Codes           []byte // option codes in order, end included
	Opts            map[byte][]byte
}

// decodeReply decodes a frame Reply built, failing t on any header that
// is not right: lengths, IP and UDP checksums (both must be correct and
// the UDP one non-zero), cookie, options that run past the end.
func decodeReply(t testing.TB, f []byte) reply {
	t.Helper()
	var r reply
	r.EthDst, r.EthSrc = f[0:6], f[6:12]
	b := f[12:]
	if binary.BigEndian.Uint16(b) == 0x8100 {
		r.Tagged, r.TCI = true, binary.BigEndian.Uint16(b[2:])
		b = b[4:]
	}
	if et := binary.BigEndian.Uint16(b); et != 0x0800 {
		t.Fatalf("EtherType %#x", et)
	}
	ip := b[2:]
	if ip[0] != 0x45 {
		t.Fatalf("IP version/IHL %#x", ip[0])
	}
	if total := int(binary.BigEndian.Uint16(ip[2:])); total != len(ip) {
		t.Fatalf("IP total length %d, frame has %d", total, len(ip))
	}
	if onesSum(ip[:20]) != 0 {
		t.Fatalf("IP header checksum %#04x is wrong", binary.BigEndian.Uint16(ip[10:]))
	}
	if ip[9] != 17 {
		t.Fatalf("IP protocol %d", ip[9])
	}
	r.TTL = ip[8]
	r.IPSrc, r.IPDst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
	udp := ip[20:]
	r.SPort, r.DPort = binary.BigEndian.Uint16(udp), binary.BigEndian.Uint16(udp[2:])
	if ulen := int(binary.BigEndian.Uint16(udp[4:])); ulen != len(udp) {
		t.Fatalf("UDP length %d, have %d", ulen, len(udp))
	}
	pseudo := append(append([]byte{}, ip[12:20]...), 0, 17, udp[4], udp[5])
	if binary.BigEndian.Uint16(udp[6:]) == 0 {
		t.Fatalf("UDP checksum is 0 (not computed)")
	}
	if onesSum(pseudo, udp) != 0 {
		t.Fatalf("UDP checksum %#04x is wrong", binary.BigEndian.Uint16(udp[6:]))
	}
	m := udp[8:]
	r.BOOTPLen = len(m)
	r.Op, r.HType, r.HLen = m[0], m[1], m[2]
	r.XID = binary.BigEndian.Uint32(m[4:])
	r.Flags = binary.BigEndian.Uint16(m[10:])
	r.CIAddr = netip.AddrFrom4([4]byte(m[12:16]))
	r.YIAddr = netip.AddrFrom4([4]byte(m[16:20]))
	r.SIAddr = netip.AddrFrom4([4]byte(m[20:24]))
	r.GIAddr = netip.AddrFrom4([4]byte(m[24:28]))
	r.CHAddr = m[28:34]
	r.ZeroSnameFile = allZero(m[34:236])
	if [4]byte(m[236:240]) != [4]byte{99, 130, 83, 99} {
		t.Fatalf("magic cookie %x", m[236:240])
	}
	r.Opts = map[byte][]byte{}
	o := m[240:]
	for i := 0; ; {
		if i >= len(o) {
			t.Fatalf("options run off the end without option 255")
		}
		code := o[i]
		r.Codes = append(r.Codes, code)
		if code == 255 {
			if !allZero(o[i+1:]) {
				t.Fatalf("non-zero bytes after end: %x", o[i+1:])
			}
			break
		}
		if code == 0 {
			t.Fatalf("pad option before end")
		}
		n := int(o[i+1])
		if _, dup := r.Opts[code]; dup {
			t.Fatalf("option %d twice", code)
		}
		r.Opts[code] = o[i+2 : i+2+n]
		i += 2 + n
	}
	return r
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// buildRequest is a client's frame for r, written independently of the
// package: long options are split (RFC 3396).
func buildRequest(r dhcpv4.Request) []byte {
	m := make([]byte, 240)
	m[0], m[1], m[2] = 1, 1, 6
	binary.BigEndian.PutUint32(m[4:], r.XID)
	binary.BigEndian.PutUint16(m[10:], r.Flags)
	put4 := func(b []byte, a netip.Addr) {
		if a.IsValid() {
			v := a.As4()
			copy(b, v[:])
		}
	}
	put4(m[12:], r.CIAddr)
	put4(m[24:], r.GIAddr)
	copy(m[28:], r.CHAddr)
	copy(m[236:], []byte{99, 130, 83, 99})
	opt := func(code byte, v []byte) {
		for {
			n := min(len(v), 255)
			m = append(m, code, byte(n))
			m = append(m, v[:n]...)
			v = v[n:]
			if len(v) == 0 {
				return
			}
		}
	}
	opt(53, []byte{byte(r.Type)})
	if r.RequestedIP.IsValid() {
		v := r.RequestedIP.As4()
		opt(50, v[:])
	}
	if r.ServerID.IsValid() {
		v := r.ServerID.As4()
		opt(54, v[:])
	}
	if r.MaxMessage != 0 {
		opt(57, binary.BigEndian.AppendUint16(nil, r.MaxMessage))
	}
	if r.ParamList != nil {
		opt(55, r.ParamList)
	}
	if r.ClientID != nil {
		opt(61, r.ClientID)
	}
	if r.HostName != "" {
		opt(12, []byte(r.HostName))
	}
	m = append(m, 255)

	udp := binary.BigEndian.AppendUint16(nil, 68)
	udp = binary.BigEndian.AppendUint16(udp, 67)
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(m)))
	udp = append(udp, 0, 0) // no checksum, as a sender may
	udp = append(udp, m...)

	ip := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	src, dst := r.IPSrc.As4(), r.IPDst.As4()
	ip = append(append(ip, src[:]...), dst[:]...)
	binary.BigEndian.PutUint16(ip[10:], onesSum(ip))

	f := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, r.EthSrc...)
	if r.Tagged {
		f = binary.BigEndian.AppendUint16(f, 0x8100)
		f = binary.BigEndian.AppendUint16(f, r.TCI)
	}
	f = binary.BigEndian.AppendUint16(f, 0x0800)
	return append(append(f, ip...), udp...)
}
