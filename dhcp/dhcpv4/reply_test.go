package dhcpv4_test

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/dhcp/dhcpv4"
	"github.com/wyvern-sdn/wyvern/internal/golden"
)

var serverMAC = mac("fa:16:3e:00:00:01")

func parseFile(t testing.TB, name string) dhcpv4.Request {
	t.Helper()
	r, err := dhcpv4.ParseRequest(readHex(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func renewOptions() dhcpv4.Options {
	return dhcpv4.Options{
		SubnetMask: netip.MustParsePrefix("10.77.0.0/24"), Router: a("10.77.0.1"),
		Lease: 3600, ServerID: a("10.77.0.1"),
	}
}

// TestReplyGolden builds answers to real and synthetic requests, checks
// them header by header (checksums included), and compares their bytes
// with testdata/<case>.golden (go test -update rewrites them).
func TestReplyGolden(t *testing.T) {
	inform := dhcpv4.Request{
		Type: dhcpv4.MsgInform, XID: 0x01020304, CIAddr: a("10.0.0.5"), GIAddr: zero,
		CHAddr: mac("02:00:00:aa:bb:05"), ParamList: []byte{1, 3, 6, 15, 121},
		EthSrc: mac("02:00:00:aa:bb:05"), IPSrc: a("10.0.0.5"), IPDst: bcast,
	}
	broadcast := parseFile(t, "udhcpc_discover")
	broadcast.Flags = 0x8000

	cases := []struct {
		name    string
		req     dhcpv4.Request
		typ     dhcpv4.MessageType
		yiaddr  netip.Addr
		opts    dhcpv4.Options
		message string

		ethDst, ipDst   string
		ciaddr, wyiaddr netip.Addr
		codes           []byte
		bootpLen        int
	}{
		{
			name: "offer_full", req: parseFile(t, "udhcpc_discover"), typ: dhcpv4.MsgOffer,
			yiaddr: a("10.0.0.5"), opts: fullOptions(),
			ethDst: "02:00:00:aa:bb:01", ipDst: "10.0.0.5", ciaddr: zero, wyiaddr: a("10.0.0.5"),
			codes:    []byte{53, 1, 3, 6, 15, 26, 42, 51, 54, 58, 59, 121, 255},
			bootpLen: 240 + 3 + 95 + 1,
		},
		{
			name: "ack_no_router", req: parseFile(t, "dhclient_request"), typ: dhcpv4.MsgAck,
			yiaddr: a("10.0.0.7"), opts: noRouterOptions(),
			ethDst: "02:00:00:aa:bb:02", ipDst: "10.0.0.7", ciaddr: zero, wyiaddr: a("10.0.0.7"),
			codes:    []byte{53, 1, 6, 26, 51, 54, 58, 59, 121, 255},
			bootpLen: 240 + 3 + 58 + 1,
		},
		{
			name: "nak", req: parseFile(t, "udhcpc_request"), typ: dhcpv4.MsgNak,
			yiaddr: a("10.0.0.5"), opts: fullOptions(), message: "requested address not available",
			ethDst: "ff:ff:ff:ff:ff:ff", ipDst: "255.255.255.255", ciaddr: zero, wyiaddr: zero,
			codes:    []byte{53, 54, 56, 255},
			bootpLen: 300,
		},
		{
			name: "ack_renew", req: parseFile(t, "udhcpc_renew"), typ: dhcpv4.MsgAck,
			yiaddr: a("10.77.0.146"), opts: renewOptions(),
			ethDst: "02:00:00:aa:bb:03", ipDst: "10.77.0.146", ciaddr: a("10.77.0.146"), wyiaddr: a("10.77.0.146"),
			codes:    []byte{53, 1, 3, 51, 54, 58, 59, 255},
			bootpLen: 300,
		},
		{
			name: "offer_broadcast", req: broadcast, typ: dhcpv4.MsgOffer,
			yiaddr: a("10.0.0.5"), opts: fullOptions(),
			ethDst: "ff:ff:ff:ff:ff:ff", ipDst: "255.255.255.255", ciaddr: zero, wyiaddr: a("10.0.0.5"),
			codes:    []byte{53, 1, 3, 6, 15, 26, 42, 51, 54, 58, 59, 121, 255},
			bootpLen: 240 + 3 + 95 + 1,
		},
		{
			name: "ack_inform", req: inform, typ: dhcpv4.MsgAck, opts: fullOptions(),
			ethDst: "02:00:00:aa:bb:05", ipDst: "10.0.0.5", ciaddr: a("10.0.0.5"), wyiaddr: zero,
			codes:    []byte{53, 1, 3, 6, 15, 26, 42, 54, 121, 255},
			bootpLen: 240 + 3 + (95 - 3*6) + 1, // no 51, 58, 59
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			encoded := mustEncode(t, c.opts)
			f, err := dhcpv4.Reply(c.req, c.typ, c.yiaddr, serverMAC, encoded, c.message)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, c.name, hexLines(f))

			r := decodeReply(t, f)
			if r.EthDst.String() != c.ethDst || r.EthSrc.String() != serverMAC.String() {
				t.Errorf("Ethernet %v → %v, want %v → %s", r.EthSrc, r.EthDst, serverMAC, c.ethDst)
			}
			if r.IPSrc != c.opts.ServerID || r.IPDst.String() != c.ipDst {
				t.Errorf("IP %v → %v, want %v → %s", r.IPSrc, r.IPDst, c.opts.ServerID, c.ipDst)
			}
			if r.TTL != 64 || r.SPort != 67 || r.DPort != 68 || r.Tagged {
				t.Errorf("TTL %d, UDP %d→%d, tagged %v", r.TTL, r.SPort, r.DPort, r.Tagged)
			}
			if r.Op != 2 || r.HType != 1 || r.HLen != 6 || r.XID != c.req.XID || r.Flags != c.req.Flags {
				t.Errorf("op %d htype %d hlen %d xid %#x flags %#x", r.Op, r.HType, r.HLen, r.XID, r.Flags)
			}
			if r.CIAddr != c.ciaddr || r.YIAddr != c.wyiaddr || r.SIAddr != zero || r.GIAddr != zero {
				t.Errorf("ciaddr %v yiaddr %v siaddr %v giaddr %v, want ciaddr %v yiaddr %v", r.CIAddr, r.YIAddr, r.SIAddr, r.GIAddr, c.ciaddr, c.wyiaddr)
			}
			if !bytes.Equal(r.CHAddr, c.req.CHAddr) || !r.ZeroSnameFile {
				t.Errorf("chaddr %v, sname/file zero %v", r.CHAddr, r.ZeroSnameFile)
			}
			codes, extra := c.codes, 0
			if n := len(c.req.ClientID); n > 0 { // echoed, RFC 6842
				codes = append(slices.Clone(codes[:len(codes)-1]), 61, 255)
				if !bytes.Equal(r.Opts[61], c.req.ClientID) {
					t.Errorf("client id %x echoed as %x", c.req.ClientID, r.Opts[61])
				}
				extra = 2 + n // at most: padding to 300 may absorb it
			}
			if !slices.Equal(r.Codes, codes) {
				t.Errorf("option codes %v, want %v", r.Codes, codes)
			}
			if r.BOOTPLen < c.bootpLen || r.BOOTPLen > c.bootpLen+extra {
				t.Errorf("BOOTP message %d bytes, want %d", r.BOOTPLen, c.bootpLen)
			}
			if typ := r.Opts[53]; len(typ) != 1 || dhcpv4.MessageType(typ[0]) != c.typ {
				t.Errorf("option 53 = %v, want %v", typ, c.typ)
			}
			if c.message != "" && string(r.Opts[56]) != c.message {
				t.Errorf("option 56 = %q", r.Opts[56])
			}
			// The options after 53 are the encoded ones, byte for byte
			// (for OFFER and ACK to a REQUEST).
			if c.typ != dhcpv4.MsgNak && c.req.Type != dhcpv4.MsgInform {
				m := f[14+20+8+240:]
				if !bytes.HasPrefix(m[3:], encoded) {
					t.Errorf("options are not the encoded ones")
				}
			}
		})
	}
}

// TestReplyIsNotARequest: the OFFER to udhcpc's DISCOVER is a BOOTREPLY,
// which ParseRequest refuses as not a client message.
func TestReplyIsNotARequest(t *testing.T) {
	f, err := dhcpv4.Reply(parseFile(t, "udhcpc_discover"), dhcpv4.MsgOffer, a("10.0.0.5"), serverMAC, mustEncode(t, fullOptions()), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dhcpv4.ParseRequest(f); !errors.Is(err, dhcpv4.ErrNotDHCP) {
		t.Errorf("ParseRequest(reply) = %v, want ErrNotDHCP", err)
	}
}

// TestReplyVLAN: a tagged request gets an answer with the same tag.
func TestReplyVLAN(t *testing.T) {
	req := parseFile(t, "udhcpc_discover")
	req.Tagged, req.TCI = true, 0x6064
	req, err := dhcpv4.ParseRequest(buildRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	f, err := dhcpv4.Reply(req, dhcpv4.MsgOffer, a("10.0.0.5"), serverMAC, mustEncode(t, fullOptions()), "")
	if err != nil {
		t.Fatal(err)
	}
	r := decodeReply(t, f)
	if !r.Tagged || r.TCI != 0x6064 {
		t.Errorf("tagged %v TCI %#x, want 0x6064", r.Tagged, r.TCI)
	}
}

// TestReplyMessageReplacesOption56: the message argument wins over a 56
// among the encoded options; without one, the encoded 56 is sent.
func TestReplyMessageReplacesOption56(t *testing.T) {
	o := renewOptions()
	o.Extra = []dhcpv4.RawOption{{Code: 56, Value: []byte("welcome")}}
	req := parseFile(t, "udhcpc_request")
	for msg, want := range map[string]string{"": "welcome", "hello": "hello"} {
		f, err := dhcpv4.Reply(req, dhcpv4.MsgAck, a("10.77.0.144"), serverMAC, mustEncode(t, o), msg)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(decodeReply(t, f).Opts[56]); got != want {
			t.Errorf("message %q: option 56 = %q, want %q", msg, got, want)
		}
	}
}

// TestReplyMaxMessage: an answer larger than 576 bytes needs the client
// to have said (option 57) it takes one.
func TestReplyMaxMessage(t *testing.T) {
	o := renewOptions()
	o.Extra = []dhcpv4.RawOption{{Code: 224, Value: make([]byte, 255)}, {Code: 225, Value: make([]byte, 100)}}
	req := parseFile(t, "udhcpc_request") // says 576
	_, err := dhcpv4.Reply(req, dhcpv4.MsgAck, a("10.77.0.144"), serverMAC, mustEncode(t, o), "")
	if !errors.Is(err, dhcpv4.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	req.MaxMessage = 1500
	f, err := dhcpv4.Reply(req, dhcpv4.MsgAck, a("10.77.0.144"), serverMAC, mustEncode(t, o), "")
	if err != nil {
		t.Fatal(err)
	}
	decodeReply(t, f)
}

func TestReplyRejects(t *testing.T) {
	req := parseFile(t, "udhcpc_request")
	opts := mustEncode(t, renewOptions())
	relayed := req
	relayed.GIAddr = a("10.9.9.9")
	shortMAC := req
	shortMAC.CHAddr = shortMAC.CHAddr[:4]
	inform := req
	inform.Type = dhcpv4.MsgInform
	noServerID := renewOptions()
	noServerID.ServerID = netip.Addr{}
	cases := []struct {
		name    string
		req     dhcpv4.Request
		typ     dhcpv4.MessageType
		yiaddr  netip.Addr
		mac     []byte
		opts    []byte
		message string
		want    error
	}{
		{name: "discover as reply", req: req, typ: dhcpv4.MsgDiscover, yiaddr: a("10.0.0.5"), mac: serverMAC, opts: opts},
		{name: "no yiaddr", req: req, typ: dhcpv4.MsgOffer, mac: serverMAC, opts: opts},
		{name: "yiaddr 0.0.0.0", req: req, typ: dhcpv4.MsgAck, yiaddr: zero, mac: serverMAC, opts: opts},
		{name: "v6 yiaddr", req: req, typ: dhcpv4.MsgAck, yiaddr: netip.MustParseAddr("fd00::5"), mac: serverMAC, opts: opts},
		{name: "inform with yiaddr", req: inform, typ: dhcpv4.MsgAck, yiaddr: a("10.0.0.5"), mac: serverMAC, opts: opts},
		{name: "relayed", req: relayed, typ: dhcpv4.MsgOffer, yiaddr: a("10.0.0.5"), mac: serverMAC, opts: opts, want: dhcpv4.ErrUnsupported},
		{name: "chaddr 4 bytes", req: shortMAC, typ: dhcpv4.MsgOffer, yiaddr: a("10.0.0.5"), mac: serverMAC, opts: opts, want: dhcpv4.ErrUnsupported},
		{name: "server MAC 5 bytes", req: req, typ: dhcpv4.MsgOffer, yiaddr: a("10.0.0.5"), mac: serverMAC[:5], opts: opts},
		{name: "no server id", req: req, typ: dhcpv4.MsgOffer, yiaddr: a("10.0.0.5"), mac: serverMAC, opts: mustEncode(t, noServerID), want: dhcpv4.ErrInvalidOption},
		{name: "truncated opts", req: req, typ: dhcpv4.MsgOffer, yiaddr: a("10.0.0.5"), mac: serverMAC, opts: opts[:len(opts)-1], want: dhcpv4.ErrTruncated},
		{name: "53 in opts", req: req, typ: dhcpv4.MsgOffer, yiaddr: a("10.0.0.5"), mac: serverMAC, opts: append([]byte{53, 1, 5}, opts...), want: dhcpv4.ErrInvalidOption},
		{name: "256-byte message", req: req, typ: dhcpv4.MsgNak, mac: serverMAC, opts: opts, message: strings.Repeat("x", 256), want: dhcpv4.ErrInvalidOption},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := dhcpv4.Reply(c.req, c.typ, c.yiaddr, c.mac, c.opts, c.message)
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
				t.Errorf("Reply = %d bytes, %v; want error %v", len(f), err, c.want)
			}
		})
	}
}
