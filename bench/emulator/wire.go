package emulator

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// OpenFlow 1.5 message types and constants the emulated switch speaks
// (the switch's side of what package ofctl sends).
const (
	typeHello          = 0
	typeError          = 1
	typeEchoRequest    = 2
	typeEchoReply      = 3
	typeExperimenter   = 4
	typeFeaturesReq    = 5
	typeFeaturesReply  = 6
	typeGetConfigReq   = 7
	typeSetConfig      = 9
	typePacketIn       = 10
	typePacketOut      = 13
	typeFlowMod        = 14
	typeMultipartReq   = 18
	typeMultipartReply = 19
	typeBarrierReq     = 20
	typeBarrierReply   = 21
	typeRoleRequest    = 24
	typeRoleReply      = 25
	typeMeterMod       = 29
	typeBundleControl  = 33
	typeBundleAdd      = 34

	headerLen = 8

	multipartFlowDesc      = 1
	multipartMeterStats    = 9
	multipartTableFeatures = 12
	multipartPortDesc      = 13
	multipartReplyMore     = 1

	bundleOpenRequest    = 0
	bundleOpenReply      = 1
	bundleCloseRequest   = 2
	bundleCloseReply     = 3
	bundleCommitRequest  = 4
	bundleCommitReply    = 5
	bundleDiscardRequest = 6
	bundleDiscardReply   = 7

	nxVendorID           = 0x00002320
	nxtSetPacketInFormat = 16
	nxtPacketIn2         = 30
	nxPacketInFormatIn2  = 2

	// Errors the emulator answers with (OpenFlow 1.5 numbering).
	errBadRequest        = 1
	errBadType           = 1 // OFPBRC_BAD_TYPE
	errBadMultipart      = 2 // OFPBRC_BAD_MULTIPART
	errMeterModFailed    = 12
	errMeterExists       = 1
	errMeterUnknown      = 3
	errRoleRequestFailed = 11
	errRoleStale         = 0
	errBundleFailed      = 17
	errBundleBadID       = 3 // OFPBFC_BAD_ID

	// maxMultipartBody keeps a reply part under the 64 KiB message limit.
	maxMultipartBody = 60000
)

func appendHeader(b []byte, typ uint8, xid uint32) []byte {
	b = append(b, of.OFVersion15, typ, 0, 0)
	return binary.BigEndian.AppendUint32(b, xid)
}

// finish sets the length of the message that starts at start.
func finish(b []byte, start int) []byte {
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b
}

func be16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func be32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func be64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func xidOf(msg []byte) uint32 { return binary.BigEndian.Uint32(msg[4:]) }

// readMsg reads one whole message into a fresh buffer.
func readMsg(r io.Reader) ([]byte, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[2:]))
	if n < headerLen {
		return nil, fmt.Errorf("openflow: message length %d below header size", n)
	}
	msg := make([]byte, n)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(r, msg[headerLen:]); err != nil {
		return nil, err
	}
	return msg, nil
}

// helloMsg offers OpenFlow 1.5 with a version bitmap.
func helloMsg(xid uint32) []byte {
	b := appendHeader(nil, typeHello, xid)
	b = be16(b, 1) // OFPHET_VERSIONBITMAP
	b = be16(b, 8)
	b = be32(b, 1<<of.OFVersion15)
	return finish(b, 0)
}

func simpleReply(typ uint8, xid uint32) []byte { return finish(appendHeader(nil, typ, xid), 0) }

// errorMsg answers req with an error carrying its first 64 bytes.
func errorMsg(req []byte, typ, code uint16) []byte {
	b := appendHeader(nil, typeError, xidOf(req))
	b = be16(b, typ)
	b = be16(b, code)
	b = append(b, req[:min(len(req), 64)]...)
	return finish(b, 0)
}

func featuresReply(xid uint32, dpid uint64, nTables uint8) []byte {
	b := appendHeader(nil, typeFeaturesReply, xid)
	b = be64(b, dpid)
	b = be32(b, 0) // n_buffers: OVS buffers nothing
	b = append(b, nTables, 0, 0, 0)
	b = be32(b, 0x4f) // flow, table, port, group stats, IP reassembly
	b = be32(b, 0)
	return finish(b, 0)
}

// multipartReplies splits entries into MULTIPART_REPLY parts under the
// message size limit, the last without the "more" flag.
func multipartReplies(xid uint32, typ uint16, entries [][]byte) []byte {
	var out []byte
	part := func(body []byte, more bool) {
		start := len(out)
		out = appendHeader(out, typeMultipartReply, xid)
		out = be16(out, typ)
		var flags uint16
		if more {
			flags = multipartReplyMore
		}
		out = be16(out, flags)
		out = append(out, 0, 0, 0, 0)
		out = append(out, body...)
		out = finish(out, start)
	}
	var body []byte
	for _, e := range entries {
		if len(body)+len(e) > maxMultipartBody && len(body) > 0 {
			part(body, true)
			body = body[:0]
		}
		body = append(body, e...)
	}
	part(body, false)
	return out
}

// flowDesc encodes a flow as an ofp_flow_desc entry: the match and
// instructions are cut from the flow-mod that package of encodes, so
// the two encodings cannot drift apart.
func flowDesc(f of.Flow) ([]byte, error) {
	fm, err := of.AppendFlowMod(nil, 0, of.FlowMod{Command: of.FlowAdd, Flow: f})
	if err != nil {
		return nil, err
	}
	const fixed = 48
	mlen := int(binary.BigEndian.Uint16(fm[fixed+2:]))
	mpad := (mlen + 7) / 8 * 8
	match, instr := fm[fixed:fixed+mpad], fm[fixed+mpad:]
	b := be16(nil, 0) // length, set below
	b = append(b, 0, 0, f.Table, 0)
	b = be16(b, f.Priority)
	b = be16(b, f.IdleTimeout)
	b = be16(b, f.HardTimeout)
	b = be16(b, 0) // flags
	b = be16(b, 0) // importance
	b = be64(b, f.Cookie)
	b = append(b, match...)
	b = append(b, 0, 0, 0, 4, 0, 0, 0, 0) // ofp_stats: no fields, padded
	b = append(b, instr...)
	binary.BigEndian.PutUint16(b, uint16(len(b)))
	return b, nil
}

// oxms are the OXM fields of a match, without the ofp_match header and
// padding (NXT_PACKET_IN2's metadata property).
func oxms(m of.Match) []byte {
	b := of.AppendMatch(nil, m)
	n := int(binary.BigEndian.Uint16(b[2:]))
	return b[4:n]
}

// appendProp appends an NXT_PACKET_IN2 property padded to 8 bytes.
func appendProp(b []byte, typ uint16, v []byte) []byte {
	start := len(b)
	b = be16(b, typ)
	b = be16(b, uint16(4+len(v)))
	b = append(b, v...)
	for (len(b)-start)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

// packetIn2 builds an NXT_PACKET_IN2 as OVS sends a punt flow's
// controller(userdata=...) action: the frame, its table and cookie, the
// pipeline fields and the userdata.
func packetIn2(xid uint32, table uint8, cookie uint64, match of.Match, userdata, frame []byte) []byte {
	b := appendHeader(nil, typeExperimenter, xid)
	b = be32(b, nxVendorID)
	b = be32(b, nxtPacketIn2)
	b = appendProp(b, 0, frame)                            // NXPINT_PACKET
	b = appendProp(b, 1, be32(nil, uint32(len(frame))))    // NXPINT_FULL_LEN
	b = appendProp(b, 3, []byte{table})                    // NXPINT_TABLE_ID
	b = appendProp(b, 4, be64([]byte{0, 0, 0, 0}, cookie)) // NXPINT_COOKIE (8-aligned value)
	b = appendProp(b, 5, []byte{1})                        // NXPINT_REASON: action
	b = appendProp(b, 6, oxms(match))                      // NXPINT_METADATA
	if len(userdata) > 0 {
		b = appendProp(b, 7, userdata) // NXPINT_USERDATA
	}
	return finish(b, 0)
}

// packetIn builds a standard OpenFlow 1.5 PACKET_IN (table miss), as a
// switch sends one to a controller that did not ask for NXT_PACKET_IN2.
func packetIn(xid uint32, table uint8, cookie uint64, match of.Match, frame []byte) []byte {
	b := appendHeader(nil, typePacketIn, xid)
	b = be32(b, 0xffffffff) // no buffer
	b = be16(b, uint16(len(frame)))
	b = append(b, 0, table) // reason: table miss
	b = be64(b, cookie)
	b = of.AppendMatch(b, match)
	b = append(b, 0, 0)
	b = append(b, frame...)
	return finish(b, 0)
}

// packetOut is what the emulator reads of a PACKET_OUT: its frame, its
// in_port, how many actions it has and the port of its last output.
type packetOut struct {
	frame    []byte
	inPort   uint32
	nActions int
	output   uint32
}

// parsePacketOut reads a PACKET_OUT without copying: the frame is msg's.
func parsePacketOut(msg []byte) (packetOut, error) {
	var po packetOut
	if len(msg) < headerLen+16 {
		return po, of.ErrTruncated
	}
	actLen := int(binary.BigEndian.Uint16(msg[12:]))
	mlen := int(binary.BigEndian.Uint16(msg[18:]))
	off := 16 + (mlen+7)/8*8
	if mlen < 4 || off+actLen > len(msg) {
		return po, of.ErrTruncated
	}
	for o := 20; o+4 <= 16+mlen; { // OXMs: class, field<<1|hasmask, length
		hdr := binary.BigEndian.Uint32(msg[o:])
		n := int(hdr & 0xff)
		if o+4+n > 16+mlen {
			return po, of.ErrTruncated
		}
		if hdr>>9 == 0x8000<<7 && n == 4 { // OFPXMC_OPENFLOW_BASIC, field 0 (OFPXMT_OFB_IN_PORT)
			po.inPort = binary.BigEndian.Uint32(msg[o+4:])
		}
		o += 4 + n
	}
	for a := msg[off : off+actLen]; len(a) >= 4; {
		typ, n := binary.BigEndian.Uint16(a), int(binary.BigEndian.Uint16(a[2:]))
		if n < 4 || n > len(a) {
			return po, of.ErrTruncated
		}
		po.nActions++
		if typ == 0 && n >= 8 { // OFPAT_OUTPUT
			po.output = binary.BigEndian.Uint32(a[4:])
		}
		a = a[n:]
	}
	po.frame = msg[off+actLen:]
	return po, nil
}

// portDesc encodes an ofp_port (OpenFlow 1.5, with an Ethernet property).
func portDesc(no uint32, mac []byte, name string) []byte {
	b := be32(nil, no)
	b = be16(b, 72) // length: 40 + the 32-byte Ethernet property
	b = append(b, 0, 0)
	b = append(b, mac...)
	b = append(b, 0, 0)
	var n [16]byte
	copy(n[:15], name)
	b = append(b, n[:]...)
	b = be32(b, 0) // config
	b = be32(b, 4) // state: live
	b = be16(b, 0) // OFPPDPT_ETHERNET
	b = be16(b, 32)
	b = append(b, 0, 0, 0, 0)
	b = be32(b, 0x2000) // curr: 10 Gb full duplex
	b = be32(b, 0x2000)
	b = be32(b, 0x2000)
	b = be32(b, 0x2000)
	b = be32(b, 10000000)
	b = be32(b, 10000000)
	return b
}
