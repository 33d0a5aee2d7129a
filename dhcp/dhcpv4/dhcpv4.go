// Package dhcpv4 is a pure DHCPv4 codec for a controller that answers DHCP
// from OpenFlow punts: it parses a client's message out of the Ethernet
// frame Open vSwitch sent to the controller, encodes a port's reply
// options once (they travel in a flow's controller(userdata=…)), and
// builds the whole Ethernet frame that answers the client.
//
//	ParseRequest(frame)            → Request
//	Options.Encode()               → option TLVs, per port, once
//	DecodeOptions(TLVs)            → Options (exact inverse of Encode)
//	Reply(req, Offer|Ack|MsgNak, …)   → answer frame
//
// It does no I/O, reads no clock, keeps no state and does not log. It
// follows RFC 2131 (§4.1 addressing, §4.3 server behaviour), RFC 2132
// (options) and RFC 3442 (classless static routes).
package dhcpv4

import "fmt"

// MessageType is the DHCP message type, option 53 (RFC 2132 §9.6).
type MessageType uint8

// Message types.
const (
	MsgDiscover MessageType = 1
	MsgOffer    MessageType = 2
	MsgRequest  MessageType = 3
	MsgDecline  MessageType = 4
	MsgAck      MessageType = 5
	MsgNak      MessageType = 6
	MsgRelease  MessageType = 7
	MsgInform   MessageType = 8
)

var messageTypeNames = [...]string{
	MsgDiscover: "DHCPDISCOVER", MsgOffer: "DHCPOFFER", MsgRequest: "DHCPREQUEST",
	MsgDecline: "DHCPDECLINE", MsgAck: "DHCPACK", MsgNak: "DHCPNAK",
	MsgRelease: "DHCPRELEASE", MsgInform: "DHCPINFORM",
}

func (t MessageType) String() string {
	if int(t) < len(messageTypeNames) && messageTypeNames[t] != "" {
		return messageTypeNames[t]
	}
	return fmt.Sprintf("DHCP message type %d", uint8(t))
}

// fromClient reports whether a client sends messages of type t.
func (t MessageType) fromClient() bool {
	switch t {
	case MsgDiscover, MsgRequest, MsgDecline, MsgRelease, MsgInform:
		return true
	}
	return false
}

// Option codes this package knows (RFC 2132 unless noted).
const (
	optPad             = 0
	optSubnetMask      = 1
	optRouter          = 3
	optDNS             = 6
	optHostName        = 12
	optDomainName      = 15
	optMTU             = 26
	optRequestedIP     = 50
	optLease           = 51
	optOverload        = 52
	optMessageType     = 53
	optServerID        = 54
	optParamList       = 55
	optMessage         = 56
	optMaxMessage      = 57
	optT1              = 58
	optT2              = 59
	optClientID        = 61
	optClasslessRoutes = 121 // RFC 3442
	optEnd             = 255
)

// BOOTP layout (RFC 2131 §2, figure 1).
const (
	bootRequest = 1
	bootReply   = 2
	htypeEther  = 1
	// bootpFixed is the length of the fixed part, op to file.
	bootpFixed = 236
	// bootpMin is the shortest BOOTP message this package sends: RFC 1542
	// §2.1 asks for 300 bytes, and some clients drop shorter ones.
	bootpMin = 300
	// minMaxMessage is the IP datagram every client must accept (RFC 2131
	// §2, RFC 2132 §9.10).
	minMaxMessage = 576

	portServer = 67
	portClient = 68

	flagBroadcast = 0x8000
)

var magicCookie = [4]byte{99, 130, 83, 99}
