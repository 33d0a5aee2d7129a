package dhcpv4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Route is one classless static route (RFC 3442).
type Route struct {
	Dst netip.Prefix // IPv4, host bits clear
	Via netip.Addr   // IPv4; 0.0.0.0 for an on-link destination
}

// RawOption is an option given as bytes, such as a Neutron
// extra_dhcp_opts entry.
type RawOption struct {
	Code  byte
	Value []byte
}

// Options are the options a port's replies carry, encoded once with
// Encode. A zero field is left out.
type Options struct {
	// SubnetMask is option 1, the mask of its Bits; only the bits are
	// encoded, so DecodeOptions returns them on 0.0.0.0.
	SubnetMask netip.Prefix
	Router     netip.Addr   // option 3
	DNS        []netip.Addr // option 6
	DomainName string       // option 15
	MTU        uint16       // option 26; 68 or more
	// Lease is option 51 in seconds, with T1 (58) = Lease/2 and T2 (59)
	// = Lease*7/8; 0xffffffff is an infinite lease, sent without T1 and
	// T2.
	Lease    uint32
	ServerID netip.Addr // option 54; Reply needs it
	// Routes is option 121 (RFC 3442), destinations in their significant
	// octets only. A client that gets option 121 ignores option 3, so
	// the caller adds the default route (0.0.0.0/0 via Router) itself.
	Routes []Route
	// Extra are further options. One with the code of an option above
	// replaces it (T1 and T2 included); codes must be distinct and not
	// 0, 52, 53 or 255.
	Extra []RawOption
}

// maxOption is the longest option value; longer ones would need RFC 3396
// splitting, which this package does not do when encoding.
const maxOption = 255

// Encode returns the options as type-length-value triples in option code
// order, without message type and end: the bytes Reply takes. It fails
// on a value that cannot be encoded (not IPv4, longer than 255 bytes, an
// MTU below 68, a route with host bits, a repeated or reserved Extra
// code). The same Options always give the same bytes.
func (o Options) Encode() ([]byte, error) {
	var vals [256][]byte
	var set [256]bool
	put := func(code byte, v []byte) { vals[code], set[code] = v, true }

	if o.SubnetMask.IsValid() {
		if !o.SubnetMask.Addr().Is4() {
			return nil, fmt.Errorf("%w: subnet mask %v: not IPv4", ErrInvalidOption, o.SubnetMask)
		}
		put(optSubnetMask, binary.BigEndian.AppendUint32(nil, maskOf(o.SubnetMask.Bits())))
	}
	if o.Router.IsValid() {
		v, err := addrBytes("router", o.Router)
		if err != nil {
			return nil, err
		}
		put(optRouter, v)
	}
	if len(o.DNS) > 0 {
		var v []byte
		for _, a := range o.DNS {
			b, err := addrBytes("DNS server", a)
			if err != nil {
				return nil, err
			}
			v = append(v, b...)
		}
		put(optDNS, v)
	}
	if o.DomainName != "" {
		put(optDomainName, []byte(o.DomainName))
	}
	if o.MTU != 0 {
		if o.MTU < 68 {
			return nil, fmt.Errorf("%w: MTU %d below 68", ErrInvalidOption, o.MTU)
		}
		put(optMTU, binary.BigEndian.AppendUint16(nil, o.MTU))
	}
	if o.Lease != 0 {
		put(optLease, binary.BigEndian.AppendUint32(nil, o.Lease))
		if o.Lease != infiniteLease {
			t1, t2 := renewalTimes(o.Lease)
			put(optT1, binary.BigEndian.AppendUint32(nil, t1))
			put(optT2, binary.BigEndian.AppendUint32(nil, t2))
		}
	}
	if o.ServerID.IsValid() {
		v, err := addrBytes("server id", o.ServerID)
		if err != nil {
			return nil, err
		}
		put(optServerID, v)
	}
	if len(o.Routes) > 0 {
		v, err := encodeRoutes(o.Routes)
		if err != nil {
			return nil, err
		}
		put(optClasslessRoutes, v)
	}
	var extra [256]bool
	for _, x := range o.Extra {
		switch x.Code {
		case optPad, optOverload, optMessageType, optEnd:
			return nil, fmt.Errorf("%w: extra option %d is reserved", ErrInvalidOption, x.Code)
		}
		if extra[x.Code] {
			return nil, fmt.Errorf("%w: extra option %d given twice", ErrInvalidOption, x.Code)
		}
		extra[x.Code] = true
		put(x.Code, x.Value)
	}

	var out []byte
	for code := range 256 {
		if !set[code] {
			continue
		}
		if len(vals[code]) > maxOption {
			return nil, fmt.Errorf("%w: option %d is %d bytes, over %d", ErrInvalidOption, code, len(vals[code]), maxOption)
		}
		out = append(out, byte(code), byte(len(vals[code])))
		out = append(out, vals[code]...)
	}
	return out, nil
}

const infiniteLease = 0xffffffff

// renewalTimes returns T1 and T2 for a lease (RFC 2131 §4.4.5).
func renewalTimes(lease uint32) (t1, t2 uint32) {
	return lease / 2, uint32(uint64(lease) * 7 / 8)
}

func maskOf(bits int) uint32 {
	if bits == 0 {
		return 0
	}
	return ^uint32(0) << (32 - bits)
}

func addrBytes(what string, a netip.Addr) ([]byte, error) {
	if !a.Is4() {
		return nil, fmt.Errorf("%w: %s %v: not IPv4", ErrInvalidOption, what, a)
	}
	b := a.As4()
	return b[:], nil
}

// encodeRoutes encodes RFC 3442 routes: width, significant octets, router.
func encodeRoutes(routes []Route) ([]byte, error) {
	var v []byte
	for _, r := range routes {
		if !r.Dst.Addr().Is4() || !r.Via.Is4() {
			return nil, fmt.Errorf("%w: route %v via %v: not IPv4", ErrInvalidOption, r.Dst, r.Via)
		}
		if r.Dst.Masked() != r.Dst {
			return nil, fmt.Errorf("%w: route %v: host bits set", ErrInvalidOption, r.Dst)
		}
		dst, via := r.Dst.Addr().As4(), r.Via.As4()
		v = append(v, byte(r.Dst.Bits()))
		v = append(v, dst[:(r.Dst.Bits()+7)/8]...)
		v = append(v, via[:]...)
	}
	return v, nil
}

// DecodeOptions is the inverse of Options.Encode: it accepts exactly the
// bytes Encode can produce (TLVs in ascending code order, each code once,
// no pad, end, 52 or 53) and returns Options that encode back to the same
// bytes. An option whose value a typed field cannot reproduce byte for
// byte (a non-contiguous mask, T1 not Lease/2, a 3-byte router) is
// returned in Extra, in code order.
func DecodeOptions(b []byte) (Options, error) {
	var o Options
	last := -1
	for i := 0; i < len(b); {
		code := b[i]
		switch code {
		case optPad, optOverload, optMessageType, optEnd:
			return Options{}, fmt.Errorf("%w: option %d at offset %d", ErrInvalidOption, code, i)
		}
		if int(code) <= last {
			return Options{}, fmt.Errorf("%w: option %d after option %d", ErrInvalidOption, code, last)
		}
		last = int(code)
		if i+2 > len(b) || i+2+int(b[i+1]) > len(b) {
			return Options{}, fmt.Errorf("%w: option %d", ErrTruncated, code)
		}
		v := b[i+2 : i+2+int(b[i+1])]
		i += 2 + len(v)
		if !o.decodeTyped(code, v) {
			o.Extra = append(o.Extra, RawOption{Code: code, Value: clone(v)})
		}
	}
	// T1 and T2 are left out (implied) when they are the ones Lease
	// gives; Encode always sends both with a finite lease.
	if o.Lease != 0 && o.Lease != infiniteLease {
		t1, t2 := renewalTimes(o.Lease)
		implied := [256][]byte{
			optT1: binary.BigEndian.AppendUint32(nil, t1),
			optT2: binary.BigEndian.AppendUint32(nil, t2),
		}
		var have [256]bool
		var rest []RawOption
		for _, x := range o.Extra {
			have[x.Code] = true
			if implied[x.Code] != nil && bytes.Equal(x.Value, implied[x.Code]) {
				continue
			}
			rest = append(rest, x)
		}
		if !have[optT1] || !have[optT2] {
			return Options{}, fmt.Errorf("%w: lease without T1 and T2", ErrInvalidOption)
		}
		o.Extra = rest
	}
	return o, nil
}

// decodeTyped sets the field for code from v when re-encoding the field
// gives v exactly, and reports whether it did.
func (o *Options) decodeTyped(code byte, v []byte) bool {
	switch code {
	case optSubnetMask:
		if len(v) != 4 {
			return false
		}
		m := binary.BigEndian.Uint32(v)
		bits := 32 - trailingZeros(m)
		if maskOf(bits) != m {
			return false
		}
		o.SubnetMask = netip.PrefixFrom(netip.IPv4Unspecified(), bits)
	case optRouter:
		if len(v) != 4 {
			return false
		}
		o.Router = netip.AddrFrom4([4]byte(v))
	case optDNS:
		if len(v) == 0 || len(v)%4 != 0 {
			return false
		}
		for i := 0; i < len(v); i += 4 {
			o.DNS = append(o.DNS, netip.AddrFrom4([4]byte(v[i:i+4])))
		}
	case optDomainName:
		if len(v) == 0 {
			return false
		}
		o.DomainName = string(v)
	case optMTU:
		if len(v) != 2 || binary.BigEndian.Uint16(v) < 68 {
			return false
		}
		o.MTU = binary.BigEndian.Uint16(v)
	case optLease:
		if len(v) != 4 || binary.BigEndian.Uint32(v) == 0 {
			return false
		}
		o.Lease = binary.BigEndian.Uint32(v)
	case optServerID:
		if len(v) != 4 {
			return false
		}
		o.ServerID = netip.AddrFrom4([4]byte(v))
	case optClasslessRoutes:
		routes, ok := decodeRoutes(v)
		if !ok {
			return false
		}
		o.Routes = routes
	default:
		return false
	}
	return true
}

// decodeRoutes decodes RFC 3442 routes; it refuses an empty list and
// destinations with bits set beyond their width, which Encode never
// produces.
func decodeRoutes(v []byte) ([]Route, bool) {
	if len(v) == 0 {
		return nil, false
	}
	var routes []Route
	for len(v) > 0 {
		bits := int(v[0])
		if bits > 32 {
			return nil, false
		}
		n := (bits + 7) / 8
		if len(v) < 1+n+4 {
			return nil, false
		}
		var dst [4]byte
		copy(dst[:], v[1:1+n])
		p := netip.PrefixFrom(netip.AddrFrom4(dst), bits)
		if p.Masked() != p {
			return nil, false
		}
		routes = append(routes, Route{Dst: p, Via: netip.AddrFrom4([4]byte(v[1+n : 1+n+4]))})
		v = v[1+n+4:]
	}
	return routes, true
}

func trailingZeros(m uint32) int {
	n := 0
	for n < 32 && m&(1<<n) == 0 {
		n++
	}
	return n
}

// scanOptions calls f for each TLV of b, which must hold nothing else.
func scanOptions(b []byte, f func(code byte, v []byte)) error {
	for i := 0; i < len(b); {
		code := b[i]
		if code == optPad || code == optEnd || code == optMessageType || code == optOverload {
			return fmt.Errorf("%w: option %d in encoded options", ErrInvalidOption, code)
		}
		if i+2 > len(b) || i+2+int(b[i+1]) > len(b) {
			return fmt.Errorf("%w: encoded option %d", ErrTruncated, code)
		}
		f(code, b[i+2:i+2+int(b[i+1])])
		i += 2 + int(b[i+1])
	}
	return nil
}
