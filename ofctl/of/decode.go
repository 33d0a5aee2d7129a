package of

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// reader is a bounds-checked cursor over a byte slice.
type reader struct {
	b   []byte
	err error
}

func (r *reader) need(n int) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || len(r.b) < n {
		r.err = ErrTruncated
		return false
	}
	return true
}

func (r *reader) u8() uint8 {
	if !r.need(1) {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u16() uint16 {
	if !r.need(2) {
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) u32() uint32 {
	if !r.need(4) {
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64() uint64 {
	if !r.need(8) {
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) bytes(n int) []byte {
	if !r.need(n) {
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func beN(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

// DecodeMatch reads an ofp_match (with its padding) from the front of b and
// returns the match and the bytes it took. Fields the model does not know
// are an error when strict, and skipped otherwise (packet-in metadata may
// carry fields Wyvern never sets).
func DecodeMatch(b []byte, strict bool) (Match, int, error) {
	r := reader{b: b}
	typ := r.u16()
	length := int(r.u16())
	if r.err != nil {
		return Match{}, 0, r.err
	}
	if typ != ofpmtOXM {
		return Match{}, 0, fmt.Errorf("openflow: match type %d, want OXM", typ)
	}
	padded := (length + 7) / 8 * 8
	if length < 4 || len(b) < padded {
		return Match{}, 0, ErrTruncated
	}
	m, err := DecodeOXMs(b[4:length], strict)
	if err != nil {
		return Match{}, 0, err
	}
	return m, padded, nil
}

// DecodeOXMs reads a list of OXM TLVs with no ofp_match around them (the
// metadata of an NXT_PACKET_IN2) as DecodeMatch reads a match's.
func DecodeOXMs(b []byte, strict bool) (Match, error) {
	body := reader{b: b}
	var m Match
	if n := oxmConds(b); n > 0 {
		m.conds = make([]Cond, 0, n) // room for all, allocated once
	}
	for len(body.b) > 0 {
		hdr := body.u32()
		class := uint16(hdr >> 16)
		field := uint8(hdr>>9) & 0x7f
		hasMask := hdr&0x100 != 0
		n := int(hdr & 0xff)
		payload := body.bytes(n)
		if body.err != nil {
			return Match{}, fmt.Errorf("openflow: OXM class 0x%04x field %d: %w", class, field, body.err)
		}
		if class == oxmClassPacketRegs {
			// OVS reports registers in pairs: packet register N holds
			// reg2N in its high half and reg2N+1 in its low half.
			if field > 3 || n != 8 && n != 16 || hasMask != (n == 16) {
				if strict {
					return Match{}, fmt.Errorf("openflow: unsupported packet register %d (%d bytes)", field, n)
				}
				continue
			}
			value, mask := beN(payload[:8]), ^uint64(0)
			if hasMask {
				mask = beN(payload[8:])
			}
			hi, lo := FieldReg0+FieldID(2*field), FieldReg0+FieldID(2*field+1)
			if mh := mask >> 32; mh != 0 {
				m.set(hi, value>>32, mh)
			}
			if ml := mask & 0xffffffff; ml != 0 {
				m.set(lo, value&0xffffffff, ml)
			}
			continue
		}
		id, ok := oxmIndex[uint32(class)<<8|uint32(field)]
		if !ok || class == 0xffff {
			if strict {
				return Match{}, fmt.Errorf("openflow: unsupported match field class 0x%04x field %d", class, field)
			}
			continue
		}
		w := int(fields[id].bytes)
		want := w
		if hasMask {
			want = 2 * w
		}
		if n != want {
			return Match{}, fmt.Errorf("openflow: match field %s has %d bytes, want %d", id, n, want)
		}
		value := beN(payload[:w])
		mask := id.fullMask()
		if hasMask {
			mask = beN(payload[w:])
		}
		m.set(id, value, mask)
	}
	return m, nil
}

// decodeOXMField reads a bare OXM header (as in copy_field) into a field.
func decodeOXMField(hdr uint32) (FieldID, error) {
	class := uint16(hdr >> 16)
	field := uint8(hdr>>9) & 0x7f
	id, ok := oxmIndex[uint32(class)<<8|uint32(field)]
	if !ok {
		return 0, fmt.Errorf("openflow: unsupported field class 0x%04x field %d", class, field)
	}
	return id, nil
}

// DecodeActions reads an action list.
func DecodeActions(b []byte) ([]Action, error) {
	var out []Action
	for len(b) > 0 {
		r := reader{b: b}
		typ := r.u16()
		n := int(r.u16())
		if r.err != nil || n < 8 || n > len(b) || n%8 != 0 {
			return nil, fmt.Errorf("openflow: action length %d: %w", n, ErrTruncated)
		}
		body := reader{b: b[4:n]}
		b = b[n:]
		switch typ {
		case ofpatOutput:
			port := body.u32()
			body.u16()
			if body.err != nil {
				return nil, body.err
			}
			if port == PortController {
				out = append(out, Punt{})
			} else {
				out = append(out, Output{Port: port})
			}
		case ofpatGroup:
			out = append(out, Group{ID: body.u32()})
		case ofpatDecNwTTL:
			out = append(out, DecTTL{})
		case ofpatPushVLAN:
			et := body.u16()
			if body.err != nil {
				return nil, body.err
			}
			if et != ethTypeVLAN {
				return nil, fmt.Errorf("openflow: push_vlan:0x%04x is not supported, only 0x8100", et)
			}
			out = append(out, PushVLAN{})
		case ofpatPopVLAN:
			out = append(out, PopVLAN{})
		case ofpatSetField:
			m, _, err := decodeBareOXM(body.b)
			if err != nil {
				return nil, fmt.Errorf("openflow: set_field: %w", err)
			}
			c := m.conds[0]
			sf := SetField{Field: c.Field, Value: c.Value}
			if c.Mask != c.Field.fullMask() {
				sf.Mask = c.Mask
			}
			out = append(out, sf)
		case ofpatCopyField:
			bits := body.u16()
			srcOfs := body.u16()
			dstOfs := body.u16()
			body.u16()
			src, errS := decodeOXMField(body.u32())
			dst, errD := decodeOXMField(body.u32())
			if body.err != nil {
				return nil, body.err
			}
			if errS != nil || errD != nil {
				return nil, errors.Join(errS, errD)
			}
			if bits == 0 || bits > 64 || srcOfs >= 64 || dstOfs >= 64 {
				return nil, fmt.Errorf("openflow: copy_field of %d bits at %d->%d", bits, srcOfs, dstOfs)
			}
			mv := Move{Src: src, Dst: dst, SrcOfs: uint8(srcOfs), DstOfs: uint8(dstOfs), Bits: uint8(bits)}
			if srcOfs == 0 && dstOfs == 0 && uint8(bits) == src.Bits() && src.Bits() == dst.Bits() {
				mv.Bits = 0
			}
			if err := mv.check(); err != nil {
				return nil, fmt.Errorf("openflow: %w", err)
			}
			out = append(out, mv)
		case ofpatExperimenter:
			a, err := decodeNXAction(&body)
			if err != nil {
				return nil, err
			}
			out = append(out, a)
		default:
			return nil, fmt.Errorf("openflow: unsupported action type %d", typ)
		}
	}
	return out, nil
}

// decodeBareOXM reads one OXM TLV not wrapped in an ofp_match.
func decodeBareOXM(b []byte) (Match, int, error) {
	if len(b) < 4 {
		return Match{}, 0, ErrTruncated
	}
	n := 4 + int(b[3])
	if len(b) < n {
		return Match{}, 0, ErrTruncated
	}
	wrapped := make([]byte, 0, n+12)
	wrapped = put16(wrapped, ofpmtOXM)
	wrapped = put16(wrapped, uint16(4+n))
	wrapped = append(wrapped, b[:n]...)
	wrapped = pad8(wrapped, 0)
	m, _, err := DecodeMatch(wrapped, true)
	if err == nil && m.Len() != 1 {
		err = fmt.Errorf("openflow: set_field with %d fields", m.Len())
	}
	return m, n, err
}

func decodeNXAction(body *reader) (Action, error) {
	vendor := body.u32()
	sub := body.u16()
	if body.err != nil {
		return nil, body.err
	}
	if vendor != nxVendorID {
		return nil, fmt.Errorf("openflow: unsupported experimenter action vendor 0x%08x", vendor)
	}
	switch sub {
	case nxastResubmitTable:
		port := body.u16()
		table := body.u8()
		if body.err != nil {
			return nil, body.err
		}
		if port != oldPortInPort {
			return nil, fmt.Errorf("openflow: resubmit with in_port %d is not supported", port)
		}
		return Resubmit{Table: table}, nil
	case nxastConjunction:
		clause := body.u8()
		n := body.u8()
		id := body.u32()
		if body.err != nil {
			return nil, body.err
		}
		if n < 2 || n > 64 || clause >= n {
			return nil, fmt.Errorf("openflow: conjunction %d clause %d of %d", id, clause, n)
		}
		return Conjunction{ID: id, Clause: clause + 1, Of: n}, nil
	case nxastCheckLarger:
		length := body.u16()
		ofs := body.u16()
		dst, err := decodeOXMField(body.u32())
		if body.err != nil {
			return nil, body.err
		}
		if err != nil {
			return nil, err
		}
		if ofs >= uint16(dst.Bits()) {
			return nil, fmt.Errorf("openflow: check_pkt_larger into bit %d of %s", ofs, dst)
		}
		return CheckPktLarger{Len: length, Dst: dst, Ofs: uint8(ofs)}, nil
	case nxastCT:
		return decodeCT(body)
	case nxastController2:
		body.bytes(6)
		p := Punt{}
		for len(body.b) > 0 && body.err == nil {
			typ := body.u16()
			n := int(body.u16())
			if n < 4 {
				return nil, fmt.Errorf("openflow: controller property length %d", n)
			}
			val := body.bytes(n - 4)
			if padded := (n+7)/8*8 - n; padded > 0 && len(body.b) >= padded {
				body.bytes(padded)
			}
			if body.err != nil {
				break
			}
			switch typ {
			case nxac2ptUserdata:
				p.UserData = string(val)
			case nxac2ptMeterID:
				if len(val) == 4 {
					p.MeterID = binary.BigEndian.Uint32(val)
				}
			case nxac2ptMaxLen:
				if len(val) != 2 || binary.BigEndian.Uint16(val) != ofpcmlNoBuffer {
					return nil, fmt.Errorf("openflow: controller max_len other than 65535 is not supported")
				}
			default:
				return nil, fmt.Errorf("openflow: unsupported controller property %d", typ)
			}
		}
		if body.err != nil {
			return nil, body.err
		}
		return p, nil
	}
	return nil, fmt.Errorf("openflow: unsupported Nicira action subtype %d", sub)
}

// DecodeInstructions reads an instruction list into the flat action list
// Wyvern uses (apply-actions, then write_metadata, then goto_table).
func DecodeInstructions(b []byte) ([]Action, error) {
	var apply []Action
	var wm *WriteMetadata
	var gt *GotoTable
	for len(b) > 0 {
		r := reader{b: b}
		typ := r.u16()
		n := int(r.u16())
		if r.err != nil || n < 4 || n > len(b) {
			return nil, fmt.Errorf("openflow: instruction length %d: %w", n, ErrTruncated)
		}
		body := reader{b: b[4:n]}
		b = b[n:]
		switch typ {
		case ofpitGotoTable:
			t := body.u8()
			if body.err != nil {
				return nil, body.err
			}
			gt = &GotoTable{Table: t}
		case ofpitWriteMetadata:
			body.bytes(4)
			v := body.u64()
			m := body.u64()
			if body.err != nil {
				return nil, body.err
			}
			w := WriteMetadata{Value: v & m}
			if m != ^uint64(0) {
				w.Mask = m
			}
			wm = &w
		case ofpitApplyActions:
			body.bytes(4)
			if body.err != nil {
				return nil, body.err
			}
			acts, err := DecodeActions(body.b)
			if err != nil {
				return nil, err
			}
			apply = append(apply, acts...)
		case ofpitWriteActions, ofpitClearActions:
			return nil, fmt.Errorf("openflow: write/clear-actions instructions are not used by Wyvern")
		default:
			return nil, fmt.Errorf("openflow: unsupported instruction type %d", typ)
		}
	}
	if wm != nil {
		apply = append(apply, *wm)
	}
	if gt != nil {
		apply = append(apply, *gt)
	}
	return apply, nil
}

// DecodeFlowDesc reads one ofp_flow_desc (an OFPMP_FLOW_DESC reply entry)
// from the front of b. It returns the bytes the entry took even when the
// entry holds something the model cannot represent; then the flow still
// has its table, priority and cookie, and err says what was not understood.
func DecodeFlowDesc(b []byte) (Flow, int, error) {
	r := reader{b: b}
	length := int(r.u16())
	if r.err != nil || length < flowDescFixed || length > len(b) {
		return Flow{}, 0, ErrTruncated
	}
	r = reader{b: b[2:length]}
	r.bytes(2)
	var f Flow
	f.Table = r.u8()
	r.u8()
	f.Priority = r.u16()
	f.IdleTimeout = r.u16()
	f.HardTimeout = r.u16()
	r.u16() // flags
	r.u16() // importance
	f.Cookie = r.u64()
	if r.err != nil {
		return Flow{}, 0, r.err
	}
	m, n, err := DecodeMatch(r.b, true)
	if err != nil {
		return f, length, err
	}
	f.Match = m
	r.b = r.b[n:]
	// ofp_stats: reserved(2), length(2), OXS fields, padded to 8.
	r.u16()
	statsLen := int(r.u16())
	if r.err != nil || statsLen < 4 {
		return f, length, ErrTruncated
	}
	r.bytes((statsLen+7)/8*8 - 4)
	if r.err != nil {
		return f, length, r.err
	}
	acts, err := DecodeInstructions(r.b)
	if err != nil {
		return f, length, err
	}
	f.Actions = acts
	return f, length, nil
}

// DecodeFlowMod reads a FLOW_MOD message (the inverse of AppendFlowMod),
// for tests and for reading failed messages echoed back in errors.
func DecodeFlowMod(b []byte) (uint32, FlowMod, error) {
	r := reader{b: b}
	if r.u8() != OFVersion15 || r.u8() != ofptFlowMod {
		if r.err != nil {
			return 0, FlowMod{}, r.err
		}
		return 0, FlowMod{}, errors.New("openflow: not an OpenFlow 1.5 flow-mod")
	}
	length := int(r.u16())
	xid := r.u32()
	if r.err != nil || length < flowModFixed || length > len(b) {
		return 0, FlowMod{}, ErrTruncated
	}
	r.b = b[ofpHeaderLen:length]
	var fm FlowMod
	fm.Flow.Cookie = r.u64()
	fm.CookieMask = r.u64()
	fm.Flow.Table = r.u8()
	fm.Command = FlowModCommand(r.u8())
	fm.Flow.IdleTimeout = r.u16()
	fm.Flow.HardTimeout = r.u16()
	fm.Flow.Priority = r.u16()
	r.bytes(16)
	if r.err != nil {
		return xid, fm, r.err
	}
	m, n, err := DecodeMatch(r.b, true)
	if err != nil {
		return xid, fm, err
	}
	fm.Flow.Match = m
	switch fm.Command {
	case FlowAdd, FlowModify, FlowModifyStrict:
	case FlowDelete, FlowDeleteStrict:
		return xid, fm, nil // a delete's instructions mean nothing
	default:
		return xid, fm, fmt.Errorf("openflow: flow-mod command %d", fm.Command)
	}
	acts, err := DecodeInstructions(r.b[n:])
	if err != nil {
		return xid, fm, err
	}
	fm.Flow.Actions = acts
	return xid, fm, nil
}

// oxmConds is at most how many conditions the OXMs in b decode to: one
// each, two for a packet register (a pair of registers). It reads only
// the headers and stops at the first that does not fit, which the
// decoder then refuses.
func oxmConds(b []byte) int {
	n := 0
	for len(b) >= 4 {
		hdr := binary.BigEndian.Uint32(b)
		size := 4 + int(hdr&0xff)
		if len(b) < size {
			break
		}
		n++
		if uint16(hdr>>16) == oxmClassPacketRegs {
			n++
		}
		b = b[size:]
	}
	return n
}
