package ofctl

import (
	"encoding/binary"
	"fmt"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// OpenFlow 1.5 message types (ofp_type).
const (
	typeHello          = 0
	typeError          = 1
	typeEchoRequest    = 2
	typeEchoReply      = 3
	typeExperimenter   = 4
	typeFeaturesReq    = 5
	typeFeaturesReply  = 6
	typeSetConfig      = 9
	typePacketIn       = 10
	typePortStatus     = 12
	typePacketOut      = 13
	typeFlowMod        = 14
	typeMultipartReq   = 18
	typeMultipartReply = 19
	typeBarrierReq     = 20
	typeBarrierReply   = 21
	typeBundleControl  = 33
	typeBundleAdd      = 34

	headerLen = 8

	multipartFlowDesc      = 1
	multipartTableFeatures = 12
	multipartReplyMore     = 1

	bundleOpenRequest    = 0
	bundleOpenReply      = 1
	bundleCommitRequest  = 4
	bundleCommitReply    = 5
	bundleDiscardRequest = 6
	bundleDiscardReply   = 7
	bundleAtomic         = 1
	bundleOrdered        = 2

	tableFeaturesModify = 1
	tableNameLen        = 32

	helloElemVersionBitmap = 1
	missSendLenNoBuffer    = 0xffff

	// Nicira extensions (OVS's nicira-ext.h).
	nxVendorID           = 0x00002320
	nxtSetPacketInFormat = 16
	nxtPacketIn2         = 30
	nxPacketInFormatIn2  = 2 // NXPIF_NXT_PACKET_IN2
	nxpintPacket         = 0 // NXT_PACKET_IN2 properties
	nxpintFullLen        = 1
	nxpintTableID        = 3
	nxpintCookie         = 4
	nxpintReason         = 5
	nxpintMetadata       = 6
	nxpintUserdata       = 7
)

// header is the common OpenFlow header.
type header struct {
	Version uint8
	Type    uint8
	Length  uint16
	Xid     uint32
}

func parseHeader(b []byte) (header, error) {
	if len(b) < headerLen {
		return header{}, of.ErrTruncated
	}
	h := header{b[0], b[1], binary.BigEndian.Uint16(b[2:]), binary.BigEndian.Uint32(b[4:])}
	if h.Length < headerLen {
		return h, fmt.Errorf("openflow: message length %d below header size", h.Length)
	}
	return h, nil
}

// appendHeader starts a message; finish sets its length.
func appendHeader(b []byte, typ uint8, xid uint32) []byte {
	b = append(b, of.OFVersion15, typ, 0, 0)
	return binary.BigEndian.AppendUint32(b, xid)
}

func finish(b []byte, start int) []byte {
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b
}

func be16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func be32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func be64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// helloMsg offers OpenFlow 1.5 only, with a version bitmap.
func helloMsg(xid uint32) []byte {
	b := appendHeader(nil, typeHello, xid)
	b = be16(b, helloElemVersionBitmap)
	b = be16(b, 8)
	b = be32(b, 1<<of.OFVersion15)
	return finish(b, 0)
}

// helloSupports15 reports whether a peer's HELLO admits OpenFlow 1.5.
func helloSupports15(msg []byte) bool {
	h, err := parseHeader(msg)
	if err != nil {
		return false
	}
	body := msg[headerLen:]
	for len(body) >= 4 {
		typ := binary.BigEndian.Uint16(body)
		n := int(binary.BigEndian.Uint16(body[2:]))
		if n < 4 || n > len(body) {
			break
		}
		if typ == helloElemVersionBitmap && n >= 8 {
			return binary.BigEndian.Uint32(body[4:])&(1<<of.OFVersion15) != 0
		}
		adv := (n + 7) / 8 * 8
		if adv > len(body) {
			break
		}
		body = body[adv:]
	}
	return h.Version >= of.OFVersion15
}

func simpleMsg(typ uint8, xid uint32) []byte {
	return finish(appendHeader(nil, typ, xid), 0)
}

func echoReply(req []byte) []byte {
	b := append([]byte(nil), req...)
	b[1] = typeEchoReply
	return b
}

func setConfigMsg(xid uint32) []byte {
	b := appendHeader(nil, typeSetConfig, xid)
	b = be16(b, 0) // flags: normal fragment handling
	b = be16(b, missSendLenNoBuffer)
	return finish(b, 0)
}

// packetInFormatMsg asks the switch for NXT_PACKET_IN2 packet-ins: the
// only form that carries a punt flow's controller(userdata=...), which is
// how a punt says why it was sent.
func packetInFormatMsg(xid uint32) []byte {
	b := appendHeader(nil, typeExperimenter, xid)
	b = be32(b, nxVendorID)
	b = be32(b, nxtSetPacketInFormat)
	b = be32(b, nxPacketInFormatIn2)
	return finish(b, 0)
}

// isPacketIn2 reports whether an experimenter message is an NXT_PACKET_IN2.
func isPacketIn2(msg []byte) bool {
	return len(msg) >= 16 && msg[1] == typeExperimenter &&
		binary.BigEndian.Uint32(msg[8:]) == nxVendorID && binary.BigEndian.Uint32(msg[12:]) == nxtPacketIn2
}

// features is the part of FEATURES_REPLY Wyvern uses.
type features struct {
	DatapathID uint64
	NTables    uint8
}

func parseFeatures(msg []byte) (features, error) {
	if len(msg) < headerLen+24 {
		return features{}, of.ErrTruncated
	}
	b := msg[headerLen:]
	return features{DatapathID: binary.BigEndian.Uint64(b), NTables: b[12]}, nil
}

// ofError is an OpenFlow error message.
type ofError struct {
	Type, Code uint16
	Data       []byte // usually the start of the failed request
}

func parseError(msg []byte) (ofError, error) {
	if len(msg) < headerLen+4 {
		return ofError{}, of.ErrTruncated
	}
	b := msg[headerLen:]
	return ofError{Type: binary.BigEndian.Uint16(b), Code: binary.BigEndian.Uint16(b[2:]), Data: b[4:]}, nil
}

// PacketIn is a packet the switch punted to the controller.
type PacketIn struct {
	Reason   uint8
	Table    uint8
	Cookie   uint64
	Match    of.Match // pipeline fields: in_port, metadata, registers, tunnel
	TotalLen uint32
	Data     []byte // the Ethernet frame
	// UserData is the punt flow's controller(userdata=...): Wyvern's punt
	// reason and what the flow's app put after it. Only NXT_PACKET_IN2
	// carries it; a standard PACKET_IN has none.
	UserData []byte
}

// InPort is the OpenFlow port the packet entered on.
func (p PacketIn) InPort() uint32 {
	c, _ := p.Match.Get(of.FieldInPort)
	return uint32(c.Value)
}

// Packet-in reasons (OpenFlow 1.5 ofp_packet_in_reason).
const (
	ReasonTableMiss  = 0
	ReasonAction     = 1
	ReasonInvalidTTL = 2
)

// ParsePacketIn decodes an OpenFlow 1.5 PACKET_IN message. It never panics on
// malformed input.
func ParsePacketIn(msg []byte) (PacketIn, error) {
	h, err := parseHeader(msg)
	if err != nil {
		return PacketIn{}, err
	}
	if h.Type != typePacketIn {
		return PacketIn{}, fmt.Errorf("openflow: message type %d is not a packet-in", h.Type)
	}
	if int(h.Length) > len(msg) {
		return PacketIn{}, of.ErrTruncated
	}
	b := msg[headerLen:h.Length]
	if len(b) < 16 {
		return PacketIn{}, of.ErrTruncated
	}
	p := PacketIn{
		TotalLen: uint32(binary.BigEndian.Uint16(b[4:])),
		Reason:   b[6],
		Table:    b[7],
		Cookie:   binary.BigEndian.Uint64(b[8:]),
	}
	m, n, err := of.DecodeMatch(b[16:], false)
	if err != nil {
		return PacketIn{}, fmt.Errorf("openflow: packet-in match: %w", err)
	}
	p.Match = m
	rest := b[16+n:]
	if len(rest) < 2 {
		return PacketIn{}, of.ErrTruncated
	}
	p.Data = append([]byte(nil), rest[2:]...)
	return p, nil
}

// ParsePacketIn2 decodes an NXT_PACKET_IN2 message: properties, each a
// type, a length and a value padded to 8 bytes. Properties it does not
// use (buffer id, continuation) are skipped. It never panics on malformed
// input.
func ParsePacketIn2(msg []byte) (PacketIn, error) {
	h, err := parseHeader(msg)
	if err != nil {
		return PacketIn{}, err
	}
	if int(h.Length) > len(msg) {
		return PacketIn{}, of.ErrTruncated
	}
	if !isPacketIn2(msg[:h.Length]) {
		return PacketIn{}, fmt.Errorf("openflow: message type %d is not an NXT_PACKET_IN2", h.Type)
	}
	var p PacketIn
	var data, user []byte // copied into one array at the end
	gotPacket := false
	b := msg[16:h.Length]
	for len(b) > 0 {
		if len(b) < 4 {
			return PacketIn{}, of.ErrTruncated
		}
		typ, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		padded := (n + 7) / 8 * 8
		if n < 4 || len(b) < n {
			return PacketIn{}, fmt.Errorf("openflow: packet-in2 property %d of %d bytes: %w", typ, n, of.ErrTruncated)
		}
		v := b[4:n]
		if len(b) < padded { // the last property's padding may be cut
			padded = len(b)
		}
		b = b[padded:]
		fixed := func(want int) error {
			if len(v) != want {
				return fmt.Errorf("openflow: packet-in2 property %d has %d bytes, want %d", typ, len(v), want)
			}
			return nil
		}
		switch typ {
		case nxpintPacket:
			data, gotPacket = v, true
		case nxpintFullLen:
			if err := fixed(4); err != nil {
				return PacketIn{}, err
			}
			p.TotalLen = binary.BigEndian.Uint32(v)
		case nxpintTableID:
			if err := fixed(1); err != nil {
				return PacketIn{}, err
			}
			p.Table = v[0]
		case nxpintCookie:
			// A 64-bit property starts its value 8-byte aligned, after
			// 4 bytes of padding (OVS's ofpprop_put_be64).
			if err := fixed(12); err != nil {
				return PacketIn{}, err
			}
			p.Cookie = binary.BigEndian.Uint64(v[4:])
		case nxpintReason:
			if err := fixed(1); err != nil {
				return PacketIn{}, err
			}
			p.Reason = v[0]
		case nxpintMetadata:
			m, err := of.DecodeOXMs(v, false)
			if err != nil {
				return PacketIn{}, fmt.Errorf("openflow: packet-in2 metadata: %w", err)
			}
			p.Match = m
		case nxpintUserdata:
			user = v
		}
	}
	if !gotPacket {
		return PacketIn{}, fmt.Errorf("openflow: packet-in2 without a packet")
	}
	if own := make([]byte, len(data)+len(user)); len(own) > 0 {
		if len(data) > 0 {
			p.Data = own[:len(data):len(data)]
			copy(p.Data, data)
		}
		if len(user) > 0 {
			p.UserData = own[len(data):]
			copy(p.UserData, user)
		}
	}
	if p.TotalLen == 0 {
		p.TotalLen = uint32(len(p.Data))
	}
	return p, nil
}

// PacketOut is a packet the controller sends through the switch.
type PacketOut struct {
	// InPort is the packet's ingress port as the pipeline sees it
	// (of.PortController when it did not come from a port).
	InPort uint32
	// Match may carry further pipeline fields (metadata, registers,
	// tunnel metadata) for a packet re-injected into the pipeline; only
	// those are sent (a punt's whole match may be given back), and
	// in_port is taken from InPort.
	Match   of.Match
	Actions []of.Action
	Data    []byte
}

func packetOutMsg(xid uint32, po PacketOut) ([]byte, error) {
	return appendPacketOut(nil, xid, po)
}

// packetOutField reports whether a packet-out's match carries a field
// (besides in_port): the pipeline's metadata, registers and tunnel
// metadata, which the packet re-enters the pipeline with. OVS refuses a
// packet-out matching on anything else.
func packetOutField(f of.FieldID) bool {
	switch f {
	case of.FieldMetadata, of.FieldTunID, of.FieldTunSrc, of.FieldTunDst,
		of.FieldReg0, of.FieldReg1, of.FieldReg2, of.FieldReg3,
		of.FieldReg4, of.FieldReg5, of.FieldReg6, of.FieldReg7:
		return true
	}
	return false
}

// appendPacketOut appends a PACKET_OUT to b; on error b is as it was.
func appendPacketOut(b []byte, xid uint32, po PacketOut) ([]byte, error) {
	start := len(b)
	b = appendHeader(b, typePacketOut, xid)
	b = be32(b, 0xffffffff) // no buffer
	lenAt := len(b)
	b = be16(b, 0) // actions_len
	b = append(b, 0, 0)
	b = of.AppendPacketOutMatch(b, po.Match, po.InPort, packetOutField)
	actStart := len(b)
	b, err := of.AppendActions(b, po.Actions)
	if err != nil {
		return b[:start], err
	}
	binary.BigEndian.PutUint16(b[lenAt:], uint16(len(b)-actStart))
	b = append(b, po.Data...)
	if len(b)-start > 0xffff {
		return b[:start], fmt.Errorf("openflow: packet-out of %d bytes is too large", len(b)-start)
	}
	return finish(b, start), nil
}

// bundleCtrlMsg builds a BUNDLE_CONTROL message.
func bundleCtrlMsg(xid, bundleID uint32, typ uint16, flags uint16) []byte {
	b := appendHeader(nil, typeBundleControl, xid)
	b = be32(b, bundleID)
	b = be16(b, typ)
	b = be16(b, flags)
	return finish(b, 0)
}

// appendBundleAdd appends a BUNDLE_ADD_MESSAGE wrapping a flow-mod; the inner
// message carries the same xid, as OpenFlow requires.
func appendBundleAdd(b []byte, xid, bundleID uint32, flags uint16, fm of.FlowMod) ([]byte, error) {
	start := len(b)
	b = appendHeader(b, typeBundleAdd, xid)
	b = be32(b, bundleID)
	b = append(b, 0, 0)
	b = be16(b, flags)
	var err error
	b, err = of.AppendFlowMod(b, xid, fm)
	if err != nil {
		return b[:start], err
	}
	if len(b)-start > 0xffff {
		return b[:start], fmt.Errorf("openflow: bundled flow-mod too large")
	}
	return finish(b, start), nil
}

// parseBundleCtrl returns the bundle id and control type of a reply.
func parseBundleCtrl(msg []byte) (uint32, uint16, error) {
	if len(msg) < headerLen+8 {
		return 0, 0, of.ErrTruncated
	}
	b := msg[headerLen:]
	return binary.BigEndian.Uint32(b), binary.BigEndian.Uint16(b[4:]), nil
}

// multipartMsg builds a MULTIPART_REQUEST.
func multipartMsg(xid uint32, typ uint16, body []byte) []byte {
	b := appendHeader(nil, typeMultipartReq, xid)
	b = be16(b, typ)
	b = be16(b, 0)
	b = append(b, 0, 0, 0, 0)
	b = append(b, body...)
	return finish(b, 0)
}

// parseMultipart returns a reply's type, flags and body.
func parseMultipart(msg []byte) (uint16, uint16, []byte, error) {
	if len(msg) < headerLen+8 {
		return 0, 0, nil, of.ErrTruncated
	}
	b := msg[headerLen:]
	return binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:]), b[8:], nil
}

// flowDescRequest asks for every flow in every table.
func flowDescRequest(xid uint32) []byte {
	var body []byte
	body = append(body, of.TableAll, 0, 0, 0)
	body = be32(body, of.PortAny)
	body = be32(body, 0xffffffff) // any group
	body = append(body, 0, 0, 0, 0)
	body = be64(body, 0) // cookie
	body = be64(body, 0) // cookie mask
	body = of.AppendMatch(body, of.Match{})
	return multipartMsg(xid, multipartFlowDesc, body)
}

// parseTableMaxEntries reads max_entries of each table from the body of a
// table-features reply.
func parseTableMaxEntries(body []byte, out map[uint8]uint32) error {
	for len(body) > 0 {
		if len(body) < 64 {
			return of.ErrTruncated
		}
		n := int(binary.BigEndian.Uint16(body))
		if n < 64 || n > len(body) {
			return fmt.Errorf("openflow: table features entry of %d bytes", n)
		}
		out[body[2]] = binary.BigEndian.Uint32(body[60:])
		body = body[n:]
	}
	return nil
}

// tableNamesRequest sets table names with one OFPTFC15_MODIFY table-features
// entry per table and no properties, which leaves everything but the name
// as it is. OVS checks max_entries and the metadata masks against its own
// values, so they repeat what OVS reports.
func tableNamesRequest(xid uint32, names map[uint8]string, maxEntries map[uint8]uint32) []byte {
	var body []byte
	for id := 0; id < 255; id++ {
		name, ok := names[uint8(id)]
		if !ok {
			continue
		}
		body = be16(body, 64)
		body = append(body, uint8(id), tableFeaturesModify, 0, 0, 0, 0)
		var n [tableNameLen]byte
		copy(n[:tableNameLen-1], name)
		body = append(body, n[:]...)
		body = be64(body, ^uint64(0)) // metadata_match
		body = be64(body, ^uint64(0)) // metadata_write
		body = be32(body, 0)          // capabilities
		max, ok := maxEntries[uint8(id)]
		if !ok {
			max = 1000000 // OVS's own default
		}
		body = be32(body, max) // as the switch reports it
	}
	return multipartMsg(xid, multipartTableFeatures, body)
}
