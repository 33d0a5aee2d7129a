package dhcp_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
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
	"github.com/wyvern-sdn/wyvern/dhcp"
	"github.com/wyvern-sdn/wyvern/dhcp/dhcpv4"
	"github.com/wyvern-sdn/wyvern/internal/golden"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// fixture is a topology built through the store's API, with the raft
// index of its next change.
type fixture struct {
	*topologytest.Fixture
	index uint64
}

func (f *fixture) must(t testing.TB, op func(index uint64) error) {
	t.Helper()
	f.index++
	if err := op(f.index); err != nil {
		t.Fatal(err)
	}
}

func str(s string) *string { return &s }

func portSpec(id, network, mac string, ips ...string) topology.PortSpec {
	fixed := []topology.FixedIPSpec{}
	for _, ip := range ips {
		fixed = append(fixed, topology.FixedIPSpec{IPAddress: ip})
	}
	return topology.PortSpec{ID: id, NetworkID: str(network), Name: str(id), MACAddress: str(mac), FixedIPs: &fixed}
}

// newFixture builds, on chassis hv1 and hv2:
//
//   - network N (dns_domain example.org, MTU 1400): subnet N4
//     10.77.0.0/24 (gateway 10.77.0.1, router R on it, dns_nameservers
//     192.0.2.53 and 198.51.100.53, host route 172.16.0.0/12 via
//     10.77.0.254) and subnet N4off 10.78.0.0/24 (enable_dhcp false);
//     ports v1 (udhcpc's MAC 02:00:00:aa:bb:01, 10.77.0.144, with
//     extra_dhcp_opts tftp-server and 150) and v2 (dhclient's
//     02:00:00:aa:bb:02, 10.77.0.150) on hv1, v3 (02:00:00:aa:bb:03,
//     10.77.0.146) on hv2, noip (no address) and off (10.78.0.5 only)
//     on hv1;
//   - network M (no dns_domain): subnet M4 10.88.0.0/24, gateway
//     10.88.0.1 and no router; port m1 on hv1;
//   - network G (dns_domain example.net): subnet G4 10.99.0.0/24 with
//     gateway_ip null; port g1 on hv1.
//
// The MACs and addresses of v1, v2 and v3 are those of the captured
// clients in dhcpv4/testdata.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{Fixture: &topologytest.Fixture{Store: topology.New()}, index: 1000}
	s := f.Store
	for n, c := range []string{"hv1", "hv2"} {
		f.must(t, func(uint64) error {
			_, err := s.RegisterChassis(0, topology.ChassisSpec{Name: c, EncapIP: fmt.Sprintf("172.31.0.%d", n+1),
				Encaps: []string{topology.TypeVXLAN, topology.TypeGRE}})
			return err
		})
	}
	mtu := 1400
	f.must(t, func(i uint64) error {
		_, err := s.CreateNetworks(i, []topology.NetworkSpec{
			{ID: "N", Name: str("N"), MTU: &mtu, DNSDomain: str("example.org.")},
			{ID: "M", Name: str("M")},
			{ID: "G", Name: str("G"), DNSDomain: str("example.net")}})
		return err
	})
	off := false
	f.must(t, func(i uint64) error {
		_, err := s.CreateSubnets(i, []topology.SubnetSpec{
			{ID: "N4", NetworkID: str("N"), CIDR: str("10.77.0.0/24"),
				DNSNameservers: []string{"192.0.2.53", "198.51.100.53"},
				HostRoutes:     []topology.HostRoute{{Destination: "172.16.0.0/12", NextHop: "10.77.0.254"}}},
			{ID: "N4off", NetworkID: str("N"), CIDR: str("10.78.0.0/24"), EnableDHCP: &off},
			{ID: "M4", NetworkID: str("M"), CIDR: str("10.88.0.0/24")},
			{ID: "G4", NetworkID: str("G"), CIDR: str("10.99.0.0/24"), GatewayNone: true}})
		return err
	})
	v1 := portSpec("v1", "N", "02:00:00:aa:bb:01", "10.77.0.144")
	v1.ExtraDHCPOpts = &[]topology.ExtraDHCPOpt{
		{OptName: "tftp-server", OptValue: "tftp.example.org"},
		{OptName: "150", OptValue: "10.77.0.10,10.77.0.11"},
		{OptName: "bootfile-name", OptValue: "pxelinux.0", IPVersion: 6}, // not DHCPv4's
	}
	f.must(t, func(i uint64) error {
		_, err := s.CreatePorts(i, []topology.PortSpec{v1,
			portSpec("v2", "N", "02:00:00:aa:bb:02", "10.77.0.150"),
			portSpec("v3", "N", "02:00:00:aa:bb:03", "10.77.0.146"),
			portSpec("noip", "N", "02:00:00:aa:bb:04"),
			portSpec("off", "N", "02:00:00:aa:bb:05", "10.78.0.5"),
			portSpec("m1", "M", "02:00:00:aa:bb:06", "10.88.0.10"),
			portSpec("g1", "G", "02:00:00:aa:bb:07", "10.99.0.10")})
		return err
	})
	f.must(t, func(i uint64) error {
		_, err := s.CreateRouters(i, []topology.RouterSpec{{ID: "R", Name: str("R")}})
		return err
	})
	f.must(t, func(i uint64) error { _, err := s.AddRouterInterface(i, "R", "N4", "R-N4"); return err })
	f.Rebind(t)(
		topologytest.Port{ID: "v1", Network: "N", Chassis: "hv1", OFPort: 1},
		topologytest.Port{ID: "v2", Network: "N", Chassis: "hv1", OFPort: 2},
		topologytest.Port{ID: "v3", Network: "N", Chassis: "hv2", OFPort: 1},
		topologytest.Port{ID: "noip", Network: "N", Chassis: "hv1", OFPort: 3},
		topologytest.Port{ID: "off", Network: "N", Chassis: "hv1", OFPort: 4},
		topologytest.Port{ID: "m1", Network: "M", Chassis: "hv1", OFPort: 5},
		topologytest.Port{ID: "g1", Network: "G", Chassis: "hv1", OFPort: 6})
	return f
}

// portFlows are the flows whose cookie is the port's.
func portFlows(flows []of.Flow, p view.Port) []of.Flow {
	var out []of.Flow
	for _, fl := range flows {
		if fl.Cookie == pipeline.NewCookie(0, pipeline.AppDHCP, pipeline.PortObject(p.Key)) {
			out = append(out, fl)
		}
	}
	return out
}

// arpFlows are the app's ARP answers.
func arpFlows(flows []of.Flow) []of.Flow {
	var out []of.Flow
	for _, fl := range flows {
		if fl.Table == pipeline.Table(pipeline.ARPResponder) {
			out = append(out, fl)
		}
	}
	return out
}

// lease is what a request flow's userdata carries.
type lease struct {
	data   []byte // the punt's data: what app.Punt.Data holds
	yiaddr netip.Addr
	mac    net.HardwareAddr
	opts   dhcpv4.Options
}

// requestLease checks a port's two request flows (broadcast and unicast
// to server, same punt) and decodes their userdata.
func requestLease(t testing.TB, flows []of.Flow, p view.Port, server netip.Addr) lease {
	t.Helper()
	fs := portFlows(flows, p)
	if len(fs) != 2 {
		t.Fatalf("%s has %d request flows, want 2: %v", p.ID, len(fs), fs)
	}
	var dsts []string
	for _, fl := range fs {
		if fl.Table != pipeline.Table(pipeline.DHCP) || fl.Priority != dhcp.PriorityRequest {
			t.Errorf("%s: flow in table %d priority %d: %s", p.ID, fl.Table, fl.Priority, fl)
		}
		want := of.Match{}.Reg(pipeline.SrcPortKey, uint64(p.Key)).EthSrc(p.MAC).EthType(of.EthTypeIPv4).
			IPProto(of.IPProtoUDP)
		for _, c := range want.Conds() {
			if got, ok := fl.Match.Get(c.Field); !ok || got != c {
				t.Errorf("%s: match of %s lacks %v", p.ID, fl, c)
			}
		}
		if c, ok := fl.Match.Get(of.FieldUDPSrc); !ok || c.Value != 68 {
			t.Errorf("%s: not from UDP 68: %s", p.ID, fl)
		}
		if c, ok := fl.Match.Get(of.FieldUDPDst); !ok || c.Value != 67 {
			t.Errorf("%s: not to UDP 67: %s", p.ID, fl)
		}
		c, _ := fl.Match.Get(of.FieldIPv4Dst)
		dsts = append(dsts, of.IPv4FromValue(c.Value).String())
	}
	if !(dsts[0] == "255.255.255.255" && dsts[1] == server.String() || dsts[1] == "255.255.255.255" && dsts[0] == server.String()) {
		t.Errorf("%s: request flows to %v, want 255.255.255.255 and %s", p.ID, dsts, server)
	}
	if !reflect.DeepEqual(fs[0].Actions, fs[1].Actions) || len(fs[0].Actions) != 1 {
		t.Fatalf("%s: the two request flows punt differently: %v / %v", p.ID, fs[0].Actions, fs[1].Actions)
	}
	punt, ok := fs[0].Actions[0].(of.Punt)
	if !ok {
		t.Fatalf("%s: action %v is not a punt", p.ID, fs[0].Actions[0])
	}
	if punt.MeterID != pipeline.PortMeter(p.Key) {
		t.Errorf("%s: punt through meter %d, want the port's %d", p.ID, punt.MeterID, pipeline.PortMeter(p.Key))
	}
	reason, data, ok := pipeline.ParsePuntData([]byte(punt.UserData))
	if !ok || reason != pipeline.ReasonDHCP || len(data) < 10 {
		t.Fatalf("%s: userdata %x", p.ID, punt.UserData)
	}
	opts, err := dhcpv4.DecodeOptions(data[10:])
	if err != nil {
		t.Fatalf("%s: options of the userdata: %v", p.ID, err)
	}
	return lease{data: data, yiaddr: netip.AddrFrom4([4]byte(data[0:4])), mac: net.HardwareAddr(data[4:10]), opts: opts}
}

var (
	a         = netip.MustParseAddr
	pfx       = netip.MustParsePrefix
	defaultRt = pfx("0.0.0.0/0")
)

// TestGoldenFlows: the flows on hv1 of the fixture, as ovs-ofctl prints
// them, and on hv2 only v3's.
func TestGoldenFlows(t *testing.T) {
	f := newFixture(t)
	v := f.View()
	for _, c := range []string{"hv1", "hv2"} {
		golden.Check(t, "fixture_"+c, of.FormatFlows((dhcp.App{}).Flows(v, topologytest.Bridge(c)), f.Names(c)))
	}
}

// TestLeaseInUserdata: each port's punt flows carry its whole reply:
// yiaddr, server MAC and options decode to the subnet's mask, router,
// DNS servers, the network's domain and MTU, a lease of 86400 s, the
// server id, the host routes plus the default route via the gateway
// (RFC 3442: a client with option 121 ignores option 3), and the port's
// own extra options (DHCPv4 ones only). Ports that get no DHCP get no
// flows: one in an enable_dhcp=false subnet only, one with no address, a
// router interface, and a port on another chassis.
func TestLeaseInUserdata(t *testing.T) {
	f := newFixture(t)
	v := f.View()
	flows := (dhcp.App{}).Flows(v, topologytest.Bridge("hv1"))
	ri, _ := f.Store.Port("R-N4")
	riMAC, _ := net.ParseMAC(ri.MACAddress)

	n4 := dhcpv4.Options{
		SubnetMask: pfx("0.0.0.0/24"), Router: a("10.77.0.1"),
		DNS: []netip.Addr{a("192.0.2.53"), a("198.51.100.53")}, DomainName: "example.org", MTU: 1400,
		Lease: 86400, ServerID: a("10.77.0.1"),
		Routes: []dhcpv4.Route{{Dst: pfx("172.16.0.0/12"), Via: a("10.77.0.254")}, {Dst: defaultRt, Via: a("10.77.0.1")}},
	}
	v1Opts := n4
	v1Opts.Extra = []dhcpv4.RawOption{
		{Code: 66, Value: []byte("tftp.example.org")},
		{Code: 150, Value: []byte{10, 77, 0, 10, 10, 77, 0, 11}},
	}
	m := topologytest.MustNetwork(t, v, "M")
	g := topologytest.MustNetwork(t, v, "G")
	for _, c := range []struct {
		port, yiaddr string
		server       netip.Addr
		mac          net.HardwareAddr
		opts         dhcpv4.Options
	}{
		{"v1", "10.77.0.144", a("10.77.0.1"), riMAC, v1Opts},
		{"v2", "10.77.0.150", a("10.77.0.1"), riMAC, n4},
		// No router on M's gateway: the service MAC; no domain, no
		// servers: no DNS option.
		{"m1", "10.88.0.10", a("10.88.0.1"), dhcp.ServiceMAC(m.Key), dhcpv4.Options{
			SubnetMask: pfx("0.0.0.0/24"), Router: a("10.88.0.1"), MTU: 1450, Lease: 86400, ServerID: a("10.88.0.1"),
			Routes: []dhcpv4.Route{{Dst: defaultRt, Via: a("10.88.0.1")}}}},
		// No gateway: no router, no default route; the server is the
		// last host and, G having a domain and G4 no servers, the DNS
		// server too.
		{"g1", "10.99.0.10", a("10.99.0.254"), dhcp.ServiceMAC(g.Key), dhcpv4.Options{
			SubnetMask: pfx("0.0.0.0/24"), DNS: []netip.Addr{a("10.99.0.254")}, DomainName: "example.net", MTU: 1450,
			Lease: 86400, ServerID: a("10.99.0.254")}},
	} {
		p := topologytest.MustPort(t, v, c.port)
		l := requestLease(t, flows, p, c.server)
		if l.yiaddr != a(c.yiaddr) {
			t.Errorf("%s: yiaddr %v, want %s", c.port, l.yiaddr, c.yiaddr)
		}
		if !bytes.Equal(l.mac, c.mac) {
			t.Errorf("%s: server MAC %v, want %v", c.port, l.mac, c.mac)
		}
		if !reflect.DeepEqual(l.opts, c.opts) {
			t.Errorf("%s: options\n got %+v\nwant %+v", c.port, l.opts, c.opts)
		}
	}
	for _, id := range []string{"off", "noip", "R-N4", "v3"} {
		if fs := portFlows(flows, topologytest.MustPort(t, v, id)); len(fs) != 0 {
			t.Errorf("%s gets DHCP flows on hv1: %v", id, fs)
		}
	}
	// v3 gets its flows on its own chassis.
	requestLease(t, (dhcp.App{}).Flows(v, topologytest.Bridge("hv2")), topologytest.MustPort(t, v, "v3"), a("10.77.0.1"))
}

// TestServerAddress: with a router interface on the gateway, the server
// has the interface's MAC and the router answers ARP for it (no DHCP ARP
// flow); with no router, or the router down, the service MAC, and nobody
// answers ARP for the gateway (a service MAC answering for it would draw
// the VMs' routed traffic to a MAC no flow knows, to be flooded); with no
// gateway, the subnet's last host address, answered at priority 90 in
// ARPResponder, which the store refuses to give a port, and anything else
// sent to its MAC dropped in L2Lookup.
func TestServerAddress(t *testing.T) {
	f := newFixture(t)
	v := f.View()
	br := topologytest.Bridge("hv1")
	n, m, g := topologytest.MustNetwork(t, v, "N"), topologytest.MustNetwork(t, v, "M"), topologytest.MustNetwork(t, v, "G")

	arpFor := func(flows []of.Flow) map[string]of.Flow {
		out := map[string]of.Flow{}
		for _, fl := range arpFlows(flows) {
			c, _ := fl.Match.Get(of.FieldARPTPA)
			out[of.IPv4FromValue(c.Value).String()] = fl
		}
		return out
	}
	checkARP := func(what string, fl of.Flow, network view.Network, ip string) {
		t.Helper()
		if fl.Priority != 90 {
			t.Errorf("%s: ARP answer at priority %d, want 90", what, fl.Priority)
		}
		if fl.Cookie != pipeline.NewCookie(0, pipeline.AppDHCP, pipeline.NetworkObject(network.Key)) {
			t.Errorf("%s: cookie %#x is not network %d's", what, fl.Cookie, network.Key)
		}
		if c, ok := fl.Match.Get(pipeline.NetworkKey.Field); !ok || c.Value != uint64(network.Key) {
			t.Errorf("%s: not in network %d: %s", what, network.Key, fl)
		}
		mac := dhcp.ServiceMAC(network.Key)
		if !strings.Contains(fl.String(), "set_field:"+mac.String()+"->eth_src") ||
			!strings.Contains(fl.String(), "set_field:"+mac.String()+"->arp_sha") ||
			!strings.Contains(fl.String(), "set_field:"+ip+"->arp_spa") {
			t.Errorf("%s: ARP answer is not %s at %s: %s", what, ip, mac, fl)
		}
	}

	all := (dhcp.App{}).Flows(v, br)
	arps := arpFor(all)
	if len(arps) != 1 {
		t.Errorf("ARP answers for %v, want 10.99.0.254 only", arps)
	}
	for _, gw := range []string{"10.77.0.1", "10.88.0.1"} {
		if fl, ok := arps[gw]; ok {
			t.Errorf("the DHCP app answers ARP for a gateway: %s", fl)
		}
	}
	checkARP("G's last host, no gateway", arps["10.99.0.254"], g, "10.99.0.254")
	dropped := false
	for _, fl := range all {
		if fl.Table == pipeline.Table(pipeline.L2Lookup) && strings.Contains(fl.String(), "dl_dst="+dhcp.ServiceMAC(g.Key).String()) &&
			len(fl.Actions) == 0 {
			dropped = true
		}
	}
	if !dropped {
		t.Error("no drop in L2Lookup for G's service MAC")
	}
	if l := requestLease(t, all, topologytest.MustPort(t, v, "m1"), a("10.88.0.1")); !bytes.Equal(l.mac, dhcp.ServiceMAC(m.Key)) {
		t.Errorf("m1's server MAC with no router on M is %v, want the service MAC", l.mac)
	}
	if got := dhcp.ServiceMAC(0x0a0b0c).String(); got != "02:77:79:0a:0b:0c" {
		t.Errorf("ServiceMAC(0x0a0b0c) = %s", got)
	}

	g4, _ := v.Subnet("G4")
	if got := dhcp.ServerAddress(g4); got != topology.LastHost(g4.Prefix) || got != a("10.99.0.254") {
		t.Errorf("ServerAddress of G4 (no gateway) = %v, want its last host 10.99.0.254", got)
	}
	n4, _ := v.Subnet("N4")
	if got := dhcp.ServerAddress(n4); got != a("10.77.0.1") {
		t.Errorf("ServerAddress of N4 = %v, want its gateway", got)
	}
	_, err := f.Store.CreatePorts(f.index+1, []topology.PortSpec{portSpec("thief", "G", "02:00:00:aa:bb:99", "10.99.0.254")})
	var te *topology.Error
	if !errors.As(err, &te) || te.Type != "IpAddressInUse" {
		t.Errorf("a port on G4's server address: err %v, want IpAddressInUse", err)
	}

	// R down: nobody answers for N's gateway, the server neither; its
	// replies come from the service MAC.
	down := false
	f.must(t, func(i uint64) error {
		_, err := f.Store.UpdateRouter(i, topology.RouterSpec{ID: "R", AdminStateUp: &down})
		return err
	})
	v = f.View()
	flows := (dhcp.App{}).Flows(v, br)
	if fl, ok := arpFor(flows)["10.77.0.1"]; ok {
		t.Errorf("with R down, the DHCP app answers ARP for N's gateway: %s", fl)
	}
	if l := requestLease(t, flows, topologytest.MustPort(t, v, "v1"), a("10.77.0.1")); !bytes.Equal(l.mac, dhcp.ServiceMAC(n.Key)) {
		t.Errorf("with R down, v1's server MAC is %v, want the service MAC", l.mac)
	}
}

// readHex reads a captured client frame from dhcpv4/testdata.
func readHex(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("dhcpv4", "testdata", name+".hex"))
	if err != nil {
		t.Fatal(err)
	}
	var s strings.Builder
	for line := range strings.Lines(string(raw)) {
		if !strings.HasPrefix(line, "#") {
			s.WriteString(strings.TrimSpace(line))
		}
	}
	b, err := hex.DecodeString(s.String())
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

// bootpOff is where BOOTP starts in an untagged frame with a 20-byte IP
// header.
const bootpOff = 14 + 20 + 8

// setOption overwrites the value of an option of a client frame (same
// length). The UDP checksum goes stale; ParseRequest does not check it.
func setOption(t testing.TB, frame []byte, code byte, value []byte) []byte {
	t.Helper()
	f := append([]byte{}, frame...)
	if f[14] != 0x45 {
		t.Fatalf("IP header is not 20 bytes")
	}
	for i := bootpOff + 240; i+1 < len(f) && f[i] != 255; {
		if f[i] == 0 {
			i++
			continue
		}
		l := int(f[i+1])
		if f[i] == code {
			if l != len(value) {
				t.Fatalf("option %d is %d bytes, not %d", code, l, len(value))
			}
			copy(f[i+2:], value)
			return f
		}
		i += 2 + l
	}
	t.Fatalf("no option %d", code)
	return nil
}

// bootReply is a reply frame, decoded independently of dhcpv4.
type bootReply struct {
	ethDst, ethSrc net.HardwareAddr
	ipSrc, ipDst   netip.Addr
	op             byte
	xid            uint32
	yiaddr         netip.Addr
	chaddr         net.HardwareAddr
	opts           map[byte][]byte
}

func decodeReply(t testing.TB, f []byte) bootReply {
	t.Helper()
	if len(f) < bootpOff+240 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[14] != 0x45 || f[14+9] != 17 {
		t.Fatalf("not an untagged IPv4/UDP frame: %x", f)
	}
	udp := f[34:]
	if sp, dp := binary.BigEndian.Uint16(udp), binary.BigEndian.Uint16(udp[2:]); sp != 67 || dp != 68 {
		t.Fatalf("UDP %d→%d, want 67→68", sp, dp)
	}
	b := f[bootpOff:]
	r := bootReply{ethDst: f[0:6], ethSrc: f[6:12], ipSrc: netip.AddrFrom4([4]byte(f[26:30])),
		ipDst: netip.AddrFrom4([4]byte(f[30:34])), op: b[0], xid: binary.BigEndian.Uint32(b[4:]),
		yiaddr: netip.AddrFrom4([4]byte(b[16:20])), chaddr: b[28:34], opts: map[byte][]byte{}}
	if binary.BigEndian.Uint32(b[236:]) != 0x63825363 {
		t.Fatalf("no magic cookie")
	}
	for i := 240; i < len(b) && b[i] != 255; {
		if b[i] == 0 {
			i++
			continue
		}
		if i+2 > len(b) || i+2+int(b[i+1]) > len(b) {
			t.Fatalf("option %d runs past the end", b[i])
		}
		r.opts[b[i]] = b[i+2 : i+2+int(b[i+1])]
		i += 2 + int(b[i+1])
	}
	return r
}

// TestAnswer: from a port's flow data and real client frames, DISCOVER
// gets an OFFER of the port's address, a REQUEST for it an ACK, a REQUEST
// for another address a broadcast NAK, a REQUEST choosing another server
// and a RELEASE nothing, and a malformed frame an error; OnPunt says the
// same and sends the reply out of the port it came in by.
func TestAnswer(t *testing.T) {
	f := newFixture(t)
	v := f.View()
	ri, _ := f.Store.Port("R-N4")
	riMAC, _ := net.ParseMAC(ri.MACAddress)
	hv1 := (dhcp.App{}).Flows(v, topologytest.Bridge("hv1"))
	v1 := requestLease(t, hv1, topologytest.MustPort(t, v, "v1"), a("10.77.0.1"))
	v2 := requestLease(t, hv1, topologytest.MustPort(t, v, "v2"), a("10.77.0.1"))
	v3 := requestLease(t, (dhcp.App{}).Flows(v, topologytest.Bridge("hv2")), topologytest.MustPort(t, v, "v3"), a("10.77.0.1"))
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

	for _, c := range []struct {
		name   string
		data   []byte
		frame  []byte
		typ    dhcpv4.MessageType
		yiaddr string
		ethDst net.HardwareAddr
		ipDst  string
	}{
		// udhcpc sets no broadcast flag: unicast to yiaddr at chaddr.
		{"udhcpc DISCOVER", v1.data, readHex(t, "udhcpc_discover"), dhcpv4.MsgOffer, "10.77.0.144", v1Mac, "10.77.0.144"},
		{"udhcpc REQUEST of 10.77.0.144 from 10.77.0.1", v1.data, readHex(t, "udhcpc_request"), dhcpv4.MsgAck, "10.77.0.144", v1Mac, "10.77.0.144"},
		// dhclient asks for 10.77.0.145, which v2 (10.77.0.150) is not.
		{"dhclient REQUEST of another address", v2.data, readHex(t, "dhclient_request"), dhcpv4.MsgNak, "0.0.0.0", bcast, "255.255.255.255"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := dhcp.Answer(c.data, c.frame)
			if err != nil {
				t.Fatal(err)
			}
			req, err := dhcpv4.ParseRequest(c.frame)
			if err != nil {
				t.Fatal(err)
			}
			r := decodeReply(t, out)
			if r.op != 2 {
				t.Errorf("op %d, want 2 (BOOTREPLY)", r.op)
			}
			if r.xid != req.XID || !bytes.Equal(r.chaddr, req.CHAddr) {
				t.Errorf("xid %#x chaddr %v, want the request's %#x %v", r.xid, r.chaddr, req.XID, req.CHAddr)
			}
			if got := r.opts[53]; len(got) != 1 || dhcpv4.MessageType(got[0]) != c.typ {
				t.Errorf("option 53 = %v, want %v", got, c.typ)
			}
			if r.yiaddr != a(c.yiaddr) {
				t.Errorf("yiaddr %v, want %s", r.yiaddr, c.yiaddr)
			}
			if got := r.opts[54]; !bytes.Equal(got, []byte{10, 77, 0, 1}) {
				t.Errorf("server id %v, want 10.77.0.1", got)
			}
			if !bytes.Equal(r.ethSrc, riMAC) || r.ipSrc != a("10.77.0.1") {
				t.Errorf("from %v %v, want the router interface's %v 10.77.0.1", r.ethSrc, r.ipSrc, riMAC)
			}
			if !bytes.Equal(r.ethDst, c.ethDst) || r.ipDst != a(c.ipDst) {
				t.Errorf("to %v %v, want %v %s", r.ethDst, r.ipDst, c.ethDst, c.ipDst)
			}
			if c.typ != dhcpv4.MsgNak {
				if got := r.opts[51]; binary.BigEndian.Uint32(got) != dhcp.LeaseSeconds || dhcp.LeaseSeconds != 86400 {
					t.Errorf("lease %x, want 86400 s", got)
				}
				if got := r.opts[1]; !bytes.Equal(got, []byte{255, 255, 255, 0}) {
					t.Errorf("mask %v", got)
				}
			} else if len(r.opts[56]) == 0 {
				t.Errorf("NAK without a message: %v", r.opts)
			}

			ans := (dhcp.App{}).OnPunt(v, topologytest.Bridge("hv1"), punt(t, c.data, c.frame, 7))
			if ans.Outcome != app.Replied || len(ans.Send) != 1 || len(ans.Flows) != 0 || ans.Reinject {
				t.Fatalf("OnPunt: %+v", ans)
			}
			if !reflect.DeepEqual(ans.Send[0].Actions, []of.Action{of.Output{Port: 7}}) || !bytes.Equal(ans.Send[0].Frame, out) {
				t.Errorf("OnPunt sends %v %x, want Answer's frame out of port 7", ans.Send[0].Actions, ans.Send[0].Frame)
			}
		})
	}

	// udhcpc's REQUEST, naming 10.77.0.2 as its server: it took another
	// server's offer.
	other := setOption(t, readHex(t, "udhcpc_request"), 54, []byte{10, 77, 0, 2})
	if req, err := dhcpv4.ParseRequest(other); err != nil || req.ServerID != a("10.77.0.2") {
		t.Fatalf("rewritten request: %+v %v", req, err)
	}
	for _, c := range []struct {
		name  string
		data  []byte
		frame []byte
	}{
		{"REQUEST to another server", v1.data, other},
		{"RELEASE", v3.data, readHex(t, "udhcpc_release")},
	} {
		out, err := dhcp.Answer(c.data, c.frame)
		if err != nil || out != nil {
			t.Errorf("%s: Answer = %x, %v; want no reply", c.name, out, err)
		}
		if ans := (dhcp.App{}).OnPunt(v, topologytest.Bridge("hv1"), punt(t, c.data, c.frame, 1)); ans.Outcome != app.Unanswered || len(ans.Send) != 0 {
			t.Errorf("%s: OnPunt %+v, want unanswered", c.name, ans)
		}
	}

	discover := readHex(t, "udhcpc_discover")
	for _, c := range []struct {
		name  string
		data  []byte
		frame []byte
	}{
		{"truncated frame", v1.data, discover[:bootpOff+100]},
		{"ARP frame", v1.data, append(append([]byte{}, discover[:12]...), 0x08, 0x06)},
		{"short punt data", v1.data[:9], discover},
	} {
		if out, err := dhcp.Answer(c.data, c.frame); err == nil {
			t.Errorf("%s: Answer = %x, want an error", c.name, out)
		}
		if ans := (dhcp.App{}).OnPunt(v, topologytest.Bridge("hv1"), punt(t, c.data, c.frame, 1)); ans.Outcome != app.Malformed || len(ans.Send) != 0 {
			t.Errorf("%s: OnPunt %+v, want malformed", c.name, ans)
		}
	}
}

var v1Mac = net.HardwareAddr{0x02, 0, 0, 0xaa, 0xbb, 0x01}

// punt is the punt a request flow's packet-in gives.
func punt(t testing.TB, data, frame []byte, inPort uint32) app.Punt {
	t.Helper()
	pkt, _ := of.ParsePacket(frame)
	return app.Punt{Reason: pipeline.ReasonDHCP, Data: data, Table: pipeline.Table(pipeline.DHCP), InPort: inPort,
		Packet: pkt, Frame: frame}
}

// affects applies a change and returns the scope the app gives it on
// hv1, checking that recomputing only that scope gives the full flows.
func affects(t *testing.T, f *fixture, change func(i uint64) error, changes ...topology.Change) (app.Scope, *view.View, *view.View) {
	t.Helper()
	br := topologytest.Bridge("hv1")
	before := f.View()
	f.must(t, change)
	after := f.View()
	scope := (dhcp.App{}).Affects(before, after, br, changes)
	if scope.All {
		t.Fatalf("scope is everything")
	}
	got := of.NewFlowSet()
	for _, fl := range (dhcp.App{}).Flows(before, br) {
		if !scope.Objects[pipeline.Cookie(fl.Cookie).Object()] {
			got.Add(fl)
		}
	}
	for _, fl := range (dhcp.App{}).ObjectFlows(after, br, scope.Objects) {
		got.Add(fl)
	}
	if want := of.NewFlowSet((dhcp.App{}).Flows(after, br)...); !got.Equal(want) {
		t.Errorf("recomputing the scope is not the full recompute: %s", of.Diff(want, got))
	}
	return scope, before, after
}

// TestAffects: a subnet's new name changes no reply and affects nothing;
// its new dns_nameservers affect its network's ports, whose flows
// change; a port's new extra_dhcp_opts affect that port.
func TestAffects(t *testing.T) {
	f := newFixture(t)
	subnet := topology.Change{Resource: topology.ResourceSubnet, Op: "update", ID: "N4"}

	scope, _, _ := affects(t, f, func(i uint64) error {
		_, err := f.Store.UpdateSubnet(i, topology.SubnetSpec{ID: "N4", Name: str("renamed")})
		return err
	}, subnet)
	if !scope.Empty() {
		t.Errorf("renaming N4 affects %v", scope.Objects)
	}

	scope, before, after := affects(t, f, func(i uint64) error {
		_, err := f.Store.UpdateSubnet(i, topology.SubnetSpec{ID: "N4", DNSNameservers: []string{"192.0.2.54"}})
		return err
	}, subnet)
	br := topologytest.Bridge("hv1")
	for _, id := range []string{"v1", "v2"} {
		p := topologytest.MustPort(t, after, id)
		if !scope.Objects[pipeline.PortObject(p.Key)] {
			t.Errorf("new dns_nameservers of N4 do not affect %s: %v", id, scope.Objects)
		}
		if l := requestLease(t, (dhcp.App{}).Flows(after, br), p, a("10.77.0.1")); !reflect.DeepEqual(l.opts.DNS, []netip.Addr{a("192.0.2.54")}) {
			t.Errorf("%s: DNS %v after the change", id, l.opts.DNS)
		}
		if reflect.DeepEqual(portFlows((dhcp.App{}).Flows(before, br), p), portFlows((dhcp.App{}).Flows(after, br), p)) {
			t.Errorf("%s: flows unchanged", id)
		}
	}
	if m1 := topologytest.MustPort(t, after, "m1"); scope.Objects[pipeline.PortObject(m1.Key)] {
		t.Errorf("a change to N4 affects m1, in M")
	}

	scope, _, after = affects(t, f, func(i uint64) error {
		_, err := f.Store.UpdatePort(i, topology.PortSpec{ID: "v2", ExtraDHCPOpts: &[]topology.ExtraDHCPOpt{{OptName: "mtu", OptValue: "1300"}}})
		return err
	}, topology.Change{Resource: topology.ResourcePort, Op: "update", ID: "v2"})
	v2 := topologytest.MustPort(t, after, "v2")
	if !scope.Objects[pipeline.PortObject(v2.Key)] {
		t.Errorf("v2's new extra_dhcp_opts do not affect it: %v", scope.Objects)
	}
	if l := requestLease(t, (dhcp.App{}).Flows(after, br), v2, a("10.77.0.1")); l.opts.MTU != 1300 {
		t.Errorf("v2's MTU is %d after extra option mtu 1300", l.opts.MTU)
	}
}

// TestExtraOption: names are encoded by their kind, numbers as addresses
// when the value reads as IPv4 addresses and as text otherwise; what
// cannot be an option is refused.
func TestExtraOption(t *testing.T) {
	long := strings.Repeat("x", 256)
	var addrs64 []string
	for i := range 64 {
		addrs64 = append(addrs64, netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}).String())
	}
	for _, c := range []struct {
		name, value string
		code        byte
		want        []byte // nil: refused
	}{
		{"mtu", "1400", 26, []byte{0x05, 0x78}},
		{"dns-server", "10.0.0.1,10.0.0.2", 6, []byte{10, 0, 0, 1, 10, 0, 0, 2}},
		{"dns-server", "10.0.0.1, 10.0.0.2", 6, []byte{10, 0, 0, 1, 10, 0, 0, 2}},
		{"tftp-server", "tftp.example.org", 66, []byte("tftp.example.org")},
		{"lease-time", "3600", 51, []byte{0, 0, 0x0e, 0x10}},
		{"router", "10.0.0.254", 3, []byte{10, 0, 0, 254}},
		{"150", "10.0.0.1,10.0.0.2", 150, []byte{10, 0, 0, 1, 10, 0, 0, 2}},
		{"252", "http://wpad.example.org/wpad.dat", 252, []byte("http://wpad.example.org/wpad.dat")},
		{"1", "x", 0, nil}, // option 1 is a mask: an address, as by name
		{"254", "x", 254, []byte("x")},
		{"dns-server", "10.0.0.300", 0, nil},
		{"dns-server", "2001:db8::1", 0, nil},
		{"dns-server", "", 0, nil},
		{"mtu", "70000", 0, nil},
		{"mtu", "big", 0, nil},
		{"52", "1", 0, nil},
		{"53", "1", 0, nil},
		{"0", "x", 0, nil},
		{"255", "x", 0, nil},
		{"256", "x", 0, nil},
		{"-1", "x", 0, nil},
		{"150", "", 0, nil},
		{"tftp-server", long, 0, nil},
		{"dns-server", strings.Join(addrs64, ","), 0, nil}, // 256 bytes
		{"no-such-option", "x", 0, nil},
	} {
		got, ok := dhcp.ExtraOption(c.name, c.value)
		switch {
		case c.want == nil && ok:
			t.Errorf("ExtraOption(%q, %.20q) = %v, want refused", c.name, c.value, got)
		case c.want != nil && (!ok || got.Code != c.code || !bytes.Equal(got.Value, c.want)):
			t.Errorf("ExtraOption(%q, %q) = %d %x %v, want %d %x", c.name, c.value, got.Code, got.Value, ok, c.code, c.want)
		}
	}
}

// TestEveryServerAnswersARP: a network with two DHCP subnets without a
// gateway has two servers, 10.88.0.254 (M4g, m1g's) and 10.89.0.254
// (M4b, m2's); each must answer ARP, or m2's unicast RENEW finds no
// server.
func TestEveryServerAnswersARP(t *testing.T) {
	f := newFixture(t)
	f.must(t, func(i uint64) error {
		_, err := f.Store.CreateSubnets(i, []topology.SubnetSpec{{ID: "M4b", NetworkID: str("M"), CIDR: str("10.89.0.0/24"), GatewayNone: true},
			{ID: "M4g", NetworkID: str("M"), CIDR: str("10.87.0.0/24"), GatewayNone: true}})
		return err
	})
	f.must(t, func(i uint64) error {
		_, err := f.Store.CreatePorts(i, []topology.PortSpec{portSpec("m2", "M", "02:00:00:aa:bb:16", "10.89.0.10"),
			portSpec("m3", "M", "02:00:00:aa:bb:17", "10.87.0.10")})
		return err
	})
	f.Rebind(t)(topologytest.Port{ID: "m2", Network: "M", Chassis: "hv1", OFPort: 16},
		topologytest.Port{ID: "m3", Network: "M", Chassis: "hv1", OFPort: 17})
	var answered []string
	for _, fl := range arpFlows((dhcp.App{}).Flows(f.View(), topologytest.Bridge("hv1"))) {
		c, _ := fl.Match.Get(of.FieldARPTPA)
		answered = append(answered, of.IPv4FromValue(c.Value).String())
	}
	for _, ip := range []string{"10.87.0.254", "10.89.0.254"} {
		if !slices.Contains(answered, ip) {
			t.Errorf("no ARP answer for the server %s: answers for %v", ip, answered)
		}
	}
}

// TestExtraLeaseTimeRenewal: a port's own lease-time gives T1 and T2
// within it (RFC 2131 §4.4.5: T1 < T2 < lease), not the default
// lease's 43200 and 75600.
func TestExtraLeaseTimeRenewal(t *testing.T) {
	f := newFixture(t)
	f.must(t, func(i uint64) error {
		_, err := f.Store.UpdatePort(i, topology.PortSpec{ID: "v2", ExtraDHCPOpts: &[]topology.ExtraDHCPOpt{{OptName: "lease-time", OptValue: "3600"}}})
		return err
	})
	v := f.View()
	l := requestLease(t, (dhcp.App{}).Flows(v, topologytest.Bridge("hv1")), topologytest.MustPort(t, v, "v2"), a("10.77.0.1"))
	r := decodeReply(t, mustAnswer(t, l.data, readHex(t, "dhclient_discover")))
	lease, t1, t2 := binary.BigEndian.Uint32(r.opts[51]), binary.BigEndian.Uint32(r.opts[58]), binary.BigEndian.Uint32(r.opts[59])
	if lease != 3600 || !(t1 < t2 && t2 < lease) {
		t.Errorf("lease %d, T1 %d, T2 %d: want 3600 with T1 < T2 < 3600", lease, t1, t2)
	}
}

// TestExtraOptionByKnownNumber: an option given by the number of one
// Wyvern knows by name is encoded as that option, as dnsmasq does: "26"
// 1400 is a 2-byte MTU, not the text "1400".
func TestExtraOptionByKnownNumber(t *testing.T) {
	for _, c := range []struct {
		name, value string
		want        []byte
	}{
		{"26", "1400", []byte{0x05, 0x78}},
		{"51", "3600", []byte{0, 0, 0x0e, 0x10}},
	} {
		if got, ok := dhcp.ExtraOption(c.name, c.value); !ok || !bytes.Equal(got.Value, c.want) {
			t.Errorf("ExtraOption(%q, %q) = %x %v, want %x", c.name, c.value, got.Value, ok, c.want)
		}
	}
}

func mustAnswer(t testing.TB, data, frame []byte) []byte {
	t.Helper()
	out, err := dhcp.Answer(data, frame)
	if err != nil || out == nil {
		t.Fatalf("Answer: %x %v", out, err)
	}
	return out
}

// TestAnswerFitsTheClient: a port whose options outgrow what udhcpc takes
// (576 bytes: its option 57) still gets a lease — without its extras,
// then its domain, then routes but the default — rather than none.
func TestAnswerFitsTheClient(t *testing.T) {
	f := newFixture(t)
	var routes []topology.HostRoute
	for i := range 20 {
		routes = append(routes, topology.HostRoute{Destination: fmt.Sprintf("10.%d.9.9/32", 100+i), NextHop: "10.77.0.254"})
	}
	dns := []string{"10.77.0.51", "10.77.0.52", "10.77.0.53", "10.77.0.54", "10.77.0.55"}
	f.must(t, func(i uint64) error {
		_, err := f.Store.UpdateSubnet(i, topology.SubnetSpec{ID: "N4", HostRoutes: routes, DNSNameservers: dns})
		return err
	})
	var extras []topology.ExtraDHCPOpt
	for i := range 10 {
		extras = append(extras, topology.ExtraDHCPOpt{OptName: fmt.Sprint(200 + i), OptValue: strings.Repeat("x", 60)})
	}
	f.must(t, func(i uint64) error {
		_, err := f.Store.UpdatePort(i, topology.PortSpec{ID: "v1", ExtraDHCPOpts: &extras})
		return err
	})
	v := f.View()
	l := requestLease(t, (dhcp.App{}).Flows(v, topologytest.Bridge("hv1")), topologytest.MustPort(t, v, "v1"), a("10.77.0.1"))
	reply, err := dhcp.Answer(l.data, readHex(t, "udhcpc_discover"))
	if err != nil || reply == nil {
		t.Fatalf("no OFFER for options too large for the client: %v", err)
	}
	if udp := len(reply) - 14 - 20; udp+20 > 576 {
		t.Errorf("the OFFER is %d bytes of IP, more than the client's 576", udp+20)
	}
}

// TestTaggedRequestIsNotThePorts: a DHCP request from a VLAN inside the
// VM is not for the port's network: no answer.
func TestTaggedRequestIsNotThePorts(t *testing.T) {
	f := newFixture(t)
	v := f.View()
	l := requestLease(t, (dhcp.App{}).Flows(v, topologytest.Bridge("hv1")), topologytest.MustPort(t, v, "v1"), a("10.77.0.1"))
	frame := readHex(t, "udhcpc_discover")
	tagged := append(append(append([]byte{}, frame[:12]...), 0x81, 0x00, 0x00, 0x64), frame[12:]...)
	if reply, err := dhcp.Answer(l.data, tagged); err != nil || reply != nil {
		t.Errorf("a VLAN-tagged DISCOVER got %d bytes, %v; want no answer", len(reply), err)
	}
}

// TestExtrasCannotBreakTheProtocol: a port's extra options may not set
// what the protocol or the flows rely on.
func TestExtrasCannotBreakTheProtocol(t *testing.T) {
	for _, c := range [][2]string{{"server-identifier", "10.0.0.9"}, {"54", "10.0.0.9"}, {"50", "10.0.0.9"}, {"55", "1"},
		{"57", "1500"}, {"61", "x"}, {"121", "10.0.0.0"}, {"119", "example.org"}, {"lease-time", "0"}, {"51", "0"},
		{"mtu", "60"}} {
		if raw, ok := dhcp.ExtraOption(c[0], c[1]); ok {
			t.Errorf("ExtraOption(%q, %q) = %v, want refused", c[0], c[1], raw)
		}
	}
}
