package ofctl

import (
	"testing"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// FuzzParsePacketIn: whatever a switch sends as a packet-in, parsing never
// panics and returns data within the message.
func FuzzParsePacketIn(f *testing.F) {
	f.Add(packetInMsg(1, 3, make([]byte, 60)))
	f.Add(packetInMsg(2, 0xfffffffd, []byte{1, 2, 3}))
	m := packetInMsg(3, 1, make([]byte, 42))
	m[headerLen+16+3] = 0xff // match longer than the message
	f.Add(m)
	f.Add([]byte{of.OFVersion15, typePacketIn, 0, 8, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		pi, err := ParsePacketIn(b)
		if err != nil {
			return
		}
		if len(pi.Data) > len(b) {
			t.Fatalf("packet of %d bytes from a %d-byte message", len(pi.Data), len(b))
		}
		_ = pi.InPort()
	})
}

// FuzzParsePacketIn2: the same for NXT_PACKET_IN2, property by property.
func FuzzParsePacketIn2(f *testing.F) {
	f.Add(packetIn2Msg(1, 3, []byte{1, 'x'}, make([]byte, 60)))
	f.Add(packetIn2Msg(2, 0xfffffffd, nil, []byte{1, 2, 3}))
	m := packetIn2Msg(3, 1, []byte{4}, make([]byte, 42))
	m[16+3] = 0xff // a property longer than the message
	f.Add(m)
	f.Fuzz(func(t *testing.T, b []byte) {
		pi, err := ParsePacketIn2(b)
		if err != nil {
			return
		}
		if len(pi.Data)+len(pi.UserData) > len(b) {
			t.Fatalf("%d bytes of packet and userdata from a %d-byte message", len(pi.Data)+len(pi.UserData), len(b))
		}
		_ = pi.InPort()
	})
}

// FuzzHello: version negotiation never panics on a malformed HELLO.
func FuzzHello(f *testing.F) {
	f.Add(helloMsg(1))
	f.Add([]byte{0x04, 0, 0, 16, 0, 0, 0, 1, 0, 1, 0, 8, 0, 0, 0, 0x10})
	f.Fuzz(func(t *testing.T, b []byte) { _ = helloSupports15(b) })
}
