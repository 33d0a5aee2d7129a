package of

import (
	"encoding/hex"
	"sort"
	"strconv"
	"strings"
)

// Names resolves port and table numbers to the names ovs-ofctl --names
// prints. Nil maps print numbers.
type Names struct {
	Ports  map[uint32]string
	Tables map[uint8]string
}

func (n *Names) table(id uint8) (string, bool) {
	if n == nil || n.Tables == nil {
		return "", false
	}
	s, ok := n.Tables[id]
	return s, ok
}

func (n *Names) formatTable(b *strings.Builder, id uint8) {
	if s, ok := n.table(id); ok {
		b.WriteString(s)
		return
	}
	b.WriteString(strconv.Itoa(int(id)))
}

func (n *Names) formatPort(b *strings.Builder, port uint32) {
	if s, ok := reservedPortNames[port]; ok {
		b.WriteString(s)
		return
	}
	if n != nil && n.Ports != nil {
		if s, ok := n.Ports[port]; ok {
			b.WriteString(s)
			return
		}
	}
	b.WriteString(strconv.FormatUint(uint64(port), 10))
}

// String renders the flow as ovs-ofctl prints it, with table and port
// numbers (Format names them).
func (f Flow) String() string { return f.Format(nil) }

// Format renders the flow exactly as
// `ovs-ofctl -O OpenFlow15 dump-flows --no-stats --names` prints it (without
// the leading space), so one golden file checks both the model and a switch.
func (f Flow) Format(n *Names) string {
	var b strings.Builder
	b.Grow(128)
	if f.Cookie != 0 {
		b.WriteString("cookie=")
		writeHex(&b, uint64(f.Cookie))
		b.WriteString(", ")
	}
	if _, named := n.table(f.Table); f.Table != 0 || named {
		b.WriteString("table=")
		n.formatTable(&b, f.Table)
		b.WriteString(", ")
	}
	if f.IdleTimeout != 0 {
		b.WriteString("idle_timeout=")
		b.WriteString(strconv.Itoa(int(f.IdleTimeout)))
		b.WriteString(", ")
	}
	if f.HardTimeout != 0 {
		b.WriteString("hard_timeout=")
		b.WriteString(strconv.Itoa(int(f.HardTimeout)))
		b.WriteString(", ")
	}
	formatMatch(&b, f.Match, f.Priority, n)
	if s := b.String(); len(s) > 0 && s[len(s)-1] != ' ' {
		b.WriteByte(' ')
	}
	b.WriteString("actions=")
	if len(f.Actions) == 0 {
		b.WriteString("drop")
	}
	for i, a := range f.Actions {
		if i > 0 {
			b.WriteByte(',')
		}
		a.format(&b, n)
	}
	return b.String()
}

// writeHex prints like C's "%#x": 0 as "0", else 0x-prefixed.
func writeHex(b *strings.Builder, v uint64) {
	if v == 0 {
		b.WriteByte('0')
		return
	}
	b.WriteString("0x")
	b.WriteString(strconv.FormatUint(v, 16))
}

func writeMAC(b *strings.Builder, v uint64) {
	const digits = "0123456789abcdef"
	for i := 5; i >= 0; i-- {
		x := byte(v >> (8 * uint(i)))
		b.WriteByte(digits[x>>4])
		b.WriteByte(digits[x&15])
		if i > 0 {
			b.WriteByte(':')
		}
	}
}

func writeIPv4(b *strings.Builder, v uint64) {
	for i := 3; i >= 0; i-- {
		b.WriteString(strconv.Itoa(int(byte(v >> (8 * uint(i))))))
		if i > 0 {
			b.WriteByte('.')
		}
	}
}

// writeIPv4Masked prints like OVS's ip_format_masked: CIDR when the mask is
// a prefix, else ip/mask.
func writeIPv4Masked(b *strings.Builder, v, mask uint64) {
	writeIPv4(b, v)
	if mask == 0xffffffff {
		return
	}
	b.WriteByte('/')
	ones := 0
	for m := uint32(mask); m&0x80000000 != 0; m <<= 1 {
		ones++
	}
	if uint64(uint32(0xffffffff)<<(32-ones)) == mask || (ones == 0 && mask == 0) {
		b.WriteString(strconv.Itoa(ones))
		return
	}
	writeIPv4(b, mask)
}

// writeValue prints a set_field value the way OVS's mf_format does.
func writeValue(b *strings.Builder, f FieldID, v, mask uint64, n *Names) {
	full := mask == f.fullMask()
	switch fields[f].kind {
	case kindMAC:
		writeMAC(b, v)
		if !full {
			b.WriteByte('/')
			writeMAC(b, mask)
		}
	case kindIPv4:
		writeIPv4Masked(b, v, mask)
	case kindDecimal:
		b.WriteString(strconv.FormatUint(v, 10))
		if !full {
			b.WriteByte('/')
			writeHex(b, mask)
		}
	case kindPort:
		n.formatPort(b, uint32(v))
	default:
		writeHex(b, v)
		if !full {
			b.WriteByte('/')
			writeHex(b, mask)
		}
	}
}

// formatMatch follows OVS's match_format: priority, conntrack, protocol
// shorthand, registers, tunnel, metadata, in_port, VLAN, Ethernet, L3, L4,
// in that order.
func formatMatch(b *strings.Builder, m Match, priority uint16, n *Names) {
	start := b.Len()
	if priority != 32768 {
		b.WriteString("priority=")
		b.WriteString(strconv.Itoa(int(priority)))
		b.WriteByte(',')
	}
	get := func(f FieldID) (Cond, bool) { return m.Get(f) }
	if c, ok := get(FieldConjID); ok {
		b.WriteString("conj_id=" + strconv.FormatUint(c.Value, 10) + ",")
	}
	if c, ok := get(FieldCTState); ok {
		b.WriteString("ct_state=")
		writeCTState(b, c.Value, c.Mask)
		b.WriteByte(',')
	}
	if c, ok := get(FieldCTZone); ok {
		// format_uint16_masked: decimal when exact, else %x/%x.
		b.WriteString("ct_zone=")
		if c.Mask == FieldCTZone.fullMask() {
			b.WriteString(strconv.FormatUint(c.Value, 10))
		} else {
			b.WriteString("0x" + strconv.FormatUint(c.Value, 16) + "/0x" + strconv.FormatUint(c.Mask, 16))
		}
		b.WriteByte(',')
	}
	if c, ok := get(FieldCTMark); ok {
		b.WriteString("ct_mark=")
		writeHex(b, c.Value)
		if c.Mask != FieldCTMark.fullMask() {
			b.WriteByte('/')
			writeHex(b, c.Mask)
		}
		b.WriteByte(',')
	}
	et, hasType := get(FieldEthType)
	proto, hasProto := get(FieldIPProto)
	skipType, skipProto := false, false
	if hasType {
		skipType = true
		switch et.Value {
		case EthTypeIPv4:
			name := "ip"
			if hasProto {
				switch proto.Value {
				case IPProtoICMP:
					name = "icmp"
				case IPProtoTCP:
					name = "tcp"
				case IPProtoUDP:
					name = "udp"
				case IPProtoSCTP:
					name = "sctp"
				}
				skipProto = name != "ip"
			}
			b.WriteString(name)
			b.WriteByte(',')
		case EthTypeARP:
			b.WriteString("arp,")
		case EthTypeIPv6:
			b.WriteString("ipv6,")
		default:
			skipType = false
		}
	}
	hexField := func(name string, f FieldID) {
		if c, ok := get(f); ok {
			b.WriteString(name)
			b.WriteByte('=')
			writeHex(b, c.Value)
			if c.Mask != f.fullMask() {
				b.WriteByte('/')
				writeHex(b, c.Mask)
			}
			b.WriteByte(',')
		}
	}
	ipField := func(name string, f FieldID) {
		if c, ok := get(f); ok {
			b.WriteString(name)
			b.WriteByte('=')
			writeIPv4Masked(b, c.Value, c.Mask)
			b.WriteByte(',')
		}
	}
	macField := func(name string, f FieldID) {
		if c, ok := get(f); ok {
			b.WriteString(name)
			b.WriteByte('=')
			writeMAC(b, c.Value)
			if c.Mask != f.fullMask() {
				b.WriteByte('/')
				writeMAC(b, c.Mask)
			}
			b.WriteByte(',')
		}
	}
	// be16 fields print decimal when exact, else 0x../0x.. (format_be16_masked).
	be16Field := func(name string, f FieldID) {
		if c, ok := get(f); ok {
			b.WriteString(name)
			b.WriteByte('=')
			if c.Mask == f.fullMask() {
				b.WriteString(strconv.FormatUint(c.Value, 10))
			} else {
				b.WriteString("0x" + strconv.FormatUint(c.Value, 16) + "/0x" + strconv.FormatUint(c.Mask, 16))
			}
			b.WriteByte(',')
		}
	}
	for r := FieldReg0; r <= FieldReg7; r++ {
		hexField(fields[r].name, r)
	}
	hexField("tun_id", FieldTunID)
	ipField("tun_src", FieldTunSrc)
	ipField("tun_dst", FieldTunDst)
	hexField("metadata", FieldMetadata)
	if c, ok := get(FieldInPort); ok {
		b.WriteString("in_port=")
		n.formatPort(b, uint32(c.Value))
		b.WriteByte(',')
	}
	if c, ok := get(FieldVLANVID); ok {
		writeVLAN(b, c.Value, c.Mask)
		b.WriteByte(',')
	}
	macField("dl_src", FieldEthSrc)
	macField("dl_dst", FieldEthDst)
	if hasType && !skipType {
		b.WriteString("dl_type=0x")
		h := strconv.FormatUint(et.Value, 16)
		b.WriteString(strings.Repeat("0", 4-len(h)) + h)
		b.WriteByte(',')
	}
	isARP := hasType && et.Value == EthTypeARP
	if isARP {
		ipField("arp_spa", FieldARPSPA)
		ipField("arp_tpa", FieldARPTPA)
	} else {
		ipField("nw_src", FieldIPv4Src)
		ipField("nw_dst", FieldIPv4Dst)
	}
	if c, ok := get(FieldARPOp); ok {
		b.WriteString("arp_op=" + strconv.FormatUint(c.Value, 10) + ",")
	}
	if hasProto && !skipProto {
		b.WriteString("nw_proto=" + strconv.FormatUint(proto.Value, 10) + ",")
	}
	if isARP {
		macField("arp_sha", FieldARPSHA)
		macField("arp_tha", FieldARPTHA)
	}
	if c, ok := get(FieldIPTTL); ok {
		b.WriteString("nw_ttl=" + strconv.FormatUint(c.Value, 10) + ",")
	}
	if hasProto && proto.Value == IPProtoICMP {
		be16Field("icmp_type", FieldICMPType)
		be16Field("icmp_code", FieldICMPCode)
	} else {
		be16Field("tp_src", FieldTCPSrc)
		be16Field("tp_dst", FieldTCPDst)
		be16Field("tp_src", FieldUDPSrc)
		be16Field("tp_dst", FieldUDPDst)
	}
	if b.Len() > start {
		s := b.String()
		if s[len(s)-1] == ',' {
			// strings.Builder cannot shrink; rebuild without the comma.
			t := s[:len(s)-1]
			b.Reset()
			b.WriteString(t)
		}
	}
}

func (a Output) format(b *strings.Builder, n *Names) {
	if a.Port < PortMax {
		b.WriteString("output:")
	}
	n.formatPort(b, a.Port)
	if a.Port == PortController {
		b.WriteString(":65535")
	}
}

func (a Punt) format(b *strings.Builder, _ *Names) {
	if a.UserData == "" && a.MeterID == 0 {
		b.WriteString("CONTROLLER:65535")
		return
	}
	b.WriteString("controller(")
	var parts []string
	if a.UserData != "" {
		h := hex.EncodeToString([]byte(a.UserData))
		var dotted []string
		for i := 0; i < len(h); i += 2 {
			dotted = append(dotted, h[i:i+2])
		}
		parts = append(parts, "userdata="+strings.Join(dotted, "."))
	}
	if a.MeterID != 0 {
		parts = append(parts, "meter_id="+strconv.FormatUint(uint64(a.MeterID), 10))
	}
	b.WriteString(strings.Join(parts, ","))
	b.WriteByte(')')
}

func (a GotoTable) format(b *strings.Builder, n *Names) {
	b.WriteString("goto_table:")
	n.formatTable(b, a.Table)
}

func (a Resubmit) format(b *strings.Builder, n *Names) {
	b.WriteString("resubmit(,")
	n.formatTable(b, a.Table)
	b.WriteByte(')')
}

func (a SetField) format(b *strings.Builder, n *Names) {
	b.WriteString("set_field:")
	mask := a.mask()
	writeValue(b, a.Field, a.Value&mask, mask, n)
	b.WriteString("->")
	b.WriteString(fields[a.Field].name)
}

func (a WriteMetadata) format(b *strings.Builder, _ *Names) {
	b.WriteString("write_metadata:")
	mask := a.mask()
	writeHex(b, a.Value&mask)
	if mask != ^uint64(0) {
		b.WriteByte('/')
		writeHex(b, mask)
	}
}

func (a DecTTL) format(b *strings.Builder, _ *Names) { b.WriteString("dec_ttl") }

func writeSubfield(b *strings.Builder, f FieldID, ofs, bits uint8) {
	b.WriteString(fields[f].nxmName)
	switch {
	case ofs == 0 && bits == f.Bits():
		b.WriteString("[]")
	case bits == 1:
		b.WriteString("[" + strconv.Itoa(int(ofs)) + "]")
	default:
		b.WriteString("[" + strconv.Itoa(int(ofs)) + ".." + strconv.Itoa(int(ofs)+int(bits)-1) + "]")
	}
}

func (a Move) format(b *strings.Builder, _ *Names) {
	n := a.bits()
	b.WriteString("move:")
	writeSubfield(b, a.Src, a.SrcOfs, n)
	b.WriteString("->")
	writeSubfield(b, a.Dst, a.DstOfs, n)
}

func (a CheckPktLarger) format(b *strings.Builder, _ *Names) {
	b.WriteString("check_pkt_larger(" + strconv.Itoa(int(a.Len)) + ")->")
	writeSubfield(b, a.Dst, a.Ofs, 1)
}

func (a Conjunction) format(b *strings.Builder, _ *Names) {
	b.WriteString("conjunction(" + strconv.FormatUint(uint64(a.ID), 10) + "," + strconv.Itoa(int(a.Clause)) + "/" + strconv.Itoa(int(a.Of)) + ")")
}

func (a Group) format(b *strings.Builder, _ *Names) {
	b.WriteString("group:" + strconv.FormatUint(uint64(a.ID), 10))
}

// NormalizeDump turns ovs-ofctl dump-flows output into golden-file form:
// one flow per line, trimmed, sorted, without the reply header lines.
func NormalizeDump(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "OFPST_") || strings.HasPrefix(line, "NXST_") {
			continue
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return out
}

// FormatFlows renders flows in golden-file form: sorted lines.
func FormatFlows(flows []Flow, n *Names) []string {
	out := make([]string, len(flows))
	for i, f := range flows {
		out[i] = f.Format(n)
	}
	sort.Strings(out)
	return out
}
