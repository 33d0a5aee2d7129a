// Package dhcp is native DHCPv4: every VM port on a subnet with
// enable_dhcp gets its address, mask, router, MTU, DNS servers, domain,
// host routes and lease from its own chassis, with no DHCP server process
// and no packet crossing a tunnel. The reply is computed from the topology
// when the flows are, and travels in the port's punt flow: answering a
// request needs no state lookup, only the request itself (as OVN's
// put_dhcp_opts and DragonFlow's DHCP app do).
//
// Tables it owns: DHCP (and one flow per network in ARPResponder).
//
//	DHCP          reg6=<port>,dl_src=<MAC>,udp,tp_src=68,tp_dst=67,nw_dst=255.255.255.255 →
//	                  punt (dhcp, the port's meter, userdata = yiaddr | server MAC | options)
//	              the same to nw_dst=<server address> (a unicast RENEW)
//	ARPResponder  metadata=<net>,arp,arp_op=1,arp_tpa=<server address> → reply with the
//	                  service MAC (priority 90; a subnet without a gateway, while no port claims the address)
//	L2Lookup      metadata=<net>,dl_dst=<service MAC> → drop (anything else sent to the server)
//
// The server address is the subnet's gateway, or its last host address
// when it has none (the store keeps that one out of the default
// allocation pool). The server MAC is the router interface's on that
// gateway, or a service MAC made from the network key (a range no port
// may take). ARP for a gateway is the router's to answer: with no router
// on it (or one that is down) a client's unicast RENEW goes unanswered and
// it rebinds by broadcast at T2, as with any unreachable server.
//
// Cookie objects: a port (its request flows), a network (its server's
// ARP answer).
//
// It is pure and imports the app contract, pipeline, the flow model, the
// topology view, the DHCPv4 codec and the ARP responder's reply flow.
package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/arpresponder"
	"github.com/wyvern-sdn/wyvern/dhcp/dhcpv4"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Priorities of the app's flows.
const (
	PriorityRequest = 100
	// PriorityServerARP is below the ARP responder's answers: a router
	// interface that takes the gateway address answers for it instead.
	PriorityServerARP = 90
)

// LeaseSeconds is the lease DHCP hands out, as Neutron's default
// dhcp_lease_duration.
const LeaseSeconds = 86400

// App is native DHCP.
type App struct{}

var _ app.App = App{}

// ID implements app.App.
func (App) ID() pipeline.App { return pipeline.AppDHCP }

// Flows implements app.App: the request flows of every local port that
// gets DHCP, and the server's ARP answer for each of their networks.
func (App) Flows(v *view.View, br view.Bridge) []of.Flow { return flows(v, br, nil) }

// ObjectFlows implements app.App.
func (App) ObjectFlows(v *view.View, br view.Bridge, objs app.Objects) []of.Flow {
	return flows(v, br, objs)
}

func flows(v *view.View, br view.Bridge, objs app.Objects) []of.Flow {
	var out []of.Flow
	type serverKey struct {
		network uint32
		ip      netip.Addr
	}
	servers := map[serverKey]server{}
	for _, p := range v.LocalPorts(br.Chassis) {
		if !p.Located() || p.DeviceOwner == topology.OwnerRouterInterface {
			continue
		}
		lease, ok := leaseOf(v, *p)
		if !ok {
			continue
		}
		servers[serverKey{p.NetworkKey, lease.server.ip}] = lease.server
		if objs != nil && !objs[pipeline.PortObject(p.Key)] {
			continue
		}
		out = append(out, requestFlows(*p, lease)...)
	}
	for key, s := range servers {
		if objs != nil && !objs[pipeline.NetworkObject(key.network)] || s.answered {
			continue
		}
		cookie := pipeline.NewCookie(0, pipeline.AppDHCP, pipeline.NetworkObject(key.network))
		f := arpresponder.Reply(key.network, s.ip, s.mac, cookie)
		f.Priority = PriorityServerARP
		// What a VM sends the server other than DHCP goes nowhere, rather
		// than flooded as an unknown MAC.
		out = append(out, f, of.Flow{Table: pipeline.Table(pipeline.L2Lookup), Priority: PriorityServerARP, Cookie: cookie,
			Match: of.Match{}.Reg(pipeline.NetworkKey, uint64(key.network)).EthDst(s.mac)}) // no actions: drop
	}
	return out
}

// server is a subnet's DHCP server as its VMs see it.
type server struct {
	ip       netip.Addr
	mac      net.HardwareAddr
	answered bool // a router interface answers ARP for it already
}

// lease is what a port gets.
type lease struct {
	addr   netip.Addr
	server server
	opts   []byte // encoded
}

// leaseOf is a port's DHCP lease: its first address in a subnet with
// DHCP, and that subnet's options. ok is false for a port that gets none.
func leaseOf(v *view.View, p view.Port) (lease, bool) {
	for _, f := range p.FixedIPs {
		sn, ok := v.Subnet(f.SubnetID)
		if !ok || !sn.DHCP {
			continue
		}
		n, _ := v.Network(p.NetworkID)
		srv := serverOf(v, n, sn)
		opts, err := options(n, sn, srv, p).Encode()
		if err != nil {
			continue // an extra option that cannot be encoded: no DHCP, not a wrong lease
		}
		return lease{addr: f.Addr, server: srv, opts: opts}, true
	}
	return lease{}, false
}

// ServerAddress is a subnet's DHCP server address: its gateway, or its
// last host address when it has none.
func ServerAddress(sn view.Subnet) netip.Addr {
	if sn.Gateway.IsValid() {
		return sn.Gateway
	}
	return topology.LastHost(sn.Prefix)
}

func serverOf(v *view.View, n view.Network, sn view.Subnet) server {
	ip := ServerAddress(sn)
	srv := server{ip: ip, mac: ServiceMAC(n.Key)}
	for _, ri := range v.NetworkInterfaces(n.ID) {
		if ri.IP == ip {
			srv.mac = ri.MAC
		}
	}
	// A gateway is the router's to answer ARP for, or nobody's: were the
	// service MAC to answer for it, a VM's traffic to other networks
	// would go to a MAC no flow knows, and be flooded. Without a router a
	// unicast RENEW goes unanswered and the client rebinds by broadcast at
	// T2. Only a server on a subnet without a gateway answers for itself,
	// while nobody else claims its address.
	if sn.Gateway.IsValid() {
		srv.answered = true
	} else if nb, ok := v.Neighbour(n.ID, ip); ok && nb.MAC != nil {
		srv.answered = true
	}
	return srv
}

// ServiceMAC is the MAC of a network's DHCP server where no router
// interface holds its address: locally administered, 02:77:79 ("wy")
// and the network key.
func ServiceMAC(network uint32) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x77, 0x79, byte(network >> 16), byte(network >> 8), byte(network)}
}

// options are the port's reply options.
func options(n view.Network, sn view.Subnet, srv server, p view.Port) dhcpv4.Options {
	o := dhcpv4.Options{SubnetMask: sn.Prefix, DNS: sn.DNSServers, DomainName: n.DNSDomain, Lease: LeaseSeconds,
		ServerID: srv.ip}
	if n.MTU >= 68 && n.MTU <= 0xffff {
		o.MTU = uint16(n.MTU)
	}
	if len(o.DNS) == 0 && n.DNSDomain != "" { // internal DNS answers at the server address
		o.DNS = []netip.Addr{srv.ip}
	}
	for _, r := range sn.HostRoutes {
		o.Routes = append(o.Routes, dhcpv4.Route{Dst: r.Dst, Via: r.NextHop})
	}
	if sn.Gateway.IsValid() {
		o.Router = sn.Gateway
		// RFC 3442: a client given option 121 ignores option 3.
		if !slices.ContainsFunc(o.Routes, func(r dhcpv4.Route) bool { return r.Dst.Bits() == 0 }) {
			o.Routes = append(o.Routes, dhcpv4.Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Via: sn.Gateway})
		}
	}
	if p.DNSName != "" { // 12 host name: the port's dns_name, as Neutron's DHCP gives it
		host, _, _ := strings.Cut(p.DNSName, ".")
		o.Extra = append(o.Extra, dhcpv4.RawOption{Code: 12, Value: []byte(host)})
	}
	for _, e := range p.DHCPOpts {
		if e.IPVersion == 6 {
			continue
		}
		raw, ok := ExtraOption(e.OptName, e.OptValue)
		switch {
		case !ok:
			continue
		case raw.Code == 3 && len(raw.Value) >= 4: // the router: option 121's default route follows it
			o.Router = netip.AddrFrom4([4]byte(raw.Value[:4]))
			o.Routes = slices.DeleteFunc(o.Routes, func(r dhcpv4.Route) bool { return r.Dst.Bits() == 0 })
			o.Routes = append(o.Routes, dhcpv4.Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Via: o.Router})
		case raw.Code == 51 && len(raw.Value) == 4: // the lease: T1 and T2 follow it
			o.Lease = binary.BigEndian.Uint32(raw.Value)
		case raw.Code == 26 && len(raw.Value) == 2 && binary.BigEndian.Uint16(raw.Value) >= 68:
			o.MTU = binary.BigEndian.Uint16(raw.Value)
		default:
			o.Extra = slices.DeleteFunc(o.Extra, func(x dhcpv4.RawOption) bool { return x.Code == raw.Code })
			o.Extra = append(o.Extra, raw)
		}
	}
	return o
}

// extraNames are the extra_dhcp_opts names Wyvern understands (dnsmasq's,
// as Neutron passes them on), with how their value is written.
var extraNames = map[string]struct {
	code byte
	kind byte // 'a' addresses, 's' string, '2' uint16, '4' uint32, '1' uint8
}{
	"netmask": {1, 'a'}, "router": {3, 'a'}, "dns-server": {6, 'a'}, "log-server": {7, 'a'},
	"hostname": {12, 's'}, "domain-name": {15, 's'}, "mtu": {26, '2'}, "ntp-server": {42, 'a'},
	"netbios-ns": {44, 'a'}, "lease-time": {51, '4'}, "T1": {58, '4'}, "T2": {59, '4'},
	"tftp-server": {66, 's'}, "bootfile-name": {67, 's'}, "tftp-server-address": {150, 'a'},
}

// managed are the options a port may not set: the protocol's own (50
// requested address, 52 overload, 53 message type, 54 server id — the
// request flows match it —, 55 parameter list, 57 maximum size, 61 client
// id) and those whose encoding is structured (119 domain search, 121
// routes: host_routes set them).
var managed = map[byte]bool{50: true, 52: true, 53: true, 54: true, 55: true, 57: true, 61: true, 119: true, 121: true}

// ExtraOption encodes one of Neutron's extra_dhcp_opts: a known name, or
// an option number whose value is a list of addresses if it reads as one
// and text otherwise. ok is false for what it cannot encode.
func ExtraOption(name, value string) (dhcpv4.RawOption, bool) {
	spec, known := extraNames[name]
	if !known {
		code, err := strconv.Atoi(name)
		if err != nil || code < 1 || code > 254 || managed[byte(code)] {
			return dhcpv4.RawOption{}, false
		}
		spec.code, spec.kind = byte(code), 's'
		if _, ok := addresses(value); ok {
			spec.kind = 'a'
		}
		for _, k := range extraNames { // a known option by number is written as by name
			if k.code == spec.code {
				spec.kind = k.kind
			}
		}
	}
	var b []byte
	switch spec.kind {
	case 'a':
		addrs, ok := addresses(value)
		if !ok {
			return dhcpv4.RawOption{}, false
		}
		for _, a := range addrs {
			b = append(b, a.AsSlice()...)
		}
	case 's':
		b = []byte(value)
	case '1', '2', '4':
		size := int(spec.kind - '0')
		n, err := strconv.ParseUint(value, 10, size*8)
		if err != nil {
			return dhcpv4.RawOption{}, false
		}
		b = binary.BigEndian.AppendUint32(nil, uint32(n))[4-size:]
		if spec.code == 51 && n == 0 || spec.code == 26 && n < 68 { // no lease; an MTU no link has
			return dhcpv4.RawOption{}, false
		}
	}
	if len(b) == 0 || len(b) > 255 {
		return dhcpv4.RawOption{}, false
	}
	return dhcpv4.RawOption{Code: spec.code, Value: b}, true
}

func addresses(s string) ([]netip.Addr, bool) {
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(f))
		if err != nil || !a.Is4() {
			return nil, false
		}
		out = append(out, a)
	}
	return out, len(out) > 0
}

// requestFlows punt a port's requests, to broadcast and to the server,
// with its reply data: yiaddr (4) | server MAC (6) | options.
func requestFlows(p view.Port, l lease) []of.Flow {
	data := append(append(l.addr.AsSlice(), l.server.mac...), l.opts...)
	var out []of.Flow
	for _, dst := range []netip.Addr{netip.AddrFrom4([4]byte{255, 255, 255, 255}), l.server.ip} {
		out = append(out, of.Flow{
			Table: pipeline.Table(pipeline.DHCP), Priority: PriorityRequest,
			Cookie: pipeline.NewCookie(0, pipeline.AppDHCP, pipeline.PortObject(p.Key)),
			Match: of.Match{}.Reg(pipeline.SrcPortKey, uint64(p.Key)).EthSrc(p.MAC).EthType(of.EthTypeIPv4).
				IPProto(of.IPProtoUDP).IPv4Dst(netip.PrefixFrom(dst, 32)).UDPSrc(68).UDPDst(67),
			Actions: []of.Action{pipeline.Punt(pipeline.ReasonDHCP, pipeline.PortMeter(p.Key), data...)},
		})
	}
	return out
}

// PerDestination implements app.App: none; a port's DHCP flows are its
// own chassis', in both modes.
func (App) PerDestination(of.Flow) bool { return false }

// Reasons implements app.App.
func (App) Reasons() []pipeline.PuntReason { return []pipeline.PuntReason{pipeline.ReasonDHCP} }

// OnPunt answers a request from the reply its flow carries: DISCOVER with
// OFFER, REQUEST with ACK (or NAK when it asks for another address),
// INFORM with ACK; RELEASE, DECLINE and requests meant for another
// server get nothing.
func (App) OnPunt(_ *view.View, _ view.Bridge, p app.Punt) app.Answer {
	reply, err := Answer(p.Data, p.Frame)
	if err != nil {
		return app.Answer{Outcome: app.Malformed}
	}
	if reply == nil {
		return app.Answer{Outcome: app.Unanswered}
	}
	return app.Answer{Outcome: app.Replied, Send: []app.PacketOut{{
		Actions: []of.Action{of.Output{Port: p.InPort}}, Frame: reply}}}
}

// Answer is the reply to a request frame, from a punt flow's data; nil
// when the request wants none.
func Answer(data, frame []byte) ([]byte, error) {
	if len(data) < 10 {
		return nil, fmt.Errorf("dhcp: punt data of %d bytes", len(data))
	}
	yiaddr := netip.AddrFrom4([4]byte(data[0:4]))
	serverMAC := net.HardwareAddr(data[4:10])
	opts := data[10:]
	req, err := dhcpv4.ParseRequest(frame)
	if err != nil {
		return nil, err
	}
	if req.Tagged { // a VLAN inside the VM is not this port's network
		return nil, nil
	}
	decoded, err := dhcpv4.DecodeOptions(opts)
	if err != nil {
		return nil, err
	}
	reply := func(typ dhcpv4.MessageType, yiaddr netip.Addr, message string) ([]byte, error) {
		return fitted(req, typ, yiaddr, serverMAC, opts, decoded, message)
	}
	switch req.Type {
	case dhcpv4.MsgDiscover:
		return reply(dhcpv4.MsgOffer, yiaddr, "")
	case dhcpv4.MsgRequest:
		if req.ServerID.IsValid() && req.ServerID != decoded.ServerID {
			return nil, nil // the client chose another server's offer
		}
		want := req.RequestedIP
		if !want.IsValid() {
			want = req.CIAddr
		}
		if want != yiaddr {
			return reply(dhcpv4.MsgNak, netip.Addr{}, "requested address is not this port's")
		}
		return reply(dhcpv4.MsgAck, yiaddr, "")
	case dhcpv4.MsgInform:
		return reply(dhcpv4.MsgAck, netip.IPv4Unspecified(), "")
	}
	return nil, nil
}

// fitted is the reply, shortened to what the client can take when the
// whole is too large (udhcpc takes 576 bytes): options are left out, least
// needed first — extras, the domain, DNS servers beyond two, host routes
// but the default one — as dnsmasq does, rather than no lease at all.
func fitted(req dhcpv4.Request, typ dhcpv4.MessageType, yiaddr netip.Addr, mac net.HardwareAddr, opts []byte,
	o dhcpv4.Options, message string) ([]byte, error) {
	out, err := dhcpv4.Reply(req, typ, yiaddr, mac, opts, message)
	for step := 0; errors.Is(err, dhcpv4.ErrTooLarge) && step < 4; step++ {
		switch step {
		case 0:
			o.Extra = nil
		case 1:
			o.DomainName = ""
		case 2:
			o.DNS = o.DNS[:min(len(o.DNS), 2)]
		case 3:
			o.Routes = slices.DeleteFunc(o.Routes, func(r dhcpv4.Route) bool { return r.Dst.Bits() != 0 })
		}
		if opts, err = o.Encode(); err != nil {
			return nil, err
		}
		out, err = dhcpv4.Reply(req, typ, yiaddr, mac, opts, message)
	}
	return out, err
}

// Affects implements app.App: a port whose DHCP may differ (its own
// change, or one of its network's or subnets', a router interface coming
// or going on its gateway), and its network's server answer.
func (App) Affects(before, after *view.View, br view.Bridge, changes []topology.Change) app.Scope {
	objs := app.Objects{}
	networks := map[string]bool{}
	for _, ch := range changes {
		switch ch.Resource {
		case topology.ResourceNetwork:
			nb, okb := before.Network(ch.ID)
			na, oka := after.Network(ch.ID)
			if okb != oka || nb != na { // a rename changes no reply
				networks[ch.ID] = true
			}
		case topology.ResourceSubnet:
			sb, okb := before.Subnet(ch.ID)
			sa, oka := after.Subnet(ch.ID)
			if okb == oka && sameSubnet(sb, sa) {
				continue
			}
			for _, sn := range []view.Subnet{sb, sa} {
				if sn.NetworkID != "" {
					networks[sn.NetworkID] = true
				}
			}
		}
	}
	// A port coming, going or changing may also take or give up the
	// server's address (a router interface, an address pair): its whole
	// network, which costs this chassis' ports of it.
	for _, pc := range app.Ports(before, after, changes) {
		for _, s := range pc.Sides(before, after) {
			objs.Add(pipeline.PortObject(s.Port.Key))
			networks[s.Port.NetworkID] = true
		}
	}
	for n := range networks {
		for _, v := range []*view.View{before, after} {
			app.AddNetwork(objs, v, n)
		}
	}
	// A router's state decides whether its interface answers ARP for the
	// gateway, so which MAC the server has.
	app.AddRouters(objs, before, after, changes)
	return app.Scope{Objects: objs}
}

// sameSubnet reports whether two versions of a subnet give the same
// replies.
func sameSubnet(a, b view.Subnet) bool {
	return a.ID == b.ID && a.NetworkID == b.NetworkID && a.Prefix == b.Prefix && a.Gateway == b.Gateway &&
		a.DHCP == b.DHCP && slices.Equal(a.DNSServers, b.DNSServers) && slices.Equal(a.HostRoutes, b.HostRoutes)
}

// Invalidates implements app.App: DHCP installs nothing on demand.
func (App) Invalidates(_, _ *view.View, _ []topology.Change) []of.FlowMod { return nil }
