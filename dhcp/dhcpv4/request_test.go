package dhcpv4_test

import (
	"errors"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/wyvern-sdn/wyvern/dhcp/dhcpv4"
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

var (
	zero  = netip.IPv4Unspecified()
	bcast = netip.MustParseAddr("255.255.255.255")
	a     = netip.MustParseAddr
)

// udhcpcParams is what busybox udhcpc 1.35 asks for: 1 3 6 12 15 28 42.
var udhcpcParams = []byte{1, 3, 6, 12, 15, 28, 42}

// TestParseRealClients parses frames captured from busybox udhcpc and
// ISC dhclient (see the comments in testdata/*.hex).
func TestParseRealClients(t *testing.T) {
	cases := []struct {
		file string
		want dhcpv4.Request
	}{
		{"udhcpc_discover", dhcpv4.Request{
			Type: dhcpv4.MsgDiscover, XID: 0x8fd6ca57, CIAddr: zero, GIAddr: zero,
			CHAddr: mac("02:00:00:aa:bb:01"), ParamList: udhcpcParams,
			ClientID: []byte{1, 2, 0, 0, 0xaa, 0xbb, 1}, HostName: "vm-udhcpc", MaxMessage: 576,
			EthSrc: mac("02:00:00:aa:bb:01"), IPSrc: zero, IPDst: bcast,
		}},
		{"udhcpc_request", dhcpv4.Request{
			Type: dhcpv4.MsgRequest, XID: 0x8fd6ca57, CIAddr: zero, GIAddr: zero,
			CHAddr:      mac("02:00:00:aa:bb:01"),
			RequestedIP: a("10.77.0.144"), ServerID: a("10.77.0.1"), ParamList: udhcpcParams,
			ClientID: []byte{1, 2, 0, 0, 0xaa, 0xbb, 1}, HostName: "vm-udhcpc", MaxMessage: 576,
			EthSrc: mac("02:00:00:aa:bb:01"), IPSrc: zero, IPDst: bcast,
		}},
		{"dhclient_discover", dhcpv4.Request{
			Type: dhcpv4.MsgDiscover, XID: 0x49fcf757, CIAddr: zero, GIAddr: zero,
			CHAddr: mac("02:00:00:aa:bb:02"), ParamList: []byte{1, 28, 2, 3, 15, 6, 12},
			HostName: "vm-dhclient",
			EthSrc:   mac("02:00:00:aa:bb:02"), IPSrc: zero, IPDst: bcast,
		}},
		{"dhclient_request", dhcpv4.Request{
			Type: dhcpv4.MsgRequest, XID: 0x49fcf757, CIAddr: zero, GIAddr: zero,
			CHAddr:      mac("02:00:00:aa:bb:02"),
			RequestedIP: a("10.77.0.145"), ServerID: a("10.77.0.1"),
			ParamList: []byte{1, 28, 2, 3, 15, 6, 12}, HostName: "vm-dhclient",
			EthSrc: mac("02:00:00:aa:bb:02"), IPSrc: zero, IPDst: bcast,
		}},
		// RENEWING: ciaddr set, no 50 or 54 (RFC 2131 §4.3.2), unicast,
		// and a UDP checksum left partial by offload, which must not
		// make the request be dropped.
		{"udhcpc_renew", dhcpv4.Request{
			Type: dhcpv4.MsgRequest, XID: 0x7678623c, CIAddr: a("10.77.0.146"), GIAddr: zero,
			CHAddr: mac("02:00:00:aa:bb:03"), ParamList: udhcpcParams,
			ClientID: []byte{1, 2, 0, 0, 0xaa, 0xbb, 3}, HostName: "vm-renew", MaxMessage: 576,
			EthSrc: mac("02:00:00:aa:bb:03"), IPSrc: a("10.77.0.146"), IPDst: a("10.77.0.1"),
		}},
		{"udhcpc_release", dhcpv4.Request{
			Type: dhcpv4.MsgRelease, XID: 0xe631fc68, CIAddr: a("10.77.0.146"), GIAddr: zero,
			CHAddr: mac("02:00:00:aa:bb:03"), ServerID: a("10.77.0.1"),
			ClientID: []byte{1, 2, 0, 0, 0xaa, 0xbb, 3},
			EthSrc:   mac("02:00:00:aa:bb:03"), IPSrc: a("10.77.0.146"), IPDst: a("10.77.0.1"),
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got, err := dhcpv4.ParseRequest(readHex(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// TestParseDoesNotAlias: the request's slices survive reuse of the frame.
func TestParseDoesNotAlias(t *testing.T) {
	f := readHex(t, "udhcpc_discover")
	r, err := dhcpv4.ParseRequest(f)
	if err != nil {
		t.Fatal(err)
	}
	clear(f)
	if r.CHAddr.String() != "02:00:00:aa:bb:01" || r.EthSrc.String() != "02:00:00:aa:bb:01" ||
		r.ParamList[0] != 1 || r.ClientID[0] != 1 {
		t.Errorf("request aliases the frame: %+v", r)
	}
}

// TestParseVLANAndIPOptions: one 802.1Q tag, an IPv4 header with options
// (IHL 6), Ethernet padding after the IP packet, and repeated options
// concatenated (RFC 3396).
func TestParseVLANAndIPOptions(t *testing.T) {
	r, err := dhcpv4.ParseRequest(readHex(t, "udhcpc_discover"))
	if err != nil {
		t.Fatal(err)
	}
	r.Tagged, r.TCI = true, 0x2064
	r.ParamList = make([]byte, 300) // sent as 255 + 45
	for i := range r.ParamList {
		r.ParamList[i] = byte(i)
	}
	f := buildRequest(r)
	// Insert 4 bytes of IP options (NOP NOP NOP EOL) at the IP header end.
	ipOff := 18
	ip := append([]byte{}, f[ipOff:ipOff+20]...)
	ip[0] = 0x46
	total := int(ip[2])<<8 | int(ip[3]) + 4
	ip[2], ip[3] = byte(total>>8), byte(total)
	ip = append(ip, 1, 1, 1, 0)
	ip[10], ip[11] = 0, 0
	s := onesSum(ip)
	ip[10], ip[11] = byte(s>>8), byte(s)
	g := append(append(append([]byte{}, f[:ipOff]...), ip...), f[ipOff+20:]...)
	g = append(g, 0, 0, 0, 0, 0, 0) // trailer

	got, err := dhcpv4.ParseRequest(g)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("got  %+v\nwant %+v", got, r)
	}
}

func TestParseRejects(t *testing.T) {
	good := readHex(t, "udhcpc_discover")
	const (
		ip   = 14
		udp  = ip + 20
		boot = udp + 8
		opts = boot + 240
	)
	mutate := func(f func(b []byte) []byte) []byte {
		return f(append([]byte{}, good...))
	}
	fixIP := func(b []byte) []byte {
		b[ip+10], b[ip+11] = 0, 0
		s := onesSum(b[ip : ip+20])
		b[ip+10], b[ip+11] = byte(s>>8), byte(s)
		return b
	}
	cases := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, dhcpv4.ErrTruncated},
		{"ethernet only", good[:14], dhcpv4.ErrTruncated},
		{"arp", mutate(func(b []byte) []byte { b[12], b[13] = 8, 6; return b }), dhcpv4.ErrNotDHCP},
		{"qinq", mutate(func(b []byte) []byte { b[12], b[13] = 0x88, 0xa8; return b }), dhcpv4.ErrNotDHCP},
		{"ip checksum", mutate(func(b []byte) []byte { b[ip+10]++; return b }), dhcpv4.ErrMalformed},
		{"ihl 4", mutate(func(b []byte) []byte { b[ip] = 0x44; return fixIP(b) }), dhcpv4.ErrMalformed},
		{"ip total past frame", mutate(func(b []byte) []byte { b[ip+2]++; return fixIP(b) }), dhcpv4.ErrTruncated},
		{"fragment", mutate(func(b []byte) []byte { b[ip+6] = 0x20; return fixIP(b) }), dhcpv4.ErrMalformed},
		{"tcp", mutate(func(b []byte) []byte { b[ip+9] = 6; return fixIP(b) }), dhcpv4.ErrNotDHCP},
		{"udp 67→67 (relay)", mutate(func(b []byte) []byte { b[udp+1] = 67; return b }), dhcpv4.ErrNotDHCP},
		{"udp length past ip", mutate(func(b []byte) []byte { b[udp+5]++; return b }), dhcpv4.ErrTruncated},
		{"udp length 7", mutate(func(b []byte) []byte { b[udp+4], b[udp+5] = 0, 7; return b }), dhcpv4.ErrMalformed},
		{"bootreply", mutate(func(b []byte) []byte { b[boot] = 2; return b }), dhcpv4.ErrNotDHCP},
		{"no cookie", mutate(func(b []byte) []byte { b[boot+236] = 0; return b }), dhcpv4.ErrNotDHCP},
		{"token ring", mutate(func(b []byte) []byte { b[boot+1] = 6; return b }), dhcpv4.ErrUnsupported},
		{"hlen 16", mutate(func(b []byte) []byte { b[boot+2] = 16; return b }), dhcpv4.ErrUnsupported},
		{"plain bootp", mutate(func(b []byte) []byte { b[opts] = 0; b[opts+1] = 0; b[opts+2] = 0; return b }), dhcpv4.ErrNotDHCP},
		{"offer", mutate(func(b []byte) []byte { b[opts+2] = 2; return b }), dhcpv4.ErrNotDHCP},
		{"overload", mutate(func(b []byte) []byte { b[opts] = 52; b[opts+2] = 3; return b }), dhcpv4.ErrUnsupported},
		{"option past end", mutate(func(b []byte) []byte {
			// End the message in the middle of option 61.
			b = b[:opts+45]
			n := len(b) - ip
			b[ip+2], b[ip+3] = byte(n>>8), byte(n)
			u := n - 20
			b[udp+4], b[udp+5] = byte(u>>8), byte(u)
			return fixIP(b)
		}), dhcpv4.ErrTruncated},
		{"option 50 of 2 bytes", mutate(func(b []byte) []byte {
			b[opts+3] = 50 // was 57, length 2
			return b
		}), dhcpv4.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := dhcpv4.ParseRequest(c.frame)
			if !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}
}
