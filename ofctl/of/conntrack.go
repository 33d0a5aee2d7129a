package of

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// VLANPresent is OFPVID_PRESENT: a VLAN id in FieldVLANVID, matched or
// set, carries it; a match on FieldVLANVID = 0 (no VLANPresent) is a
// frame with no 802.1Q header.
const VLANPresent = 0x1000

// PushVLAN pushes an 802.1Q header (TPID 0x8100) with VLAN id 0; a
// SetField of FieldVLANVID after it sets the id.
type PushVLAN struct{}

// PopVLAN removes the outermost 802.1Q header.
type PopVLAN struct{}

// Connection tracking states, as FieldCTState matches them.
const (
	CTNew  = 0x01
	CTEst  = 0x02
	CTRel  = 0x04
	CTRpl  = 0x08
	CTInv  = 0x10
	CTTrk  = 0x20
	CTSNAT = 0x40
	CTDNAT = 0x80
)

// NoRecirc is CT's Table when the packet is not recirculated.
const NoRecirc = 0xff

// NATKind is what a CT action's nat does.
type NATKind uint8

// NAT kinds.
const (
	NATNone    NATKind = iota // no nat()
	NATReverse                // nat: apply the connection's existing translation only
	NATSrc                    // nat(src=Addr[:Port])
	NATDst                    // nat(dst=Addr[:Port])
)

// NAT is the nat() of a CT action. A new connection gets the translation
// (with commit); a packet of an existing one gets the translation its
// connection was committed with, whatever this says.
type NAT struct {
	Kind NATKind
	Addr netip.Addr // IPv4
	Port uint16     // 0: keep the port
}

// CT sends the packet through the connection tracker: Open vSwitch's
// ct(commit,table=Table,zone=Zone,nat(...),exec(set_field:Mark->ct_mark)),
// which ovs-ofctl prints in that order, leaving out zone 0 and table
// NoRecirc. The packet's ct_state (and ct_mark) are then what the tracker
// says; with Table other than NoRecirc it is recirculated into that table,
// translated. The zero Table is table 0, not NoRecirc.
type CT struct {
	Commit bool
	Zone   uint16
	Table  uint8 // NoRecirc: none
	NAT    NAT
	// SetMark writes Mark (under MarkMask, all ones when zero) into the
	// connection's ct_mark; it needs Commit.
	SetMark  bool
	Mark     uint32
	MarkMask uint32
}

// Wire constants of the VLAN and conntrack actions (OpenFlow 1.5, and
// Open vSwitch's nx_action_conntrack and nx_action_nat).
const (
	ofpatPushVLAN = 17 // ofp_action_push: ethertype, pad[2]
	ofpatPopVLAN  = 18

	ethTypeVLAN = 0x8100

	nxastCT  = 35 // nx_action_conntrack, 24 bytes, then nested actions
	nxastNAT = 36 // nx_action_nat, 16 bytes, then the present range values

	nxCTFlagCommit = 1 << 0 // NX_CT_F_FORCE (1 << 1) is not supported

	nxNATFlagSrc        = 1 << 0
	nxNATFlagDst        = 1 << 1
	nxNATRangeIPv4Min   = 1 << 0
	nxNATRangeIPv4Max   = 1 << 1
	nxNATRangeProtoMin  = 1 << 4
	nxNATRangeProtoMax  = 1 << 5
	nxNATRangeSupported = nxNATRangeIPv4Min | nxNATRangeIPv4Max | nxNATRangeProtoMin | nxNATRangeProtoMax
)

// ctStateNames are ovs-ofctl's names of the ct_state bits, lowest first.
var ctStateNames = [8]string{"new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"}

// SetVLAN sets the VLAN id of the outermost 802.1Q tag (after PushVLAN,
// or on a tagged frame): set_field:VLANPresent|vid->vlan_vid.
func SetVLAN(vid uint16) SetField {
	return SetField{Field: FieldVLANVID, Value: VLANPresent | uint64(vid&0xfff)}
}

func (a PushVLAN) appendWire(b []byte) ([]byte, error) {
	b = put16(b, ofpatPushVLAN)
	b = put16(b, 8)
	b = put16(b, ethTypeVLAN)
	return append(b, 0, 0), nil
}

func (a PopVLAN) appendWire(b []byte) ([]byte, error) {
	b = put16(b, ofpatPopVLAN)
	b = put16(b, 8)
	return append(b, 0, 0, 0, 0), nil
}

func (a PushVLAN) format(b *strings.Builder, _ *Names) { b.WriteString("push_vlan:0x8100") }

func (a PopVLAN) format(b *strings.Builder, _ *Names) { b.WriteString("pop_vlan") }

// check rejects what Open vSwitch would refuse or would not give back as
// written: a translation or a mark without commit, an address that is not
// a usable IPv4 one, a port without an address, mark bits outside the mask.
func (a CT) check() error {
	switch a.NAT.Kind {
	case NATNone, NATReverse:
		if a.NAT.Addr.IsValid() || a.NAT.Port != 0 {
			return fmt.Errorf("ct: nat with an address needs NATSrc or NATDst")
		}
	case NATSrc, NATDst:
		if !a.Commit {
			return fmt.Errorf("ct: nat(src) or nat(dst) needs commit")
		}
		if a.NAT.Addr.IsValid() && (!a.NAT.Addr.Is4() || a.NAT.Addr.IsUnspecified()) {
			return fmt.Errorf("ct: nat address %s is not a usable IPv4 address", a.NAT.Addr)
		}
		if a.NAT.Port != 0 && !a.NAT.Addr.IsValid() {
			return fmt.Errorf("ct: nat port %d without an address", a.NAT.Port)
		}
	default:
		return fmt.Errorf("ct: unknown nat kind %d", a.NAT.Kind)
	}
	switch {
	case a.SetMark && !a.Commit:
		return fmt.Errorf("ct: setting ct_mark needs commit")
	case !a.SetMark && (a.Mark != 0 || a.MarkMask != 0):
		return fmt.Errorf("ct: Mark or MarkMask without SetMark")
	case a.Mark&^a.markMask() != 0:
		return fmt.Errorf("ct: mark 0x%x has bits outside its mask 0x%x", a.Mark, a.MarkMask)
	}
	return nil
}

func (a CT) markMask() uint32 {
	if a.MarkMask == 0 {
		return 0xffffffff
	}
	return a.MarkMask
}

func (a CT) appendWire(b []byte) ([]byte, error) {
	if err := a.check(); err != nil {
		return b, err
	}
	start := len(b)
	b = put16(b, ofpatExperimenter)
	b = put16(b, 0)
	b = put32(b, nxVendorID)
	b = put16(b, nxastCT)
	flags := uint16(0)
	if a.Commit {
		flags |= nxCTFlagCommit
	}
	b = put16(b, flags)
	b = put32(b, 0) // zone_src: none, the zone is immediate
	b = put16(b, a.Zone)
	b = append(b, a.Table, 0, 0, 0)
	b = put16(b, 0) // alg: none
	if a.NAT.Kind != NATNone {
		b = a.NAT.appendWire(b)
	}
	if a.SetMark {
		var err error
		mark := SetField{Field: FieldCTMark, Value: uint64(a.Mark), Mask: uint64(a.MarkMask)}
		if b, err = mark.appendWire(b); err != nil {
			return b, err
		}
	}
	setLen(b, start)
	return b, nil
}

// appendWire appends the NXAST_NAT a CT nests (checked by CT.check).
func (n NAT) appendWire(b []byte) []byte {
	start := len(b)
	b = put16(b, ofpatExperimenter)
	b = put16(b, 0)
	b = put32(b, nxVendorID)
	b = put16(b, nxastNAT)
	b = append(b, 0, 0)
	flags := uint16(0)
	switch n.Kind {
	case NATSrc:
		flags = nxNATFlagSrc
	case NATDst:
		flags = nxNATFlagDst
	}
	b = put16(b, flags)
	b = put16(b, 0) // range_present, below
	present := uint16(0)
	if n.Addr.IsValid() {
		a := n.Addr.As4()
		b = append(b, a[:]...)
		present |= nxNATRangeIPv4Min
		if n.Port != 0 {
			b = put16(b, n.Port)
			present |= nxNATRangeProtoMin
		}
	}
	b = pad8(b, start)
	binary.BigEndian.PutUint16(b[start+14:], present)
	setLen(b, start)
	return b
}

// decodeCT reads an nx_action_conntrack after its subtype. It accepts what
// CT can say: an immediate zone, no alg, no force, and nested actions of
// at most a nat followed by a set_field of ct_mark.
func decodeCT(body *reader) (Action, error) {
	flags := body.u16()
	zoneSrc := body.u32()
	zone := body.u16()
	table := body.u8()
	body.bytes(3)
	alg := body.u16()
	if body.err != nil {
		return nil, body.err
	}
	if flags&^nxCTFlagCommit != 0 {
		return nil, fmt.Errorf("openflow: ct flags 0x%x are not supported", flags)
	}
	if zoneSrc != 0 {
		return nil, fmt.Errorf("openflow: ct with a zone from a field is not supported")
	}
	if alg != 0 {
		return nil, fmt.Errorf("openflow: ct alg=%d is not supported", alg)
	}
	a := CT{Commit: flags&nxCTFlagCommit != 0, Zone: zone, Table: table}
	nested := body.b
	for len(nested) > 0 {
		r := reader{b: nested}
		typ := r.u16()
		n := int(r.u16())
		if r.err != nil || n < 8 || n > len(nested) || n%8 != 0 {
			return nil, fmt.Errorf("openflow: ct nested action length %d: %w", n, ErrTruncated)
		}
		one := reader{b: nested[4:n]}
		nested = nested[n:]
		switch {
		case typ == ofpatExperimenter && a.NAT.Kind == NATNone && !a.SetMark:
			vendor, sub := one.u32(), one.u16()
			if one.err != nil {
				return nil, one.err
			}
			if vendor != nxVendorID || sub != nxastNAT {
				return nil, fmt.Errorf("openflow: ct nests experimenter action 0x%08x/%d; only nat is supported", vendor, sub)
			}
			nat, err := decodeNAT(&one)
			if err != nil {
				return nil, err
			}
			a.NAT = nat
		case typ == ofpatSetField && !a.SetMark:
			m, _, err := decodeBareOXM(one.b)
			if err != nil {
				return nil, fmt.Errorf("openflow: ct exec set_field: %w", err)
			}
			c := m.conds[0]
			if c.Field != FieldCTMark {
				return nil, fmt.Errorf("openflow: ct exec sets %s; only ct_mark is supported", c.Field)
			}
			a.SetMark, a.Mark = true, uint32(c.Value)
			if c.Mask != c.Field.fullMask() {
				a.MarkMask = uint32(c.Mask)
			}
		default:
			return nil, fmt.Errorf("openflow: ct nests action type %d; only nat, then a set_field of ct_mark, are supported", typ)
		}
	}
	if err := a.check(); err != nil {
		return nil, fmt.Errorf("openflow: %w", err)
	}
	return a, nil
}

// decodeNAT reads an nx_action_nat after its subtype. A range of one
// address or one port (max equal to min, as ovs-ofctl's "10.0.0.5-10.0.0.5"
// gives) is that address or port; wider ranges, IPv6 and the persistent,
// hash and random flags are not supported.
func decodeNAT(body *reader) (NAT, error) {
	body.bytes(2)
	flags := body.u16()
	present := body.u16()
	if body.err != nil {
		return NAT{}, body.err
	}
	var n NAT
	switch flags {
	case 0:
		n.Kind = NATReverse
	case nxNATFlagSrc:
		n.Kind = NATSrc
	case nxNATFlagDst:
		n.Kind = NATDst
	default:
		return NAT{}, fmt.Errorf("openflow: nat flags 0x%x are not supported", flags)
	}
	if present&^nxNATRangeSupported != 0 {
		return NAT{}, fmt.Errorf("openflow: nat range 0x%x is not supported (IPv6?)", present)
	}
	if present != 0 && n.Kind == NATReverse {
		return NAT{}, fmt.Errorf("openflow: nat range without src or dst")
	}
	if present&nxNATRangeIPv4Min == 0 && present != 0 {
		return NAT{}, fmt.Errorf("openflow: nat range 0x%x without an IPv4 address", present)
	}
	if present&nxNATRangeIPv4Min != 0 {
		lo := body.u32()
		hi := lo
		if present&nxNATRangeIPv4Max != 0 {
			hi = body.u32()
		}
		if body.err != nil {
			return NAT{}, body.err
		}
		if lo == 0 || hi != lo {
			return NAT{}, fmt.Errorf("openflow: nat address range %s-%s is not supported", IPv4FromValue(uint64(lo)), IPv4FromValue(uint64(hi)))
		}
		n.Addr = IPv4FromValue(uint64(lo))
	}
	if present&nxNATRangeProtoMax != 0 && present&nxNATRangeProtoMin == 0 {
		return NAT{}, fmt.Errorf("openflow: nat port range without a minimum")
	}
	if present&nxNATRangeProtoMin != 0 {
		lo := body.u16()
		hi := lo
		if present&nxNATRangeProtoMax != 0 {
			hi = body.u16()
		}
		if body.err != nil {
			return NAT{}, body.err
		}
		if lo == 0 || hi != lo {
			return NAT{}, fmt.Errorf("openflow: nat port range %d-%d is not supported", lo, hi)
		}
		n.Port = lo
	}
	return n, nil
}

// format prints like OVS's format_CT: commit, table, zone, nat, exec.
func (a CT) format(b *strings.Builder, n *Names) {
	b.WriteString("ct(")
	start := b.Len()
	sep := func() {
		if b.Len() > start {
			b.WriteByte(',')
		}
	}
	if a.Commit {
		b.WriteString("commit")
	}
	if a.Table != NoRecirc {
		sep()
		b.WriteString("table=")
		n.formatTable(b, a.Table)
	}
	if a.Zone != 0 {
		sep()
		b.WriteString("zone=" + strconv.Itoa(int(a.Zone)))
	}
	if a.NAT.Kind != NATNone {
		sep()
		a.NAT.format(b)
	}
	if a.SetMark {
		sep()
		b.WriteString("exec(")
		SetField{Field: FieldCTMark, Value: uint64(a.Mark), Mask: uint64(a.MarkMask)}.format(b, n)
		b.WriteByte(')')
	}
	b.WriteByte(')')
}

// format prints like OVS's format_NAT.
func (n NAT) format(b *strings.Builder) {
	b.WriteString("nat")
	if n.Kind != NATSrc && n.Kind != NATDst {
		return
	}
	if n.Kind == NATSrc {
		b.WriteString("(src")
	} else {
		b.WriteString("(dst")
	}
	if n.Addr.IsValid() {
		b.WriteByte('=')
		b.WriteString(n.Addr.String())
		if n.Port != 0 {
			b.WriteString(":" + strconv.Itoa(int(n.Port)))
		}
	}
	b.WriteByte(')')
}

// writeCTState prints a ct_state match like OVS's match_format: flags
// joined by '|' when all eight bits are matched, else +flag-flag.
func writeCTState(b *strings.Builder, value, mask uint64) {
	if mask == FieldCTState.fullMask() {
		if value == 0 {
			b.WriteByte('0')
			return
		}
		first := true
		for i, name := range ctStateNames {
			if value&(1<<i) != 0 {
				if !first {
					b.WriteByte('|')
				}
				b.WriteString(name)
				first = false
			}
		}
		return
	}
	for i, name := range ctStateNames {
		if mask&(1<<i) != 0 {
			if value&(1<<i) != 0 {
				b.WriteByte('+')
			} else {
				b.WriteByte('-')
			}
			b.WriteString(name)
		}
	}
}

// writeVLAN prints a vlan_vid match like OVS's match_format does the TCI
// it becomes: dl_vlan=VID for a whole VID with VLANPresent, else
// vlan_tci=0x..../0x.... .
func writeVLAN(b *strings.Builder, value, mask uint64) {
	if mask&VLANPresent != 0 && value&VLANPresent != 0 && mask&0xfff == 0xfff {
		b.WriteString("dl_vlan=" + strconv.FormatUint(value&0xfff, 10))
		return
	}
	fmt.Fprintf(b, "vlan_tci=0x%04x/0x%04x", value, mask)
}
