package of

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Action is one step of a flow's action list. Every Action type is a
// comparable struct, so two action lists compare with ==.
//
// In a Flow's Actions, WriteMetadata and GotoTable are OpenFlow instructions
// rather than actions; they must come last, in that order, exactly where
// ovs-ofctl prints them.
type Action interface {
	format(b *strings.Builder, n *Names)
	// appendWire appends the OpenFlow 1.5 encoding of an apply-action.
	// Instructions (WriteMetadata, GotoTable) are encoded by the flow.
	appendWire(b []byte) ([]byte, error)
}

// Reserved OpenFlow ports (OpenFlow 1.5 ofp_port_no).
const (
	PortMax        uint32 = 0xffffff00
	PortInPort     uint32 = 0xfffffff8
	PortTable      uint32 = 0xfffffff9
	PortNormal     uint32 = 0xfffffffa
	PortFlood      uint32 = 0xfffffffb
	PortAll        uint32 = 0xfffffffc
	PortController uint32 = 0xfffffffd
	PortLocal      uint32 = 0xfffffffe
	PortAny        uint32 = 0xffffffff
)

var reservedPortNames = map[uint32]string{
	PortInPort:     "IN_PORT",
	PortTable:      "TABLE",
	PortNormal:     "NORMAL",
	PortFlood:      "FLOOD",
	PortAll:        "ALL",
	PortController: "CONTROLLER",
	PortLocal:      "LOCAL",
	PortAny:        "ANY",
}

// Output sends the packet out a port (a real port or a reserved one such as
// PortInPort).
type Output struct{ Port uint32 }

// Punt sends the packet to the controller in full. With UserData or a
// MeterID it becomes Nicira's controller(...) action.
type Punt struct {
	UserData string // opaque bytes returned in the packet-in
	MeterID  uint32 // rate-limits punts; 0 = none
}

// CheckPktLarger sets bit Ofs of register field Dst to 1 when the packet
// is longer than Len bytes (its Ethernet header included), to 0 otherwise:
// Open vSwitch's check_pkt_larger (2.12 and later).
type CheckPktLarger struct {
	Len uint16
	Dst FieldID
	Ofs uint8
}

// CheckLarger is check_pkt_larger into a one-bit register field.
func CheckLarger(length uint16, r RegField) CheckPktLarger {
	return CheckPktLarger{Len: length, Dst: r.Field, Ofs: r.Ofs}
}

// GotoTable continues in a later table (an instruction: last in the list).
type GotoTable struct{ Table uint8 }

// Resubmit runs the packet through a table and comes back.
type Resubmit struct{ Table uint8 }

// SetField writes a field; a zero Mask writes the whole field.
type SetField struct {
	Field FieldID
	Value uint64
	Mask  uint64
}

// WriteMetadata writes the metadata register (an instruction: after the
// apply-actions, before GotoTable).
type WriteMetadata struct {
	Value uint64
	Mask  uint64 // zero = all ones
}

// DecTTL decrements the IP TTL; a packet whose TTL runs out goes to the
// controller as an invalid-TTL packet-in.
type DecTTL struct{}

// Move copies Bits bits of Src (from SrcOfs) into Dst (at DstOfs); Bits 0
// copies the whole field.
type Move struct {
	Src, Dst       FieldID
	SrcOfs, DstOfs uint8
	Bits           uint8
}

// Conjunction makes the flow one clause (Clause of Of, counted from 1) of
// the conjunctive match ID: when a packet matches a flow of every clause
// at one priority, the table is searched again with conj_id = ID.
type Conjunction struct {
	ID         uint32
	Clause, Of uint8
}

// Group sends the packet to an OpenFlow group.
type Group struct{ ID uint32 }

// SetReg is SetField on a declared register field.
func SetReg(r RegField, v uint64) SetField {
	mask := r.Mask()
	if mask == r.Field.fullMask() {
		mask = 0
	}
	return SetField{Field: r.Field, Value: r.Value(v), Mask: mask}
}

// mask returns the effective write mask.
func (a SetField) mask() uint64 {
	if a.Mask == 0 {
		return a.Field.fullMask()
	}
	return a.Mask & a.Field.fullMask()
}

func (a WriteMetadata) mask() uint64 {
	if a.Mask == 0 {
		return ^uint64(0)
	}
	return a.Mask
}

func (a Move) bits() uint8 {
	if a.Bits == 0 {
		return a.Src.Bits()
	}
	return a.Bits
}

// OpenFlow 1.5 action and instruction types.
const (
	ofpatOutput       = 0
	ofpatGroup        = 22
	ofpatDecNwTTL     = 24
	ofpatSetField     = 25
	ofpatCopyField    = 28
	ofpatExperimenter = 0xffff

	nxVendorID         = 0x00002320
	nxastResubmitTable = 14
	nxastController2   = 37
	nxastCheckLarger   = 49
	nxastConjunction   = 34
	nxac2ptMaxLen      = 0
	nxac2ptUserdata    = 3
	nxac2ptMeterID     = 5
	ofpcmlNoBuffer     = 0xffff
	oldPortInPort      = 0xfff8
	ofpitGotoTable     = 1
	ofpitWriteMetadata = 2
	ofpitApplyActions  = 4
	ofpitClearActions  = 5
	ofpitWriteActions  = 3
)

func put16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func put32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func put64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
func pad8(b []byte, start int) []byte {
	for (len(b)-start)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

// setLen writes the length of the TLV that starts at start (its bytes 2..3).
func setLen(b []byte, start int) {
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
}

func (a Output) appendWire(b []byte) ([]byte, error) {
	b = put16(b, ofpatOutput)
	b = put16(b, 16)
	b = put32(b, a.Port)
	maxLen := uint16(0)
	if a.Port == PortController {
		maxLen = ofpcmlNoBuffer
	}
	b = put16(b, maxLen)
	return append(b, 0, 0, 0, 0, 0, 0), nil
}

func (a Punt) appendWire(b []byte) ([]byte, error) {
	if a.UserData == "" && a.MeterID == 0 {
		return Output{Port: PortController}.appendWire(b)
	}
	start := len(b)
	b = put16(b, ofpatExperimenter)
	b = put16(b, 0)
	b = put32(b, nxVendorID)
	b = put16(b, nxastController2)
	b = append(b, 0, 0, 0, 0, 0, 0)
	if a.UserData != "" {
		p := len(b)
		b = put16(b, nxac2ptUserdata)
		b = put16(b, uint16(4+len(a.UserData)))
		b = append(b, a.UserData...)
		b = pad8(b, p)
	}
	if a.MeterID != 0 {
		b = put16(b, nxac2ptMeterID)
		b = put16(b, 8)
		b = put32(b, a.MeterID)
	}
	setLen(b, start)
	return b, nil
}

func (a GotoTable) appendWire(b []byte) ([]byte, error) {
	return b, fmt.Errorf("goto_table is an instruction and must end the action list")
}

func (a WriteMetadata) appendWire(b []byte) ([]byte, error) {
	return b, fmt.Errorf("write_metadata is an instruction and must come just before goto_table or last")
}

func (a Resubmit) appendWire(b []byte) ([]byte, error) {
	b = put16(b, ofpatExperimenter)
	b = put16(b, 16)
	b = put32(b, nxVendorID)
	b = put16(b, nxastResubmitTable)
	b = put16(b, oldPortInPort)
	return append(b, a.Table, 0, 0, 0), nil
}

func (a CheckPktLarger) appendWire(b []byte) ([]byte, error) {
	if !a.Dst.valid() || a.Ofs >= a.Dst.Bits() {
		return b, fmt.Errorf("check_pkt_larger: bit %d of %s", a.Ofs, a.Dst)
	}
	start := len(b)
	b = put16(b, ofpatExperimenter)
	b = put16(b, 24)
	b = put32(b, nxVendorID)
	b = put16(b, nxastCheckLarger)
	b = put16(b, a.Len)
	b = put16(b, uint16(a.Ofs))
	b = put32(b, oxmHeader(a.Dst, false))
	return append(b, make([]byte, 24-(len(b)-start))...), nil
}

func (a SetField) appendWire(b []byte) ([]byte, error) {
	if !a.Field.valid() {
		return b, fmt.Errorf("set_field: unknown field %d", a.Field)
	}
	start := len(b)
	b = put16(b, ofpatSetField)
	b = put16(b, 0)
	mask := a.mask()
	b = appendOXM(b, a.Field, a.Value&mask, mask)
	b = pad8(b, start)
	setLen(b, start)
	return b, nil
}

func (a DecTTL) appendWire(b []byte) ([]byte, error) {
	b = put16(b, ofpatDecNwTTL)
	b = put16(b, 8)
	return append(b, 0, 0, 0, 0), nil
}

// check rejects a move whose bit ranges do not fit its fields.
func (a Move) check() error {
	if !a.Src.valid() || !a.Dst.valid() {
		return fmt.Errorf("move: unknown field")
	}
	n := a.bits()
	if int(a.SrcOfs)+int(n) > int(a.Src.Bits()) || int(a.DstOfs)+int(n) > int(a.Dst.Bits()) {
		return fmt.Errorf("move: %d bits do not fit %s[%d..] or %s[%d..]", n, a.Src, a.SrcOfs, a.Dst, a.DstOfs)
	}
	return nil
}

func (a Move) appendWire(b []byte) ([]byte, error) {
	if err := a.check(); err != nil {
		return b, err
	}
	n := a.bits()
	start := len(b)
	b = put16(b, ofpatCopyField)
	b = put16(b, 0)
	b = put16(b, uint16(n))
	b = put16(b, uint16(a.SrcOfs))
	b = put16(b, uint16(a.DstOfs))
	b = append(b, 0, 0)
	b = put32(b, oxmHeader(a.Src, false))
	b = put32(b, oxmHeader(a.Dst, false))
	b = pad8(b, start)
	setLen(b, start)
	return b, nil
}

func (a Conjunction) appendWire(b []byte) ([]byte, error) {
	if a.Of < 2 || a.Of > 64 || a.Clause < 1 || a.Clause > a.Of {
		return b, fmt.Errorf("conjunction(%d,%d/%d): want 1 <= k <= n, 2 <= n <= 64", a.ID, a.Clause, a.Of)
	}
	b = put16(b, ofpatExperimenter)
	b = put16(b, 16)
	b = put32(b, nxVendorID)
	b = put16(b, nxastConjunction)
	b = append(b, a.Clause-1, a.Of) // the clause is 0-based on the wire
	return put32(b, a.ID), nil
}

func (a Group) appendWire(b []byte) ([]byte, error) {
	b = put16(b, ofpatGroup)
	b = put16(b, 8)
	return put32(b, a.ID), nil
}

// oxmHeader is the 32-bit OXM header of a field.
func oxmHeader(f FieldID, masked bool) uint32 {
	fi := fields[f]
	n := uint32(fi.bytes)
	hm := uint32(0)
	if masked {
		n *= 2
		hm = 1
	}
	return uint32(fi.class)<<16 | uint32(fi.field)<<9 | hm<<8 | n
}

// appendOXM appends one OXM TLV; the mask is omitted when it covers the
// whole field.
func appendOXM(b []byte, f FieldID, value, mask uint64) []byte {
	full := mask == f.fullMask()
	b = put32(b, oxmHeader(f, !full))
	b = appendN(b, value, fields[f].bytes)
	if !full {
		b = appendN(b, mask, fields[f].bytes)
	}
	return b
}

func appendN(b []byte, v uint64, n uint8) []byte {
	for i := int(n) - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*uint(i))))
	}
	return b
}
