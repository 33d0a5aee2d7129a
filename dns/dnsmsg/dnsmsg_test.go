package dnsmsg

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/golden"
)

var (
	vmMAC  = net.HardwareAddr{0xfa, 0x16, 0x3e, 0x00, 0x00, 0x05}
	gwMAC  = net.HardwareAddr{0xfa, 0x16, 0x3e, 0x00, 0x00, 0x01}
	vmIP   = netip.MustParseAddr("10.0.0.5")
	dnsIP  = netip.MustParseAddr("10.0.0.1")
	vmPort = uint16(40000)
)

// readPcap returns the frames of a classic little-endian pcap file, as
// tcpdump -w writes it.
func readPcap(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 || binary.LittleEndian.Uint32(b[20:]) != 1 {
		t.Fatalf("%s: not a little-endian Ethernet pcap", path)
	}
	var frames [][]byte
	for b = b[24:]; len(b) >= 16; {
		n := int(binary.LittleEndian.Uint32(b[8:12]))
		if len(b) < 16+n {
			t.Fatalf("%s: truncated record", path)
		}
		frames = append(frames, b[16:16+n])
		b = b[16+n:]
	}
	return frames
}

// writePcap writes frames as a classic pcap file.
func writePcap(t testing.TB, path string, frames [][]byte) {
	t.Helper()
	b := binary.LittleEndian.AppendUint32(nil, 0xa1b2c3d4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = binary.LittleEndian.AppendUint32(b, 65535)
	b = binary.LittleEndian.AppendUint32(b, 1)
	for i, f := range frames {
		b = binary.LittleEndian.AppendUint32(b, uint32(i))
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(f)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sum16 is an RFC 1071 ones'-complement sum, written apart from the
// package's so the checksums are checked by a second implementation.
func sum16(parts ...[]byte) uint16 {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
		if len(p)%2 == 1 {
			all = append(all, 0)
		}
	}
	var s uint64
	for i := 0; i < len(all); i += 2 {
		s += uint64(binary.BigEndian.Uint16(all[i:]))
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// udpFrame builds Ethernet(/802.1Q)/IPv4/UDP around payload with correct
// checksums.
func udpFrame(srcMAC, dstMAC net.HardwareAddr, tci *uint16, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	f := append(append([]byte(nil), dstMAC...), srcMAC...)
	if tci != nil {
		f = binary.BigEndian.AppendUint16(f, 0x8100)
		f = binary.BigEndian.AppendUint16(f, *tci)
	}
	f = binary.BigEndian.AppendUint16(f, 0x0800)
	ip := []byte{0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, 17, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	s, d := src.As4(), dst.As4()
	ip = append(append(ip, s[:]...), d[:]...)
	binary.BigEndian.PutUint16(ip[10:], ^sum16(ip))
	udp := binary.BigEndian.AppendUint16(nil, sport)
	udp = binary.BigEndian.AppendUint16(udp, dport)
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(payload)))
	udp = append(udp, 0, 0)
	udp = append(udp, payload...)
	pseudo := append(append(s[:0:0], s[:]...), d[:]...)
	pseudo = append(pseudo, 0, 17)
	pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(udp)))
	binary.BigEndian.PutUint16(udp[6:], ^sum16(pseudo, udp))
	return append(append(f, ip...), udp...)
}

// vmFrame is a query frame from the VM to its resolver.
func vmFrame(msg []byte) []byte {
	return udpFrame(vmMAC, gwMAC, nil, vmIP, dnsIP, vmPort, 53, msg)
}

// dnsQuery builds a query message with RD set, with an EDNS0 OPT record
// (UDP size 1232, no options) when opt.
func dnsQuery(id uint16, name string, qtype uint16, opt bool) []byte {
	m := binary.BigEndian.AppendUint16(nil, id)
	m = append(m, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0)
	if opt {
		m[11] = 1
	}
	for _, l := range strings.Split(name, ".") {
		m = append(append(m, byte(len(l))), l...)
	}
	m = append(m, 0)
	m = binary.BigEndian.AppendUint16(m, qtype)
	m = binary.BigEndian.AppendUint16(m, ClassINET)
	if opt {
		m = append(m, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0)
	}
	return m
}

func mustParse(t testing.TB, frame []byte) Query {
	t.Helper()
	q, err := ParseQuery(frame)
	if err != nil {
		t.Fatalf("ParseQuery: %v\n%x", err, frame)
	}
	return q
}

// record is a resource record as decodeReply reads it.
type record struct {
	Owner string
	Type  uint16
	Class uint16
	TTL   uint32
	Data  string // an address, a name, or hex
}

// response is a reply frame decoded independently of Reply.
type response struct {
	EthSrc, EthDst   string
	TCI              int // -1: untagged
	IPSrc, IPDst     netip.Addr
	SrcPort, DstPort uint16
	ID               uint16
	Flags            uint16
	QName            string // as sent, case kept
	QType, QClass    uint16
	Answers          []record
	OPT              *record
}

// decodeReply checks a reply frame's lengths and both checksums and
// decodes it.
func decodeReply(t testing.TB, f []byte) response {
	t.Helper()
	var r response
	r.EthDst, r.EthSrc, r.TCI = net.HardwareAddr(f[0:6]).String(), net.HardwareAddr(f[6:12]).String(), -1
	p := f[12:]
	if binary.BigEndian.Uint16(p) == 0x8100 {
		r.TCI = int(binary.BigEndian.Uint16(p[2:]))
		p = p[4:]
	}
	if binary.BigEndian.Uint16(p) != 0x0800 {
		t.Fatalf("ethertype %x", p[:2])
	}
	ip := p[2:]
	if ip[0] != 0x45 || ip[9] != 17 {
		t.Fatalf("IPv4 header %x", ip[:20])
	}
	if s := sum16(ip[:20]); s != 0xffff {
		t.Fatalf("IPv4 header checksum wrong (sum %#x)", s)
	}
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	if l2 := len(f) - len(ip); len(f) != max(l2+tot, 60) {
		t.Fatalf("IPv4 total length %d in a %d-byte frame (headers %d, padded to 60)", tot, len(f), l2)
	}
	r.IPSrc, r.IPDst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
	udp := ip[20:tot]
	if int(binary.BigEndian.Uint16(udp[4:])) != len(udp) {
		t.Fatalf("UDP length %d, datagram carries %d", binary.BigEndian.Uint16(udp[4:]), len(udp))
	}
	pseudo := append(append([]byte(nil), ip[12:20]...), 0, 17)
	pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(udp)))
	if s := sum16(pseudo, udp); s != 0xffff || binary.BigEndian.Uint16(udp[6:]) == 0 {
		t.Fatalf("UDP checksum wrong (sum %#x)", s)
	}
	r.SrcPort, r.DstPort = binary.BigEndian.Uint16(udp), binary.BigEndian.Uint16(udp[2:])
	msg := udp[8:]
	r.ID, r.Flags = binary.BigEndian.Uint16(msg), binary.BigEndian.Uint16(msg[2:])
	if qd := binary.BigEndian.Uint16(msg[4:]); qd != 1 || binary.BigEndian.Uint16(msg[8:]) != 0 {
		t.Fatalf("QDCOUNT %d, NSCOUNT %d", qd, binary.BigEndian.Uint16(msg[8:]))
	}
	an, ar := int(binary.BigEndian.Uint16(msg[6:])), int(binary.BigEndian.Uint16(msg[10:]))
	name := func(off int) (string, int) {
		wire, end, err := readName(msg, off)
		if err != nil {
			t.Fatalf("name at %d: %v", off, err)
		}
		var labels []string
		for i := 0; wire[i] != 0; i += 1 + int(wire[i]) {
			labels = append(labels, string(wire[i+1:i+1+int(wire[i])]))
		}
		return strings.Join(labels, "."), end
	}
	var off int
	r.QName, off = name(12)
	r.QType, r.QClass = binary.BigEndian.Uint16(msg[off:]), binary.BigEndian.Uint16(msg[off+2:])
	off += 4
	for i := 0; i < an+ar; i++ {
		var rr record
		rr.Owner, off = name(off)
		rr.Type, rr.Class = binary.BigEndian.Uint16(msg[off:]), binary.BigEndian.Uint16(msg[off+2:])
		rr.TTL = binary.BigEndian.Uint32(msg[off+4:])
		n := int(binary.BigEndian.Uint16(msg[off+8:]))
		off += 10
		data := msg[off : off+n]
		switch rr.Type {
		case TypeA, TypeAAAA:
			a, _ := netip.AddrFromSlice(data)
			rr.Data = a.String()
		case TypePTR:
			rr.Data, _ = name(off)
		default:
			rr.Data = hex.EncodeToString(data)
		}
		off += n
		if i < an {
			r.Answers = append(r.Answers, rr)
		} else if rr.Type == TypeOPT {
			r.OPT = &rr
		} else {
			t.Fatalf("additional record of type %d", rr.Type)
		}
	}
	if off != len(msg) {
		t.Fatalf("%d bytes after the last record", len(msg)-off)
	}
	return r
}

// hexLines renders a reply frame for a golden file: one line per
// header, then the DNS message 16 bytes a line.
func hexLines(f []byte) []string {
	l2 := 14
	if binary.BigEndian.Uint16(f[12:]) == 0x8100 {
		l2 = 18
	}
	tot := int(binary.BigEndian.Uint16(f[l2+2:]))
	lines := []string{
		"eth  " + hex.EncodeToString(f[:l2]),
		"ipv4 " + hex.EncodeToString(f[l2:l2+20]),
		"udp  " + hex.EncodeToString(f[l2+20:l2+28]),
	}
	msg := f[l2+28 : l2+tot]
	for i := 0; i < len(msg); i += 16 {
		lines = append(lines, "dns  "+hex.EncodeToString(msg[i:min(i+16, len(msg))]))
	}
	if pad := f[l2+tot:]; len(pad) > 0 {
		lines = append(lines, "pad  "+hex.EncodeToString(pad))
	}
	return lines
}

func TestParseDigQueries(t *testing.T) {
	for _, c := range []struct {
		file    string
		id      uint16
		sport   uint16
		opt     bool
		udpSize uint16
	}{
		{"dig_edns.pcap", 28393, 60695, true, 1232},
		{"dig_noedns.pcap", 26157, 54902, false, 0},
	} {
		frames := readPcap(t, filepath.Join("testdata", c.file))
		if len(frames) != 1 {
			t.Fatalf("%s: %d frames", c.file, len(frames))
		}
		q := mustParse(t, frames[0])
		want := Query{
			ID: c.id, RD: true,
			Question: Question{Name: "vm1.example.org", Type: TypeA, Class: ClassINET},
			OPT:      c.opt, UDPSize: c.udpSize,
			EthSrc: vmMAC, EthDst: gwMAC,
			IPSrc: vmIP, IPDst: dnsIP, SrcPort: c.sport, DstPort: 53,
			Raw: frames[0][42:],
		}
		if !reflect.DeepEqual(q, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.file, q, want)
		}
	}
}

// goldenCases are the replies kept in testdata/<name>.golden.
func goldenCases(t testing.TB) []struct {
	name string
	q    Query
	a    Answer
	want []record
} {
	edns := mustParse(t, readPcap(t, "testdata/dig_edns.pcap")[0])
	noedns := mustParse(t, readPcap(t, "testdata/dig_noedns.pcap")[0])
	ptr := mustParse(t, vmFrame(dnsQuery(0x5050, "5.0.0.10.in-addr.arpa", TypePTR, false)))
	aaaa := mustParse(t, vmFrame(dnsQuery(0xaaaa, "vm1.example.org", TypeAAAA, true)))
	tci := uint16(0x2064) // PCP 1, VID 100
	tagged := mustParse(t, udpFrame(vmMAC, gwMAC, &tci, vmIP, dnsIP, vmPort, 53, dnsQuery(7, "vm1.example.org", TypeA, false)))
	a5 := netip.MustParseAddr("10.0.0.5")
	a6 := netip.MustParseAddr("10.0.0.6")
	rec := func(typ uint16, data string) record {
		return record{Owner: "vm1.example.org", Type: typ, Class: ClassINET, TTL: 300, Data: data}
	}
	return []struct {
		name string
		q    Query
		a    Answer
		want []record
	}{
		{"a_one", noedns, Answer{Addrs: []netip.Addr{a5}, TTL: 300}, []record{rec(TypeA, "10.0.0.5")}},
		{"a_two_edns", edns, Answer{Addrs: []netip.Addr{a5, a6}, TTL: 300}, []record{rec(TypeA, "10.0.0.5"), rec(TypeA, "10.0.0.6")}},
		{"ptr", ptr, Answer{PTR: []string{"vm1.example.org."}, TTL: 300}, []record{{Owner: "5.0.0.10.in-addr.arpa", Type: TypePTR, Class: ClassINET, TTL: 300, Data: "vm1.example.org"}}},
		{"nxdomain_edns", edns, Answer{RCode: RCodeNameError}, nil},
		{"nodata_aaaa_edns", aaaa, Answer{}, nil},
		{"a_vlan", tagged, Answer{Addrs: []netip.Addr{a5}, TTL: 300}, []record{rec(TypeA, "10.0.0.5")}},
	}
}

func TestGoldenReplies(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			f, err := Reply(c.q, c.a)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, c.name, hexLines(f))
			r := decodeReply(t, f)
			if r.EthSrc != gwMAC.String() || r.EthDst != vmMAC.String() || r.IPSrc != dnsIP || r.IPDst != vmIP ||
				r.SrcPort != 53 || r.DstPort != c.q.SrcPort {
				t.Errorf("addressing %s>%s %v:%d>%v:%d", r.EthSrc, r.EthDst, r.IPSrc, r.SrcPort, r.IPDst, r.DstPort)
			}
			if want := map[bool]int{true: int(c.q.TCI), false: -1}[c.q.Tagged]; r.TCI != want {
				t.Errorf("TCI %d, want %d", r.TCI, want)
			}
			wantFlags := uint16(0x8580) | uint16(c.a.RCode) // QR AA RD RA
			if r.ID != c.q.ID || r.Flags != wantFlags {
				t.Errorf("ID %d flags %#04x, want %d %#04x", r.ID, r.Flags, c.q.ID, wantFlags)
			}
			if r.QName != c.q.Question.Name || r.QType != c.q.Question.Type || r.QClass != ClassINET {
				t.Errorf("question %q %d %d", r.QName, r.QType, r.QClass)
			}
			if !reflect.DeepEqual(r.Answers, c.want) {
				t.Errorf("answers %+v, want %+v", r.Answers, c.want)
			}
			if wantOPT := (record{Type: TypeOPT, Class: EDNSPayloadSize}); c.q.OPT != (r.OPT != nil) || (r.OPT != nil && *r.OPT != wantOPT) {
				t.Errorf("OPT %+v, query had OPT %v", r.OPT, c.q.OPT)
			}
		})
	}
}

// TestReplyChecksumsAreChecked: the checksum checks can fail — a reply
// with one flipped payload bit or header bit is caught.
func TestReplyChecksumsAreChecked(t *testing.T) {
	q := mustParse(t, vmFrame(dnsQuery(1, "vm1.example.org", TypeA, false)))
	f, err := Reply(q, Answer{Addrs: []netip.Addr{vmIP}, TTL: 60})
	if err != nil {
		t.Fatal(err)
	}
	ipSum := binary.BigEndian.Uint16(f[24:26])
	udpSum := binary.BigEndian.Uint16(f[40:42])
	// Both fields recomputed from scratch with the test's sum16.
	g := append([]byte(nil), f...)
	binary.BigEndian.PutUint16(g[24:26], 0)
	binary.BigEndian.PutUint16(g[40:42], 0)
	if want := ^sum16(g[14:34]); ipSum != want {
		t.Errorf("IPv4 checksum %#04x, want %#04x", ipSum, want)
	}
	pseudo := append(append([]byte(nil), g[26:34]...), 0, 17, g[38], g[39])
	if want := ^sum16(pseudo, g[34:]); udpSum != want {
		t.Errorf("UDP checksum %#04x, want %#04x", udpSum, want)
	}
	// ParseQuery verifies the IPv4 header checksum of what it is given.
	bad := vmFrame(dnsQuery(1, "vm1.example.org", TypeA, false))
	bad[24] ^= 0x01
	if _, err := ParseQuery(bad); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("bad IPv4 checksum: %v", err)
	}
}

func TestParseQueryRefuses(t *testing.T) {
	// hdr is a query header with RD and the given counts.
	hdr := func(flags uint16, qd, an, ns, ar uint16) []byte {
		b := []byte{0x12, 0x34}
		for _, v := range []uint16{flags, qd, an, ns, ar} {
			b = binary.BigEndian.AppendUint16(b, v)
		}
		return b
	}
	q1 := func(name ...byte) []byte { // header, question name bytes, type A class IN
		return append(append(hdr(0x0100, 1, 0, 0, 0), name...), 0, 1, 0, 1)
	}
	good := dnsQuery(0x1234, "vm1.example.org", TypeA, true)
	longName := func() []byte {
		var n []byte
		for i := 0; i < 5; i++ { // 5 × 52 bytes > 255
			n = append(n, 51)
			n = append(n, strings.Repeat("a", 51)...)
		}
		return append(n, 0)
	}
	withTail := append(append([]byte(nil), good...), 0)
	edns1 := append([]byte(nil), good...)
	edns1[len(edns1)-5] = 1 // version byte of the OPT TTL
	notOPT := dnsQuery(1, "a", TypeA, false)
	notOPT[11] = 1
	notOPT = append(notOPT, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4) // an A record
	frag := vmFrame(good)
	frag[20] = 0x20 // MF
	binary.BigEndian.PutUint16(frag[24:], 0)
	binary.BigEndian.PutUint16(frag[24:], ^sum16(frag[14:34]))
	ipv6 := vmFrame(good)
	ipv6[12], ipv6[13] = 0x86, 0xdd

	for _, c := range []struct {
		name  string
		frame []byte
		want  error
	}{
		{"pointer to itself", vmFrame(q1(0xc0, 12)), ErrMalformed},
		{"pointer loop through a label", vmFrame(append(hdr(0x0100, 1, 0, 0, 0), 1, 'a', 0xc0, 12, 0, 1, 0, 1)), ErrMalformed},
		{"pointer past the message", vmFrame(q1(0xc0, 0xff)), ErrMalformed},
		{"pointer far past the message", vmFrame(q1(0xff, 0xff)), ErrMalformed},
		{"forward pointer", vmFrame(append(q1(0xc0, 18), 1, 'a', 0)), ErrMalformed},
		{"truncated pointer", vmFrame(append(hdr(0x0100, 1, 0, 0, 0), 0xc0)), ErrMalformed},
		{"label type 01", vmFrame(q1(0x41, 0)), ErrMalformed},
		{"name over 255", vmFrame(q1(longName()...)), ErrMalformed},
		{"truncated label", vmFrame(append(hdr(0x0100, 1, 0, 0, 0), 9, 'a')), ErrMalformed},
		{"truncated question", vmFrame(append(hdr(0x0100, 1, 0, 0, 0), 1, 'a', 0, 0)), ErrMalformed},
		{"short header", vmFrame(good[:11]), ErrMalformed},
		{"trailing byte", vmFrame(withTail), ErrMalformed},
		{"label with a dot", vmFrame(q1(3, 'a', '.', 'b', 0)), ErrUnsupported},
		{"label with NUL", vmFrame(q1(2, 'a', 0, 0)), ErrUnsupported},
		{"response", vmFrame(append(hdr(0x8100, 1, 0, 0, 0), 0, 0, 1, 0, 1)), ErrNotQuery},
		{"opcode NOTIFY", vmFrame(append(hdr(0x2000, 1, 0, 0, 0), 0, 0, 1, 0, 1)), ErrUnsupported},
		{"two questions", vmFrame(append(hdr(0x0100, 2, 0, 0, 0), 0, 0, 1, 0, 1, 0, 0, 1, 0, 1)), ErrUnsupported},
		{"no question", vmFrame(hdr(0x0100, 0, 0, 0, 0)), ErrUnsupported},
		{"answer record", vmFrame(append(hdr(0x0100, 1, 1, 0, 0), 0, 0, 1, 0, 1)), ErrUnsupported},
		{"additional A record", vmFrame(notOPT), ErrUnsupported},
		{"EDNS version 1", vmFrame(edns1), ErrUnsupported},
		{"truncated OPT", vmFrame(good[:len(good)-3]), ErrMalformed},
		{"IPv4 fragment", frag, ErrNotQuery},
		{"IPv6", ipv6, ErrNotQuery},
		{"port 5353", udpFrame(vmMAC, gwMAC, nil, vmIP, dnsIP, vmPort, 5353, good), ErrNotQuery},
		{"broadcast", udpFrame(vmMAC, gwMAC, nil, vmIP, netip.MustParseAddr("255.255.255.255"), vmPort, 53, good), ErrUnsupported},
		{"group MAC", udpFrame(vmMAC, net.HardwareAddr{1, 0, 0x5e, 0, 0, 1}, nil, vmIP, dnsIP, vmPort, 53, good), ErrUnsupported},
		{"short frame", good[:10], ErrNotQuery},
		{"UDP length past the datagram", func() []byte { f := vmFrame(good); f[38]++; return f }(), ErrMalformed},
		{"IPv4 length past the frame", func() []byte { f := vmFrame(good); return f[:len(f)-1] }(), ErrMalformed},
	} {
		q, err := ParseQuery(c.frame)
		t.Logf("%s: %v", c.name, err)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
		if err != nil && !reflect.DeepEqual(q, Query{}) {
			t.Errorf("%s: error with a non-zero Query %+v", c.name, q)
		}
	}
	// The good one parses, so the cases above fail for their own reason.
	mustParse(t, vmFrame(good))
}

// TestCompressedOPTOwnerAndPadding: a pointer that goes backwards is
// followed; Ethernet padding past the IPv4 datagram is ignored.
func TestCompressedOPTOwnerAndPadding(t *testing.T) {
	m := dnsQuery(9, "vm1.example.org", TypeA, true)
	// OPT owner: the root, as a pointer to the question's final 0 byte.
	root := 12 + len("vm1.example.org") + 1
	m = append(m[:len(m)-11], 0xc0, byte(root), 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0)
	f := append(vmFrame(m), 0, 0, 0, 0)
	q := mustParse(t, f)
	if !q.OPT || q.Question.Name != "vm1.example.org" {
		t.Errorf("%+v", q)
	}
}

// TestQuestionCaseEchoed: the question is matched lower-cased but echoed
// as sent (resolvers using 0x20 randomisation check it).
func TestQuestionCaseEchoed(t *testing.T) {
	q := mustParse(t, vmFrame(dnsQuery(3, "Vm1.eXample.ORG", TypeA, false)))
	if q.Question.Name != "vm1.example.org" {
		t.Errorf("Question.Name %q", q.Question.Name)
	}
	f, err := Reply(q, Answer{Addrs: []netip.Addr{vmIP}, TTL: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r := decodeReply(t, f); r.QName != "Vm1.eXample.ORG" || r.Answers[0].Owner != "Vm1.eXample.ORG" {
		t.Errorf("echoed %q, owner %q", r.QName, r.Answers[0].Owner)
	}
	// A hand-built Query without Raw is answered from Question.Name.
	q.Raw = nil
	f, err = Reply(q, Answer{Addrs: []netip.Addr{vmIP}, TTL: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r := decodeReply(t, f); r.QName != "vm1.example.org" {
		t.Errorf("echoed %q", r.QName)
	}
}

func TestReplyRefuses(t *testing.T) {
	a := mustParse(t, vmFrame(dnsQuery(1, "vm1.example.org", TypeA, false)))
	ptr := mustParse(t, vmFrame(dnsQuery(1, "5.0.0.10.in-addr.arpa", TypePTR, true)))
	many := make([]netip.Addr, 40) // 40 × 16 bytes + question > 512
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{10, 0, 1, byte(i)})
	}
	mismatched := a
	mismatched.Question.Name = "vm2.example.org"
	noAddr := a
	noAddr.IPSrc = netip.Addr{}
	for _, c := range []struct {
		name string
		q    Query
		a    Answer
		want error
	}{
		{"IPv6 address for A", a, Answer{Addrs: []netip.Addr{netip.MustParseAddr("fd00::5")}}, ErrBadAnswer},
		{"PTR for A", a, Answer{PTR: []string{"x.example"}}, ErrBadAnswer},
		{"A for PTR", ptr, Answer{Addrs: []netip.Addr{vmIP}}, ErrBadAnswer},
		{"records with NXDOMAIN", a, Answer{Addrs: []netip.Addr{vmIP}, RCode: RCodeNameError}, ErrBadAnswer},
		{"RCode over 15", a, Answer{RCode: 16}, ErrBadAnswer},
		{"empty label", ptr, Answer{PTR: []string{"a..example"}}, ErrBadAnswer},
		{"64-byte label", ptr, Answer{PTR: []string{strings.Repeat("a", 64) + ".example"}}, ErrBadAnswer},
		{"name over 255", ptr, Answer{PTR: []string{strings.Repeat(strings.Repeat("a", 60)+".", 5)}}, ErrBadAnswer},
		{"Raw and Question disagree", mismatched, Answer{}, ErrBadAnswer},
		{"no source address", noAddr, Answer{}, ErrBadAnswer},
		{"over 512 without EDNS", a, Answer{Addrs: many}, ErrTooLarge},
	} {
		if _, err := Reply(c.q, c.a); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
	// With EDNS the 40 addresses fit.
	e := mustParse(t, vmFrame(dnsQuery(1, "vm1.example.org", TypeA, true)))
	if _, err := Reply(e, Answer{Addrs: many}); err != nil {
		t.Errorf("40 addresses with EDNS: %v", err)
	}
}

func TestReverseName(t *testing.T) {
	for _, c := range []struct{ ip, name string }{
		{"10.0.0.5", "5.0.0.10.in-addr.arpa"},
		{"192.168.100.254", "254.100.168.192.in-addr.arpa"},
		{"2001:db8::567:89ab", "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"},
	} {
		ip := netip.MustParseAddr(c.ip)
		if got := ReverseName(ip); got != c.name {
			t.Errorf("ReverseName(%s) = %q, want %q", ip, got, c.name)
		}
		for _, n := range []string{c.name, c.name + ".", strings.ToUpper(c.name)} {
			if got, ok := ParseReverse(n); !ok || got != ip {
				t.Errorf("ParseReverse(%q) = %v %v, want %v", n, got, ok, ip)
			}
		}
	}
	if ReverseName(netip.Addr{}) != "" {
		t.Error("ReverseName of the zero Addr is not empty")
	}
	for _, n := range []string{
		"0.0.10.in-addr.arpa", "1.5.0.0.10.in-addr.arpa", "256.0.0.10.in-addr.arpa", "05.0.0.10.in-addr.arpa",
		"+5.0.0.10.in-addr.arpa", "a.0.0.10.in-addr.arpa", ".0.0.10.in-addr.arpa", "in-addr.arpa", "5.0.0.10.in-addr.arpa.example",
		"1.ip6.arpa", strings.Repeat("g.", 32) + "ip6.arpa", strings.Repeat("0.", 31) + "00.ip6.arpa", "vm1.example.org", "",
	} {
		if ip, ok := ParseReverse(n); ok {
			t.Errorf("ParseReverse(%q) = %v, want false", n, ip)
		}
	}
}
