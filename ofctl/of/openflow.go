package of

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// OpenFlow 1.5 wire constants used by the flow codec.
const (
	OFVersion15   = 0x06
	ofptFlowMod   = 14
	ofpmtOXM      = 1
	ofpNoBuffer   = 0xffffffff
	ofpGroupAny   = 0xffffffff
	ofpHeaderLen  = 8
	flowModFixed  = 48 // header through importance
	flowDescFixed = 24 // length through cookie
)

// ErrTruncated is returned for a message shorter than its own lengths say.
var ErrTruncated = errors.New("openflow: truncated")

// AppendFlowMod appends a complete OpenFlow 1.5 FLOW_MOD message.
func AppendFlowMod(b []byte, xid uint32, fm FlowMod) ([]byte, error) {
	f := fm.Flow
	start := len(b)
	b = append(b, OFVersion15, ofptFlowMod, 0, 0)
	b = put32(b, xid)
	b = put64(b, uint64(f.Cookie))
	b = put64(b, uint64(fm.CookieMask))
	b = append(b, f.Table, byte(fm.Command))
	b = put16(b, f.IdleTimeout)
	b = put16(b, f.HardTimeout)
	b = put16(b, f.Priority)
	b = put32(b, ofpNoBuffer)
	b = put32(b, PortAny)
	b = put32(b, ofpGroupAny)
	b = put16(b, 0) // flags
	b = put16(b, 0) // importance
	b = AppendMatch(b, f.Match)
	if fm.Command != FlowDelete && fm.Command != FlowDeleteStrict {
		var err error
		if b, err = appendInstructions(b, f.Actions); err != nil {
			return b[:start], fmt.Errorf("flow %s: %w", f, err)
		}
	}
	if len(b)-start > 0xffff {
		return b[:start], fmt.Errorf("flow %s: message of %d bytes exceeds 65535", f, len(b)-start)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b, nil
}

// AppendMatch appends an ofp_match (OXM type) padded to 8 bytes.
func AppendMatch(b []byte, m Match) []byte {
	start := len(b)
	b = put16(b, ofpmtOXM)
	b = put16(b, 0)
	for _, c := range m.conds {
		b = appendOXM(b, c.Field, c.Value, c.Mask)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return pad8(b, start)
}

// AppendPacketOutMatch appends a packet-out's match: an exact in_port
// (the lowest field, so first in canonical order), then the conditions
// of m on the fields keep accepts. It allocates nothing: a punt's match
// is sent back this way, not filtered into a copy first.
func AppendPacketOutMatch(b []byte, m Match, inPort uint32, keep func(FieldID) bool) []byte {
	start := len(b)
	b = put16(b, ofpmtOXM)
	b = put16(b, 0)
	b = appendOXM(b, FieldInPort, uint64(inPort), FieldInPort.fullMask())
	for _, c := range m.conds {
		if c.Field != FieldInPort && keep(c.Field) {
			b = appendOXM(b, c.Field, c.Value, c.Mask)
		}
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return pad8(b, start)
}

// AppendActions appends a bare action list, as a packet-out carries it.
// Instructions (WriteMetadata, GotoTable) are not actions and are refused.
func AppendActions(b []byte, actions []Action) ([]byte, error) {
	for _, a := range actions {
		var err error
		if b, err = a.appendWire(b); err != nil {
			return b, err
		}
	}
	return b, nil
}

func appendInstructions(b []byte, actions []Action) ([]byte, error) {
	apply := actions
	var wm *WriteMetadata
	var gt *GotoTable
	// Instructions sit at the end: [apply...] [WriteMetadata] [GotoTable].
	if n := len(apply); n > 0 {
		if g, ok := apply[n-1].(GotoTable); ok {
			gt = &g
			apply = apply[:n-1]
		}
	}
	if n := len(apply); n > 0 {
		if w, ok := apply[n-1].(WriteMetadata); ok {
			wm = &w
			apply = apply[:n-1]
		}
	}
	if len(apply) > 0 {
		start := len(b)
		b = put16(b, ofpitApplyActions)
		b = put16(b, 0)
		b = append(b, 0, 0, 0, 0)
		var err error
		if b, err = AppendActions(b, apply); err != nil {
			return b, err
		}
		setLen(b, start)
	}
	if wm != nil {
		b = put16(b, ofpitWriteMetadata)
		b = put16(b, 24)
		b = append(b, 0, 0, 0, 0)
		b = put64(b, wm.Value&wm.mask())
		b = put64(b, wm.mask())
	}
	if gt != nil {
		b = put16(b, ofpitGotoTable)
		b = put16(b, 8)
		b = append(b, gt.Table, 0, 0, 0)
	}
	return b, nil
}
