package dnsmsg

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

const (
	maxLabelLen = 63
	maxNameLen  = 255 // in wire form, length octets and the root included
)

// readName reads the possibly compressed name at off in msg and returns
// it uncompressed in wire form (letter case kept, ending with the root
// label) and the offset just past it. Every compression pointer must
// point before the start of the labels that led to it, so pointers only
// go backwards and cannot loop; one that does not, or points past the
// message, is an error, as is a name longer than 255 bytes.
func readName(msg []byte, off int) (wire []byte, end int, err error) {
	end = -1
	limit := off // a pointer must land before this
	for {
		if off >= len(msg) {
			return nil, 0, fmt.Errorf("%w: truncated name", ErrMalformed)
		}
		c := int(msg[off])
		switch c & 0xc0 {
		case 0x00:
			if len(wire)+1+c > maxNameLen {
				return nil, 0, fmt.Errorf("%w: name longer than %d bytes", ErrMalformed, maxNameLen)
			}
			if c == 0 {
				wire = append(wire, 0)
				if end < 0 {
					end = off + 1
				}
				return wire, end, nil
			}
			if off+1+c > len(msg) {
				return nil, 0, fmt.Errorf("%w: truncated label", ErrMalformed)
			}
			wire = append(wire, msg[off:off+1+c]...)
			off += 1 + c
		case 0xc0:
			if off+2 > len(msg) {
				return nil, 0, fmt.Errorf("%w: truncated compression pointer", ErrMalformed)
			}
			target := (c&0x3f)<<8 | int(msg[off+1])
			if target >= len(msg) {
				return nil, 0, fmt.Errorf("%w: compression pointer to %d, past the %d-byte message", ErrMalformed, target, len(msg))
			}
			if target >= limit {
				return nil, 0, fmt.Errorf("%w: compression pointer at %d to %d does not point backwards (loop or forward reference)", ErrMalformed, off, target)
			}
			if end < 0 {
				end = off + 2
			}
			off, limit = target, target
		default:
			return nil, 0, fmt.Errorf("%w: label type %#02x", ErrMalformed, c&0xc0)
		}
	}
}

// dotted turns a wire-form name into Question.Name form: lower-cased,
// labels joined by dots, no trailing dot. A label holding a dot, a
// backslash or a byte outside printable ASCII cannot be written that way
// without ambiguity and is refused.
func dotted(wire []byte) (string, error) {
	var b strings.Builder
	for i := 0; wire[i] != 0; {
		n := int(wire[i])
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		for _, c := range wire[i+1 : i+1+n] {
			switch {
			case c == '.' || c == '\\' || c <= ' ' || c > '~':
				return "", fmt.Errorf("%w: label %q", ErrUnsupported, wire[i+1:i+1+n])
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			}
			b.WriteByte(c)
		}
		i += 1 + n
	}
	return b.String(), nil
}

// appendName appends name (dotted, with or without the trailing dot;
// "" or "." is the root) to b in uncompressed wire form.
func appendName(b []byte, name string) ([]byte, error) {
	name = strings.TrimSuffix(name, ".")
	n := 1
	if name != "" {
		for _, l := range strings.Split(name, ".") {
			if l == "" || len(l) > maxLabelLen {
				return nil, fmt.Errorf("%w: name %q has a label of %d bytes", ErrBadAnswer, name, len(l))
			}
			for i := 0; i < len(l); i++ {
				if c := l[i]; c == '\\' || c <= ' ' || c > '~' {
					return nil, fmt.Errorf("%w: name %q has byte %#02x", ErrBadAnswer, name, c)
				}
			}
			n += 1 + len(l)
			b = append(b, byte(len(l)))
			b = append(b, l...)
		}
	}
	if n > maxNameLen {
		return nil, fmt.Errorf("%w: name %q is longer than %d bytes", ErrBadAnswer, name, maxNameLen)
	}
	return append(b, 0), nil
}

// ReverseName is the PTR owner name of ip: "5.0.0.10.in-addr.arpa" for
// 10.0.0.5, 32 nibble labels under ip6.arpa for IPv6 (an IPv4-mapped
// IPv6 address is reversed as IPv6). An invalid or zoned address gives "".
func ReverseName(ip netip.Addr) string {
	if !ip.IsValid() || ip.Zone() != "" {
		return ""
	}
	var b strings.Builder
	if ip.Is4() {
		a := ip.As4()
		for i := 3; i >= 0; i-- {
			b.WriteString(strconv.Itoa(int(a[i])))
			b.WriteByte('.')
		}
		b.WriteString("in-addr.arpa")
		return b.String()
	}
	const hex = "0123456789abcdef"
	a := ip.As16()
	for i := 15; i >= 0; i-- {
		b.WriteByte(hex[a[i]&0xf])
		b.WriteByte('.')
		b.WriteByte(hex[a[i]>>4])
		b.WriteByte('.')
	}
	b.WriteString("ip6.arpa")
	return b.String()
}

// ParseReverse is the inverse of ReverseName: the address a PTR name
// under in-addr.arpa (four decimal labels, no leading zeros) or ip6.arpa
// (32 nibble labels) stands for. Case is ignored and a trailing dot
// allowed; anything else, including a partial name such as
// "0.10.in-addr.arpa", gives false.
func ParseReverse(name string) (netip.Addr, bool) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		labels := strings.Split(rest, ".")
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var a [4]byte
		for i, l := range labels {
			if l == "" || len(l) > 3 || (len(l) > 1 && l[0] == '0') {
				return netip.Addr{}, false
			}
			v, err := strconv.ParseUint(l, 10, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			a[3-i] = byte(v)
		}
		return netip.AddrFrom4(a), true
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		if len(rest) != 63 {
			return netip.Addr{}, false
		}
		var a [16]byte
		for i := 0; i < 32; i++ {
			if i > 0 && rest[2*i-1] != '.' {
				return netip.Addr{}, false
			}
			v, err := strconv.ParseUint(rest[2*i:2*i+1], 16, 8)
			if err != nil {
				return netip.Addr{}, false
			}
			// Label i is nibble i counted from the low end.
			a[15-i/2] |= byte(v) << (4 * (i % 2))
		}
		return netip.AddrFrom16(a), true
	}
	return netip.Addr{}, false
}
