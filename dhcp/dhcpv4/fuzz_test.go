package dhcpv4_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/wyvern-sdn/wyvern/dhcp/dhcpv4"
)

// FuzzParseRequest: ParseRequest never panics; an accepted request,
// written back into a frame, parses to the same Request; answering it
// never panics, and an answer it builds has correct headers.
func FuzzParseRequest(f *testing.F) {
	for _, name := range []string{"udhcpc_discover", "udhcpc_request", "dhclient_discover", "dhclient_request", "udhcpc_renew", "udhcpc_release"} {
		f.Add(readHex(f, name))
	}
	r, _ := dhcpv4.ParseRequest(readHex(f, "udhcpc_discover"))
	r.Tagged, r.TCI = true, 100
	f.Add(buildRequest(r))
	opts := mustEncode(f, fullOptions())
	f.Fuzz(func(t *testing.T, frame []byte) {
		r, err := dhcpv4.ParseRequest(frame)
		if err != nil {
			return
		}
		again, err := dhcpv4.ParseRequest(buildRequest(r))
		if err != nil {
			t.Fatalf("rebuilt frame of %+v: %v", r, err)
		}
		if !reflect.DeepEqual(again, r) {
			t.Fatalf("re-parse\n got %+v\nwant %+v", again, r)
		}
		for _, typ := range []dhcpv4.MessageType{dhcpv4.MsgOffer, dhcpv4.MsgAck, dhcpv4.MsgNak} {
			yiaddr := a("10.0.0.5")
			if r.Type == dhcpv4.MsgInform && typ == dhcpv4.MsgAck {
				yiaddr = zero
			}
			if f, err := dhcpv4.Reply(r, typ, yiaddr, serverMAC, opts, "no"); err == nil {
				decodeReply(t, f)
			}
		}
	})
}

// FuzzDecodeOptions: DecodeOptions never panics, and what it accepts
// encodes back to exactly the same bytes; Reply never panics on them.
func FuzzDecodeOptions(f *testing.F) {
	f.Add(mustEncode(f, fullOptions()))
	f.Add(mustEncode(f, noRouterOptions()))
	f.Add(mustEncode(f, renewOptions()))
	f.Add([]byte{})
	req, _ := dhcpv4.ParseRequest(readHex(f, "udhcpc_request"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = dhcpv4.Reply(req, dhcpv4.MsgAck, a("10.0.0.5"), serverMAC, b, "")
		o, err := dhcpv4.DecodeOptions(b)
		if err != nil {
			return
		}
		got, err := o.Encode()
		if err != nil {
			t.Fatalf("Encode(DecodeOptions(%x) = %+v): %v", b, o, err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("Encode(DecodeOptions(%x)) = %x", b, got)
		}
	})
}
