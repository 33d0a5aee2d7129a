package dnsmsg

import (
	"bytes"
	"net/netip"
	"testing"
)

// FuzzParseQuery: ParseQuery never panics; whatever it accepts, Reply
// answers, and the reply decodes (both checksums right) as a response
// to the same ID and question, from and to the query's addresses.
func FuzzParseQuery(f *testing.F) {
	for _, file := range []string{"testdata/dig_edns.pcap", "testdata/dig_noedns.pcap"} {
		for _, fr := range readPcap(f, file) {
			f.Add(fr)
		}
	}
	tci := uint16(5)
	f.Add(vmFrame(dnsQuery(1, "5.0.0.10.in-addr.arpa", TypePTR, true)))
	f.Add(vmFrame(dnsQuery(2, "vm1.example.org", TypeAAAA, false)))
	f.Add(udpFrame(vmMAC, gwMAC, &tci, vmIP, dnsIP, vmPort, 53, dnsQuery(3, "a.b", TypeANY, true)))
	f.Add(vmFrame(append(dnsQuery(4, "x", TypeA, false)[:12], 1, 'a', 0xc0, 12, 0, 1, 0, 1)))
	f.Fuzz(func(t *testing.T, frame []byte) {
		q, err := ParseQuery(frame)
		if err != nil {
			return
		}
		var a Answer
		switch q.Question.Type {
		case TypeA:
			a = Answer{Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}, TTL: 60}
		case TypeAAAA:
			a = Answer{Addrs: []netip.Addr{netip.MustParseAddr("fd00::5")}, TTL: 60}
		case TypePTR:
			a = Answer{PTR: []string{"vm1.example.org"}, TTL: 60}
		default:
			a = Answer{RCode: RCodeNameError}
		}
		if q.Question.Class != ClassINET {
			a = Answer{}
		}
		out, err := Reply(q, a)
		if err != nil {
			t.Fatalf("Reply to %+v: %v", q, err)
		}
		r := decodeReply(t, out)
		if r.ID != q.ID || r.Flags&0x8000 == 0 || !bytes.EqualFold([]byte(r.QName), []byte(q.Question.Name)) ||
			r.QType != q.Question.Type || r.QClass != q.Question.Class {
			t.Fatalf("reply %+v to query %+v", r, q)
		}
		if r.IPSrc != q.IPDst || r.IPDst != q.IPSrc || r.SrcPort != q.DstPort || r.DstPort != q.SrcPort ||
			r.EthSrc != q.EthDst.String() || r.EthDst != q.EthSrc.String() {
			t.Fatalf("reply addressing %+v for query %+v", r, q)
		}
		if len(r.Answers) != len(a.Addrs)+len(a.PTR) || (q.OPT != (r.OPT != nil)) {
			t.Fatalf("reply %+v for answer %+v", r, a)
		}
		// The reply is not a query: ParseQuery refuses it.
		if _, err := ParseQuery(out); err == nil {
			t.Fatalf("ParseQuery accepts the reply %x", out)
		}
	})
}
