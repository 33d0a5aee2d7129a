package dns_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/dns"
	"github.com/wyvern-sdn/wyvern/dns/dnsmsg"
	"github.com/wyvern-sdn/wyvern/internal/golden"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

func str(s string) *string { return &s }

// newFixture builds, on chassis hv1, hv2 and hv3:
//
//   - network A (dns_domain example.org), subnet A4 10.0.0.0/24 (gateway
//     10.0.0.1 on router R, no dns_nameservers): vm1 (10.0.0.5, the
//     address and MAC of the dig captures in dnsmsg/testdata) and anon
//     (10.0.0.7, no dns_name) on hv1, vm2 (10.0.0.6) on hv2;
//   - network B, the same domain, subnet B4 10.1.0.0/24: vm3 (10.1.0.5)
//     on hv1;
//   - network C, no dns_domain, subnet C4 10.2.0.0/24: c1 on hv1;
//   - network D (example.com), subnet D4 10.3.0.0/24 with dns_nameservers
//     192.0.2.53: d1 on hv1;
//   - network E (example.net), subnet E4 10.4.0.0/24: e1 on hv3 only.
func newFixture(t testing.TB) *topologytest.Fixture {
	t.Helper()
	s := topology.New()
	f := &topologytest.Fixture{Store: s}
	index := uint64(1000)
	must := func(op func(i uint64) error) {
		t.Helper()
		index++
		if err := op(index); err != nil {
			t.Fatal(err)
		}
	}
	for n, c := range []string{"hv1", "hv2", "hv3"} {
		must(func(uint64) error {
			_, err := s.RegisterChassis(0, topology.ChassisSpec{Name: c, EncapIP: fmt.Sprintf("172.31.0.%d", n+1),
				Encaps: []string{topology.TypeVXLAN, topology.TypeGRE}})
			return err
		})
	}
	must(func(i uint64) error {
		_, err := s.CreateNetworks(i, []topology.NetworkSpec{
			{ID: "A", Name: str("A"), DNSDomain: str("example.org.")},
			{ID: "B", Name: str("B"), DNSDomain: str("example.org.")},
			{ID: "C", Name: str("C")},
			{ID: "D", Name: str("D"), DNSDomain: str("example.com")},
			{ID: "E", Name: str("E"), DNSDomain: str("example.net")}})
		return err
	})
	must(func(i uint64) error {
		_, err := s.CreateSubnets(i, []topology.SubnetSpec{
			{ID: "A4", NetworkID: str("A"), CIDR: str("10.0.0.0/24")},
			{ID: "B4", NetworkID: str("B"), CIDR: str("10.1.0.0/24")},
			{ID: "C4", NetworkID: str("C"), CIDR: str("10.2.0.0/24")},
			{ID: "D4", NetworkID: str("D"), CIDR: str("10.3.0.0/24"), DNSNameservers: []string{"192.0.2.53"}},
			{ID: "E4", NetworkID: str("E"), CIDR: str("10.4.0.0/24")}})
		return err
	})
	port := func(id, network, ip, name string) topology.PortSpec {
		return topology.PortSpec{ID: id, NetworkID: str(network), Name: str(id), DNSName: str(name),
			FixedIPs: &[]topology.FixedIPSpec{{IPAddress: ip}}}
	}
	vm1 := port("vm1", "A", "10.0.0.5", "vm1")
	vm1.MACAddress = str("fa:16:3e:00:00:05")
	must(func(i uint64) error {
		_, err := s.CreatePorts(i, []topology.PortSpec{vm1, port("vm2", "A", "10.0.0.6", "VM2."), port("anon", "A", "10.0.0.7", ""),
			port("vm3", "B", "10.1.0.5", "vm3"), port("c1", "C", "10.2.0.5", "c1"), port("d1", "D", "10.3.0.5", "d1"),
			port("e1", "E", "10.4.0.5", "e1")})
		return err
	})
	must(func(i uint64) error {
		_, err := s.CreateRouters(i, []topology.RouterSpec{{ID: "R", Name: str("R")}})
		return err
	})
	must(func(i uint64) error { _, err := s.AddRouterInterface(i, "R", "A4", "R-A4"); return err })
	f.Rebind(t)(
		topologytest.Port{ID: "vm1", Network: "A", Chassis: "hv1", OFPort: 1},
		topologytest.Port{ID: "anon", Network: "A", Chassis: "hv1", OFPort: 2},
		topologytest.Port{ID: "vm2", Network: "A", Chassis: "hv2", OFPort: 1},
		topologytest.Port{ID: "vm3", Network: "B", Chassis: "hv1", OFPort: 3},
		topologytest.Port{ID: "c1", Network: "C", Chassis: "hv1", OFPort: 4},
		topologytest.Port{ID: "d1", Network: "D", Chassis: "hv1", OFPort: 5},
		topologytest.Port{ID: "e1", Network: "E", Chassis: "hv3", OFPort: 1})
	return f
}

var a = netip.MustParseAddr

// TestLookup: a port's query is answered from its own network's names
// only: A for a named port, NXDOMAIN for a name nobody in the network
// has (a port of another network in the same domain included), NODATA
// for AAAA, PTR for a named address of the network and NXDOMAIN for an
// unnamed one; anything else is not the app's (ok false), but REFUSED
// when sent to the subnet's DHCP server address while DHCP hands that
// address out as the DNS server.
func TestLookup(t *testing.T) {
	v := newFixture(t).View()
	const (
		nx      = dnsmsg.RCodeNameError
		refused = dnsmsg.RCodeRefused
	)
	gw, google := a("10.0.0.1"), a("8.8.8.8")
	for _, c := range []struct {
		asker string
		name  string
		typ   uint16
		dst   netip.Addr
		ok    bool
		want  dnsmsg.Answer
	}{
		{"vm1", "vm2.example.org", dnsmsg.TypeA, gw, true, dnsmsg.Answer{Addrs: []netip.Addr{a("10.0.0.6")}, TTL: dns.TTL}},
		{"vm1", "vm2.example.org", dnsmsg.TypeA, google, true, dnsmsg.Answer{Addrs: []netip.Addr{a("10.0.0.6")}, TTL: dns.TTL}},
		{"vm1", "vm1.example.org", dnsmsg.TypeANY, gw, true, dnsmsg.Answer{Addrs: []netip.Addr{a("10.0.0.5")}, TTL: dns.TTL}},
		{"anon", "vm2.example.org", dnsmsg.TypeA, gw, true, dnsmsg.Answer{Addrs: []netip.Addr{a("10.0.0.6")}, TTL: dns.TTL}},
		{"vm1", "vm3.example.org", dnsmsg.TypeA, gw, true, dnsmsg.Answer{RCode: nx, TTL: dns.TTL}},
		{"vm3", "vm2.example.org", dnsmsg.TypeA, a("10.1.0.1"), true, dnsmsg.Answer{RCode: nx, TTL: dns.TTL}},
		// A name it does not know goes on to the server asked, unless
		// that is the network's own DNS address.
		{"vm3", "vm2.example.org", dnsmsg.TypeA, gw, false, dnsmsg.Answer{}},
		{"vm1", "nobody.example.org", dnsmsg.TypeA, google, false, dnsmsg.Answer{}},
		{"vm1", "99.0.0.10.in-addr.arpa", dnsmsg.TypePTR, google, false, dnsmsg.Answer{}},
		{"vm3", "vm3.example.org", dnsmsg.TypeA, gw, true, dnsmsg.Answer{Addrs: []netip.Addr{a("10.1.0.5")}, TTL: dns.TTL}},
		{"vm1", "nobody.example.org", dnsmsg.TypeA, gw, true, dnsmsg.Answer{RCode: nx, TTL: dns.TTL}},
		{"vm1", "vm2.example.org", dnsmsg.TypeAAAA, gw, true, dnsmsg.Answer{TTL: dns.TTL}},
		{"vm1", "6.0.0.10.in-addr.arpa", dnsmsg.TypePTR, gw, true, dnsmsg.Answer{PTR: []string{"vm2.example.org"}, TTL: dns.TTL}},
		{"vm1", "6.0.0.10.in-addr.arpa", dnsmsg.TypeA, gw, true, dnsmsg.Answer{TTL: dns.TTL}},
		{"vm1", "7.0.0.10.in-addr.arpa", dnsmsg.TypePTR, gw, true, dnsmsg.Answer{RCode: nx, TTL: dns.TTL}},
		{"vm1", "99.0.0.10.in-addr.arpa", dnsmsg.TypePTR, gw, true, dnsmsg.Answer{RCode: nx, TTL: dns.TTL}},
		// vm3's address is B's: A's port learns nothing of it.
		{"vm1", "5.0.1.10.in-addr.arpa", dnsmsg.TypePTR, google, false, dnsmsg.Answer{}},
		{"vm1", "5.0.1.10.in-addr.arpa", dnsmsg.TypePTR, gw, true, dnsmsg.Answer{RCode: refused}},
		{"vm1", "google.com", dnsmsg.TypeA, google, false, dnsmsg.Answer{}},
		{"vm1", "google.com", dnsmsg.TypeA, gw, true, dnsmsg.Answer{RCode: refused}},
		{"vm1", "a.b.example.org", dnsmsg.TypeA, google, false, dnsmsg.Answer{}},
		// D4 names its servers: its DHCP server's address is no resolver
		// DHCP handed out, and a query there is not refused.
		{"d1", "google.com", dnsmsg.TypeA, a("10.3.0.1"), false, dnsmsg.Answer{}},
		{"d1", "d1.example.com", dnsmsg.TypeA, a("192.0.2.53"), true, dnsmsg.Answer{Addrs: []netip.Addr{a("10.3.0.5")}, TTL: dns.TTL}},
		// C has no dns_domain: nothing is the app's.
		{"c1", "c1.example.org", dnsmsg.TypeA, a("10.2.0.1"), false, dnsmsg.Answer{}},
		{"c1", "google.com", dnsmsg.TypeA, a("10.2.0.1"), false, dnsmsg.Answer{}},
		{"c1", "5.0.2.10.in-addr.arpa", dnsmsg.TypePTR, a("10.2.0.1"), false, dnsmsg.Answer{}},
	} {
		asker := topologytest.MustPort(t, v, c.asker)
		q := dnsmsg.Query{Question: dnsmsg.Question{Name: c.name, Type: c.typ, Class: dnsmsg.ClassINET},
			IPSrc: asker.FixedIPs[0].Addr, IPDst: c.dst}
		got, ok := dns.Lookup(v, asker, q)
		if ok != c.ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s asks %s for %s type %d: %+v %v, want %+v %v", c.asker, c.dst, c.name, c.typ, got, ok, c.want, c.ok)
		}
	}
	q := dnsmsg.Query{Question: dnsmsg.Question{Name: "vm2.example.org", Type: dnsmsg.TypeA, Class: 3}, IPDst: gw}
	if got, ok := dns.Lookup(v, topologytest.MustPort(t, v, "vm1"), q); ok {
		t.Errorf("a CHAOS-class query is answered: %+v", got)
	}
}

// TestFlows: a ServiceClassifier flow for each network with a dns_domain
// that the bridge hosts, and a punt flow, through the port's meter, for
// each of its local ports that is not a router's.
func TestFlows(t *testing.T) {
	f := newFixture(t)
	v := f.View()
	flows := (dns.App{}).Flows(v, topologytest.Bridge("hv1"))
	golden.Check(t, "fixture_hv1", of.FormatFlows(flows, f.Names("hv1")))

	var classified []string
	punted := map[uint32]of.Flow{}
	for _, fl := range flows {
		switch fl.Table {
		case pipeline.Table(pipeline.ServiceClassifier):
			c, _ := fl.Match.Get(pipeline.NetworkKey.Field)
			n, _ := v.NetworkByKey(uint32(c.Value))
			classified = append(classified, n.ID)
			if fl.Cookie != pipeline.NewCookie(0, pipeline.AppDNS, pipeline.NetworkObject(n.Key)) ||
				!reflect.DeepEqual(fl.Actions, []of.Action{of.GotoTable{Table: pipeline.Table(pipeline.DNS)}}) {
				t.Errorf("classifier flow of %s: %s", n.ID, fl)
			}
			if c, ok := fl.Match.Get(of.FieldUDPDst); !ok || c.Value != 53 {
				t.Errorf("classifier flow of %s is not for UDP 53: %s", n.ID, fl)
			}
		case pipeline.Table(pipeline.DNS):
			c, _ := fl.Match.Get(pipeline.SrcPortKey.Field)
			punted[uint32(c.Value)] = fl
		default:
			t.Errorf("flow in table %d: %s", fl.Table, fl)
		}
	}
	slices.Sort(classified)
	if fmt.Sprint(classified) != "[A B D]" {
		t.Errorf("classifier flows for %v, want A, B and D (C has no domain, E is not on hv1)", classified)
	}
	for _, id := range []string{"vm1", "anon", "vm3", "d1"} {
		p := topologytest.MustPort(t, v, id)
		fl, ok := punted[p.Key]
		if !ok {
			t.Errorf("no DNS punt flow for %s", id)
			continue
		}
		want := []of.Action{pipeline.Punt(pipeline.ReasonDNS, pipeline.PortMeter(p.Key))}
		if !reflect.DeepEqual(fl.Actions, want) || fl.Cookie != pipeline.NewCookie(0, pipeline.AppDNS, pipeline.PortObject(p.Key)) {
			t.Errorf("%s: %s, want a punt through meter %d", id, fl, pipeline.PortMeter(p.Key))
		}
		delete(punted, p.Key)
	}
	for key, fl := range punted {
		p, _ := v.PortByKey(key)
		t.Errorf("DNS punt flow for %s (c1 has no domain, vm2 and e1 are remote, R-A4 is a router's): %s", p.ID, fl)
	}
	if got := (dns.App{}).Flows(v, topologytest.Bridge("hv3")); len(got) != 2 {
		t.Errorf("hv3 (E's e1 only) has %d flows, want E's classifier and e1's punt: %v", len(got), got)
	}
}

// readPcap returns the frames of a classic little-endian pcap file.
func readPcap(t testing.TB, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("dnsmsg", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
		t.Fatalf("%s: not a little-endian pcap", name)
	}
	var frames [][]byte
	for b = b[24:]; len(b) >= 16; {
		n := int(binary.LittleEndian.Uint32(b[8:12]))
		frames = append(frames, b[16:16+n])
		b = b[16+n:]
	}
	return frames
}

// queryFrame is a VM's query as it reaches the switch.
func queryFrame(src, dst netip.Addr, id uint16, name string, typ uint16) []byte {
	msg := binary.BigEndian.AppendUint16(nil, id)
	msg = append(msg, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0) // RD, one question
	for l := range strings.SplitSeq(name, ".") {
		msg = append(msg, byte(len(l)))
		msg = append(msg, l...)
	}
	msg = append(msg, 0)
	msg = binary.BigEndian.AppendUint16(msg, typ)
	msg = binary.BigEndian.AppendUint16(msg, dnsmsg.ClassINET)
	f := []byte{0xfa, 0x16, 0x3e, 0, 0, 1, 0xfa, 0x16, 0x3e, 0, 0, 5, 0x08, 0x00}
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(msg)))
	ip = append(append(ip, src.AsSlice()...), dst.AsSlice()...)
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := []byte{0x9c, 0x40, 0, 53, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(msg)))
	return append(append(append(f, ip...), udp...), msg...)
}

// dnsReply is a reply frame's DNS message, decoded independently of
// dnsmsg: its header and its A records.
type dnsReply struct {
	ethDst, ethSrc net.HardwareAddr
	ipSrc, ipDst   netip.Addr
	id, flags      uint16
	an             int
	addrs          []netip.Addr
	ttls           []uint32
}

func decodeReply(t testing.TB, f []byte) dnsReply {
	t.Helper()
	if len(f) < 14+20+8+12 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[14] != 0x45 || f[23] != 17 {
		t.Fatalf("not an untagged IPv4/UDP frame: %x", f)
	}
	if sp := binary.BigEndian.Uint16(f[34:]); sp != 53 {
		t.Fatalf("UDP source port %d", sp)
	}
	m := f[42:]
	r := dnsReply{ethDst: f[0:6], ethSrc: f[6:12], ipSrc: netip.AddrFrom4([4]byte(f[26:30])), ipDst: netip.AddrFrom4([4]byte(f[30:34])),
		id: binary.BigEndian.Uint16(m), flags: binary.BigEndian.Uint16(m[2:]), an: int(binary.BigEndian.Uint16(m[6:]))}
	if qd := binary.BigEndian.Uint16(m[4:]); qd != 1 {
		t.Fatalf("%d questions", qd)
	}
	skipName := func(i int) int {
		for m[i] != 0 {
			if m[i]&0xc0 == 0xc0 {
				return i + 2
			}
			i += 1 + int(m[i])
		}
		return i + 1
	}
	i := skipName(12) + 4
	for range r.an {
		i = skipName(i)
		typ, rdlen := binary.BigEndian.Uint16(m[i:]), int(binary.BigEndian.Uint16(m[i+8:]))
		if typ == dnsmsg.TypeA && rdlen == 4 {
			r.addrs = append(r.addrs, netip.AddrFrom4([4]byte(m[i+10:i+14])))
			r.ttls = append(r.ttls, binary.BigEndian.Uint32(m[i+4:]))
		}
		i += 10 + rdlen
	}
	return r
}

func punt(v *view.View, t testing.TB, port string, inPort uint32, frame []byte) app.Punt {
	t.Helper()
	p := topologytest.MustPort(t, v, port)
	pkt, _ := of.ParsePacket(frame)
	return app.Punt{Reason: pipeline.ReasonDNS, Table: pipeline.Table(pipeline.DNS), InPort: inPort,
		Fields: of.Match{}.Reg(pipeline.SrcPortKey, uint64(p.Key)).Reg(pipeline.NetworkKey, uint64(p.NetworkKey)),
		Packet: pkt, Frame: frame}
}

// TestOnPunt: dig's query for vm1.example.org, punted from vm1's port,
// is replied to out of the port it came in by, with vm1's address; a
// query for another network's name gets NXDOMAIN; a query for a name
// that is not the network's, to another server, goes on to L2Lookup
// unchanged, as does anything that is not a query or comes from no
// known port.
func TestOnPunt(t *testing.T) {
	v := newFixture(t).View()
	br := topologytest.Bridge("hv1")
	for _, file := range []string{"dig_noedns.pcap", "dig_edns.pcap"} {
		frame := readPcap(t, file)[0]
		ans := (dns.App{}).OnPunt(v, br, punt(v, t, "vm1", 1, frame))
		if ans.Outcome != app.Replied || len(ans.Send) != 1 || ans.Reinject || len(ans.Flows) != 0 {
			t.Fatalf("%s: %+v, want one reply", file, ans)
		}
		if !reflect.DeepEqual(ans.Send[0].Actions, []of.Action{of.Output{Port: 1}}) {
			t.Errorf("%s: reply sent by %v, want out of port 1", file, ans.Send[0].Actions)
		}
		r := decodeReply(t, ans.Send[0].Frame)
		id := binary.BigEndian.Uint16(frame[42:])
		if r.id != id || r.flags&0x8000 == 0 || r.flags&0xf != 0 || r.an != 1 ||
			!reflect.DeepEqual(r.addrs, []netip.Addr{a("10.0.0.5")}) || r.ttls[0] != dns.TTL {
			t.Errorf("%s: reply %+v, want id %d, QR, NOERROR, one A 10.0.0.5 TTL %d", file, r, id, dns.TTL)
		}
		if r.ipSrc != a("10.0.0.1") || r.ipDst != a("10.0.0.5") || r.ethDst.String() != "fa:16:3e:00:00:05" {
			t.Errorf("%s: reply from %v to %v %v, want 10.0.0.1 to vm1", file, r.ipSrc, r.ipDst, r.ethDst)
		}
	}

	// vm3 is B's: asked of 8.8.8.8, the query goes on to 8.8.8.8.
	ans := (dns.App{}).OnPunt(v, br, punt(v, t, "vm1", 1, queryFrame(a("10.0.0.5"), a("8.8.8.8"), 7, "vm3.example.org", dnsmsg.TypeA)))
	if ans.Outcome != app.PassedOn || !ans.Reinject || len(ans.Send) != 0 {
		t.Fatalf("vm3.example.org from vm1 to 8.8.8.8: %+v, want passed on", ans)
	}

	passed := app.Answer{Outcome: app.PassedOn, Reinject: true, Resubmit: pipeline.Table(pipeline.L2Lookup)}
	dig := readPcap(t, "dig_noedns.pcap")[0]
	for _, c := range []struct {
		name string
		p    app.Punt
	}{
		{"google.com to 8.8.8.8", punt(v, t, "vm1", 1, queryFrame(a("10.0.0.5"), a("8.8.8.8"), 8, "google.com", dnsmsg.TypeA))},
		{"a query of C, which has no domain", punt(v, t, "c1", 4, queryFrame(a("10.2.0.5"), a("10.2.0.1"), 9, "c1.example.org", dnsmsg.TypeA))},
		{"a truncated frame", punt(v, t, "vm1", 1, dig[:50])},
		{"a query from no known port", func() app.Punt {
			p := punt(v, t, "vm1", 1, dig)
			p.Fields = of.Match{}.Reg(pipeline.SrcPortKey, 9999)
			return p
		}()},
	} {
		if ans := (dns.App{}).OnPunt(v, br, c.p); !reflect.DeepEqual(ans, passed) {
			t.Errorf("%s: %+v, want passed on to L2Lookup", c.name, ans)
		}
	}
}

// TestPTRForFQDNName: a port whose dns_name is a fully qualified name in
// its network's domain (which Neutron allows, and which Lookup answers A
// for) has that name as its PTR, not the name with the domain again.
func TestPTRForFQDNName(t *testing.T) {
	f := newFixture(t)
	if _, err := f.Store.UpdatePort(5000, topology.PortSpec{ID: "vm2", DNSName: str("vm2.example.org.")}); err != nil {
		t.Fatal(err)
	}
	v := f.View()
	vm1 := topologytest.MustPort(t, v, "vm1")
	for _, c := range []struct {
		q    dnsmsg.Question
		want dnsmsg.Answer
	}{
		{dnsmsg.Question{Name: "vm2.example.org", Type: dnsmsg.TypeA, Class: dnsmsg.ClassINET}, dnsmsg.Answer{Addrs: []netip.Addr{a("10.0.0.6")}, TTL: dns.TTL}},
		{dnsmsg.Question{Name: "6.0.0.10.in-addr.arpa", Type: dnsmsg.TypePTR, Class: dnsmsg.ClassINET}, dnsmsg.Answer{PTR: []string{"vm2.example.org"}, TTL: dns.TTL}},
	} {
		if got, ok := dns.Lookup(v, vm1, dnsmsg.Query{Question: c.q, IPDst: a("10.0.0.1")}); !ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s type %d: %+v %v, want %+v", c.q.Name, c.q.Type, got, ok, c.want)
		}
	}
}
