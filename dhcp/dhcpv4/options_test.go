package dhcpv4_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/dhcp/dhcpv4"
)

// fullOptions is a port with everything: the set the golden replies use.
func fullOptions() dhcpv4.Options {
	return dhcpv4.Options{
		SubnetMask: netip.MustParsePrefix("10.0.0.0/24"),
		Router:     a("10.0.0.1"),
		DNS:        []netip.Addr{a("10.0.0.2"), a("8.8.8.8")},
		DomainName: "openstacklocal",
		MTU:        1442,
		Lease:      43200,
		ServerID:   a("10.0.0.1"),
		Routes: []dhcpv4.Route{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: a("10.0.0.1")},
			{Dst: netip.MustParsePrefix("169.254.169.254/32"), Via: a("10.0.0.2")},
			{Dst: netip.MustParsePrefix("192.168.0.0/16"), Via: a("10.0.0.254")},
		},
		Extra: []dhcpv4.RawOption{{Code: 42, Value: []byte{10, 0, 0, 1}}}, // NTP
	}
}

// noRouterOptions is a subnet whose gateway is null: no option 3, but
// 121 still carries the other routes.
func noRouterOptions() dhcpv4.Options {
	return dhcpv4.Options{
		SubnetMask: netip.MustParsePrefix("10.0.0.0/24"),
		DNS:        []netip.Addr{a("10.0.0.2")},
		MTU:        1450,
		Lease:      86400,
		ServerID:   a("10.0.0.2"),
		Routes: []dhcpv4.Route{
			{Dst: netip.MustParsePrefix("169.254.169.254/32"), Via: a("10.0.0.2")},
			{Dst: netip.MustParsePrefix("10.1.0.0/16"), Via: a("10.0.0.254")},
		},
	}
}

func mustEncode(t testing.TB, o dhcpv4.Options) []byte {
	t.Helper()
	b, err := o.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEncodeFull spells out the bytes of the full set, option by option.
func TestEncodeFull(t *testing.T) {
	want := strings.Join([]string{
		"0104ffffff00",                     // 1 mask /24
		"03040a000001",                     // 3 router
		"06080a00000208080808",             // 6 DNS x2
		"0f0e6f70656e737461636b6c6f63616c", // 15 "openstacklocal"
		"1a0205a2",                         // 26 MTU 1442
		"2a040a000001",                     // 42 extra (NTP)
		"3304 0000a8c0",                    // 51 lease 43200
		"3604 0a000001",                    // 54 server id
		"3a04 00005460",                    // 58 T1 21600
		"3b04 000093a8",                    // 59 T2 37800
		// 121: 0/0 via .1; /32 in 4 octets; /16 in 2 octets
		"7915 00 0a000001 20 a9fea9fe 0a000002 10 c0a8 0a0000fe",
	}, "")
	got := mustEncode(t, fullOptions())
	if w := strings.ReplaceAll(want, " ", ""); hex.EncodeToString(got) != w {
		t.Errorf("Encode\n got %x\nwant %s", got, w)
	}
}

func TestEncodeEmptyAndOmitted(t *testing.T) {
	if b := mustEncode(t, dhcpv4.Options{}); len(b) != 0 {
		t.Errorf("zero Options encode to %x", b)
	}
	// Infinite lease: 51 without T1 and T2.
	b := mustEncode(t, dhcpv4.Options{Lease: 0xffffffff})
	if hex.EncodeToString(b) != "3304ffffffff" {
		t.Errorf("infinite lease: %x", b)
	}
}

// TestEncodeExtraReplaces: an extra option with the code of a typed one
// (router, T1) is sent in its place, once.
func TestEncodeExtraReplaces(t *testing.T) {
	o := dhcpv4.Options{
		Router: a("10.0.0.1"), Lease: 100,
		Extra: []dhcpv4.RawOption{{Code: 58, Value: []byte{0, 0, 0, 10}}, {Code: 3, Value: []byte{10, 0, 0, 9}}},
	}
	got := hex.EncodeToString(mustEncode(t, o))
	want := "03040a000009" + "330400000064" + "3a040000000a" + "3b0400000057"
	if got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestEncodeRejects(t *testing.T) {
	many := make([]netip.Addr, 64) // 256 bytes
	for i := range many {
		many[i] = a("10.0.0.1")
	}
	cases := map[string]dhcpv4.Options{
		"v6 router":       {Router: netip.MustParseAddr("fe80::1")},
		"4in6 dns":        {DNS: []netip.Addr{netip.MustParseAddr("::ffff:10.0.0.1")}},
		"v6 mask":         {SubnetMask: netip.MustParsePrefix("fd00::/64")},
		"256-byte domain": {DomainName: strings.Repeat("a", 256)},
		"64 DNS servers":  {DNS: many},
		"MTU 67":          {MTU: 67},
		"route host bits": {Routes: []dhcpv4.Route{{Dst: netip.MustParsePrefix("10.0.0.1/24"), Via: a("10.0.0.1")}}},
		"route via v6":    {Routes: []dhcpv4.Route{{Dst: netip.MustParsePrefix("10.0.0.0/24"), Via: netip.MustParseAddr("::1")}}},
		"route no dst":    {Routes: []dhcpv4.Route{{Via: a("10.0.0.1")}}},
		"extra 53":        {Extra: []dhcpv4.RawOption{{Code: 53, Value: []byte{5}}}},
		"extra 52":        {Extra: []dhcpv4.RawOption{{Code: 52, Value: []byte{1}}}},
		"extra pad":       {Extra: []dhcpv4.RawOption{{Code: 0}}},
		"extra end":       {Extra: []dhcpv4.RawOption{{Code: 255}}},
		"extra twice":     {Extra: []dhcpv4.RawOption{{Code: 42, Value: []byte{1}}, {Code: 42, Value: []byte{2}}}},
		"extra 256 bytes": {Extra: []dhcpv4.RawOption{{Code: 224, Value: make([]byte, 256)}}},
	}
	for name, o := range cases {
		if b, err := o.Encode(); !errors.Is(err, dhcpv4.ErrInvalidOption) {
			t.Errorf("%s: Encode = %x, %v; want ErrInvalidOption", name, b, err)
		}
	}
	// The largest encodable value passes.
	if _, err := (dhcpv4.Options{DomainName: strings.Repeat("a", 255)}).Encode(); err != nil {
		t.Errorf("255-byte domain: %v", err)
	}
}

func TestDecodeOptionsRejects(t *testing.T) {
	cases := map[string]string{
		"descending":         "03040a000001" + "0104ffffff00",
		"twice":              "2a0101" + "2a0102",
		"pad":                "00",
		"end":                "ff",
		"message type":       "350105",
		"overload":           "340101",
		"truncated header":   "2a",
		"truncated value":    "2a0401",
		"lease without T1":   "3304000000643b0400000057",
		"lease without T1/2": "330400000064",
	}
	for name, h := range cases {
		b, _ := hex.DecodeString(h)
		if o, err := dhcpv4.DecodeOptions(b); err == nil {
			t.Errorf("%s: DecodeOptions(%s) = %+v, want an error", name, h, o)
		}
	}
}

// TestDecodeOptionsNonCanonical: values a typed field cannot reproduce
// come back in Extra and re-encode to the same bytes.
func TestDecodeOptionsNonCanonical(t *testing.T) {
	h := "0104ff00ff00" + // non-contiguous mask
		"03030a0000" + // 3-byte router
		"0f00" + // empty domain
		"1a020010" + // MTU 16
		"33040000006" + "4" + "3a0400000001" + "3b0400000057" + // T1 not lease/2, T2 implied
		"790121" // 121 of width 33
	b, _ := hex.DecodeString(h)
	o, err := dhcpv4.DecodeOptions(b)
	if err != nil {
		t.Fatal(err)
	}
	want := dhcpv4.Options{
		Lease: 100,
		Extra: []dhcpv4.RawOption{
			{Code: 1, Value: []byte{0xff, 0, 0xff, 0}},
			{Code: 3, Value: []byte{10, 0, 0}},
			{Code: 15, Value: []byte{}},
			{Code: 26, Value: []byte{0, 16}},
			{Code: 58, Value: []byte{0, 0, 0, 1}},
			{Code: 121, Value: []byte{0x21}},
		},
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("got  %+v\nwant %+v", o, want)
	}
	if again := mustEncode(t, o); !bytes.Equal(again, b) {
		t.Errorf("re-encoded %x, want %x", again, b)
	}
}

// randOptions returns random Options. canonical ones use no Extra code of
// a typed option, so DecodeOptions must give them back field for field.
func randOptions(r *rand.Rand, canonical bool) dhcpv4.Options {
	addr := func() netip.Addr {
		return netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
	}
	var o dhcpv4.Options
	if r.IntN(2) == 0 {
		o.SubnetMask = netip.PrefixFrom(netip.IPv4Unspecified(), r.IntN(33))
	}
	if r.IntN(2) == 0 {
		o.Router = addr()
	}
	for range r.IntN(5) {
		o.DNS = append(o.DNS, addr())
	}
	if r.IntN(2) == 0 {
		n := 1 + r.IntN(40)
		s := make([]byte, n)
		for i := range s {
			s[i] = byte(r.Uint32())
		}
		o.DomainName = string(s)
	}
	if r.IntN(2) == 0 {
		o.MTU = uint16(68 + r.IntN(65536-68))
	}
	switch r.IntN(4) {
	case 0:
		o.Lease = 1 + r.Uint32N(0xfffffffe)
	case 1:
		o.Lease = 0xffffffff
	case 2:
		o.Lease = 1 + r.Uint32N(10)
	}
	if r.IntN(2) == 0 {
		o.ServerID = addr()
	}
	for range r.IntN(6) {
		p, _ := addr().Prefix(r.IntN(33))
		o.Routes = append(o.Routes, dhcpv4.Route{Dst: p, Via: addr()})
	}
	typed := map[byte]bool{1: true, 3: true, 6: true, 15: true, 26: true, 51: true, 54: true, 58: true, 59: true, 121: true}
	used := map[byte]bool{}
	for range r.IntN(5) {
		code := byte(1 + r.IntN(254))
		if used[code] || code == 52 || code == 53 || (canonical && typed[code]) {
			continue
		}
		used[code] = true
		v := make([]byte, r.IntN(20))
		for i := range v {
			v[i] = byte(r.Uint32())
		}
		o.Extra = append(o.Extra, dhcpv4.RawOption{Code: code, Value: v})
	}
	slices.SortFunc(o.Extra, func(x, y dhcpv4.RawOption) int { return int(x.Code) - int(y.Code) })
	return o
}

// TestOptionsRoundTrip: for random option sets, DecodeOptions(Encode(o))
// is o, and encoding that again gives the same bytes.
func TestOptionsRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		o := randOptions(r, true)
		b := mustEncode(t, o)
		got, err := dhcpv4.DecodeOptions(b)
		if err != nil {
			t.Fatalf("#%d: DecodeOptions(%x): %v", i, b, err)
		}
		if !reflect.DeepEqual(got, o) {
			t.Fatalf("#%d: round trip\n got %+v\nwant %+v\nbytes %x", i, got, o, b)
		}
		if again := mustEncode(t, got); !bytes.Equal(again, b) {
			t.Fatalf("#%d: re-encoded %x, want %x", i, again, b)
		}
	}
}

// TestOptionsReencode: with extras overriding typed options too, the
// decoded options encode back to the same bytes.
func TestOptionsReencode(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 5000 {
		b := mustEncode(t, randOptions(r, false))
		got, err := dhcpv4.DecodeOptions(b)
		if err != nil {
			t.Fatalf("#%d: DecodeOptions(%x): %v", i, b, err)
		}
		if again := mustEncode(t, got); !bytes.Equal(again, b) {
			t.Fatalf("#%d: re-encoded %x, want %x (decoded %+v)", i, again, b, got)
		}
	}
}

// TestEncodedSizes logs the size of typical option blobs (go test -v).
func TestEncodedSizes(t *testing.T) {
	typical := dhcpv4.Options{
		SubnetMask: netip.MustParsePrefix("10.0.0.0/24"), Router: a("10.0.0.1"),
		DNS: []netip.Addr{a("10.0.0.2")}, DomainName: "openstacklocal", MTU: 1442,
		Lease: 43200, ServerID: a("10.0.0.1"),
		Routes: []dhcpv4.Route{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: a("10.0.0.1")},
			{Dst: netip.MustParsePrefix("169.254.169.254/32"), Via: a("10.0.0.2")},
		},
	}
	for _, c := range []struct {
		name string
		o    dhcpv4.Options
	}{
		{"minimal (mask, router, lease, server id)", dhcpv4.Options{
			SubnetMask: netip.MustParsePrefix("10.0.0.0/24"), Router: a("10.0.0.1"), Lease: 43200, ServerID: a("10.0.0.1")}},
		{"typical Neutron port (+dns, domain, mtu, default+metadata routes)", typical},
		{"full golden set", fullOptions()},
		{"no router golden set", noRouterOptions()},
	} {
		t.Logf("%3d bytes: %s", len(mustEncode(t, c.o)), c.name)
	}
}
