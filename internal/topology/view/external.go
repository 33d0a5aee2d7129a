package view

import (
	"cmp"
	"hash/fnv"
	"net"
	"net/netip"
	"slices"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Gateway is a router's leg on an external network.
type Gateway struct {
	Network Network
	PortKey uint32
	IP      netip.Addr   // the router's address there: the source of its SNAT
	Prefix  netip.Prefix // the external subnet
	MAC     net.HardwareAddr
	// NextHop is the external subnet's gateway_ip: where traffic to
	// outside goes (invalid when the subnet has none).
	NextHop netip.Addr
	SNAT    bool
}

// FloatingIP is an external address translated to a port's fixed IP, or
// (Forwardings) some of its TCP/UDP ports to ports' addresses.
type FloatingIP struct {
	ID      string
	Key     uint32
	Network Network // the external network
	IP      netip.Addr
	// Router is the router that reaches the internal address; its key is
	// 0 when the floating IP is not associated.
	Router Router
	// Port and FixedIP: the association; Port.Key is 0 for none.
	Port        Port
	FixedIP     netip.Addr
	Forwardings []Forwarding
}

// Forwarding is one port forwarding of a floating IP.
type Forwarding struct {
	Protocol     uint8 // of.IPProtoTCP or of.IPProtoUDP
	ExternalPort uint16
	InternalPort uint16
	InternalIP   netip.Addr
	Port         Port
}

// Protocol numbers of port forwardings.
const (
	protoTCP = 6
	protoUDP = 17
)

// buildExternal types the routers' gateways and static routes, the
// floating IPs and the learned neighbours.
func (v *View) buildExternal(s *topology.Store) {
	v.gateways, v.staticRoutes = map[string]Gateway{}, map[string][]Route{}
	v.extNeighbours = map[string]map[netip.Addr]net.HardwareAddr{}
	s.EachRouter(func(r topology.Router) {
		for _, rt := range r.Routes {
			dst, err1 := netip.ParsePrefix(rt.Destination)
			hop, err2 := netip.ParseAddr(rt.NextHop)
			if err1 == nil && err2 == nil && dst.Addr().Is4() && hop.Is4() {
				v.staticRoutes[r.ID] = append(v.staticRoutes[r.ID], Route{Dst: dst.Masked(), NextHop: hop})
			}
		}
		if r.ExternalGateway == nil {
			return
		}
		p, ok := v.ports.get(r.GatewayPortID)
		n, ok2 := v.networks[r.ExternalGateway.NetworkID]
		if !ok || !ok2 || len(p.FixedIPs) == 0 {
			return
		}
		g := Gateway{Network: n, PortKey: p.Key, IP: p.FixedIPs[0].Addr, MAC: p.MAC, SNAT: r.ExternalGateway.EnableSNAT}
		if sn, ok := v.subnets[p.FixedIPs[0].SubnetID]; ok {
			g.Prefix, g.NextHop = sn.Prefix, sn.Gateway
		}
		v.gateways[r.ID] = g
	})
	s.EachNeighbour(func(nb topology.Neighbour) {
		ip, err1 := netip.ParseAddr(nb.IP)
		mac, err2 := net.ParseMAC(nb.MAC)
		if err1 != nil || err2 != nil {
			return
		}
		if v.extNeighbours[nb.NetworkID] == nil {
			v.extNeighbours[nb.NetworkID] = map[netip.Addr]net.HardwareAddr{}
		}
		v.extNeighbours[nb.NetworkID][ip] = mac
	})
	v.fips = nil
	s.EachFloatingIP(func(f topology.FloatingIP) {
		n, ok := v.networks[f.FloatingNetworkID]
		ip, err := netip.ParseAddr(f.FloatingIPAddress)
		if !ok || err != nil || !ip.Is4() {
			return
		}
		tf := FloatingIP{ID: f.ID, Key: f.Key, Network: n, IP: ip}
		if r, ok := v.routers[f.RouterID]; ok {
			tf.Router = r
		}
		if p, ok := v.ports.get(f.PortID); ok {
			tf.Port = *p
			tf.FixedIP, _ = netip.ParseAddr(f.FixedIPAddress)
		}
		for _, pf := range f.PortForwardings {
			p, ok := v.ports.get(pf.InternalPortID)
			ip, err := netip.ParseAddr(pf.InternalIPAddress)
			if !ok || err != nil {
				continue
			}
			proto := uint8(protoTCP)
			if pf.Protocol == "udp" {
				proto = protoUDP
			}
			tf.Forwardings = append(tf.Forwardings, Forwarding{Protocol: proto, ExternalPort: pf.ExternalPort,
				InternalPort: pf.InternalPort, InternalIP: ip, Port: *p})
		}
		v.fips = append(v.fips, tf)
	})
}

// indexExternal decides who serves what north-south, from the located
// ports (run after them): each router's gateway chassis, each floating
// IP's chassis, and the networks those chassis carry for them.
func (v *View) indexExternal() {
	v.gatewayChassis = map[string]string{}
	v.fipsOn = map[string][]FloatingIP{}
	for id, g := range v.gateways {
		if c, ok := v.chooseGateway(id, g.Network); ok {
			v.gatewayChassis[id] = c
		}
	}
	// The ports may have moved since the floating IPs were typed (a
	// derived view shares them with its parent: copy before changing).
	v.fips = slices.Clone(v.fips)
	for i := range v.fips {
		f := &v.fips[i]
		if p, ok := v.ports.get(f.Port.ID); ok && f.Port.Key != 0 {
			f.Port = *p
		}
		f.Forwardings = slices.Clone(f.Forwardings)
		for j := range f.Forwardings {
			if p, ok := v.ports.get(f.Forwardings[j].Port.ID); ok {
				f.Forwardings[j].Port = *p
			}
		}
		if c, ok := v.fipChassis(*f); ok {
			v.fipsOn[c] = append(v.fipsOn[c], *f)
		}
	}
	// A gateway chassis serves its routers' networks (traffic to SNAT
	// comes to it in them, and their replies leave it in them) and the
	// external network; a floating IP's chassis serves the external one.
	// Serving is not hosting: nobody floods to a chassis for it.
	v.served = map[string][]Network{}
	serve := func(chassis string, n Network) {
		if !slices.ContainsFunc(v.served[chassis], func(o Network) bool { return o.Key == n.Key }) {
			v.served[chassis] = append(v.served[chassis], n)
		}
	}
	for id, c := range v.gatewayChassis {
		serve(c, v.gateways[id].Network)
		for _, ri := range v.ifacesByRtr[id] {
			serve(c, ri.Network)
		}
	}
	for c, fs := range v.fipsOn {
		for _, f := range fs {
			serve(c, f.Network)
		}
	}
	for c, ns := range v.served {
		for _, n := range v.hosted.get(c) {
			serve(c, n)
		}
		slices.SortFunc(v.served[c], func(a, b Network) int { return cmp.Compare(a.Key, b.Key) })
		_ = ns
	}
}

// ServedNetworks are the networks a chassis hosts (HostedNetworks) and
// those it serves north-south: as a router's gateway chassis, its
// networks and the external one; as a floating IP's chassis, the external
// one. In key order.
func (v *View) ServedNetworks(chassis string) []Network {
	if s, ok := v.served[chassis]; ok {
		return s
	}
	return v.hosted.get(chassis)
}

// chooseGateway picks a router's gateway chassis among the live gateway
// chassis that reach its external network: the highest rendezvous hash of
// router and chassis, so every node picks the same one, and losing a
// chassis moves only its routers.
func (v *View) chooseGateway(router string, ext Network) (string, bool) {
	best, bestScore := "", uint64(0)
	for name, c := range v.chassis {
		if !c.Gateway || c.Unreachable || !c.Reaches(ext) {
			continue
		}
		score := GatewayScore(router, name)
		if best == "" || score > bestScore || score == bestScore && name < best {
			best, bestScore = name, score
		}
	}
	return best, best != ""
}

// GatewayScore is a chassis' rendezvous score for hosting a router's
// SNAT: among the eligible chassis, the highest wins.
func GatewayScore(router, chassis string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(router))
	h.Write([]byte{0})
	h.Write([]byte(chassis))
	return h.Sum64()
}

// fipChassis is where a floating IP is served: its port's chassis, or,
// for port forwardings, the chassis of the first one's located port. The
// chassis must reach the external network.
func (v *View) fipChassis(f FloatingIP) (string, bool) {
	at := ""
	switch {
	case f.Port.Key != 0 && f.Port.Located():
		at = f.Port.Chassis
	default:
		for _, fw := range f.Forwardings {
			if fw.Port.Located() {
				at = fw.Port.Chassis
				break
			}
		}
	}
	c, ok := v.chassis[at]
	if at == "" || !ok || !c.Reaches(f.Network) || f.Router.Key == 0 {
		return "", false
	}
	return at, true
}

// Reaches reports whether the chassis can carry the network: an overlay
// anywhere, a flat or vlan network where its physical network is mapped.
func (c Chassis) Reaches(n Network) bool {
	if !topology.IsProvider(n.Type) {
		return true
	}
	_, ok := c.Mappings[n.PhysicalNetwork]
	return ok
}

// RouterGateway is a router's gateway, if it has one.
func (v *View) RouterGateway(router string) (Gateway, bool) {
	g, ok := v.gateways[router]
	return g, ok
}

// GatewayChassis is the chassis that hosts a router's SNAT and answers
// for its gateway address, if any live gateway chassis can.
func (v *View) GatewayChassis(router string) (string, bool) {
	c, ok := v.gatewayChassis[router]
	return c, ok
}

// StaticRoutes are a router's static routes.
func (v *View) StaticRoutes(router string) []Route { return v.staticRoutes[router] }

// FloatingIPsOn are the floating IPs served on a chassis, in id order.
func (v *View) FloatingIPsOn(chassis string) []FloatingIP { return v.fipsOn[chassis] }

// FloatingIPs are every floating IP, in id order.
func (v *View) FloatingIPs() []FloatingIP { return v.fips }

// FloatingIPChassis is where a floating IP is served.
func (v *View) FloatingIPChassis(f FloatingIP) (string, bool) { return v.fipChassis(f) }

// ExternalNeighbour is the learned MAC of an address on a physical
// network.
func (v *View) ExternalNeighbour(network string, ip netip.Addr) (net.HardwareAddr, bool) {
	mac, ok := v.extNeighbours[network][ip]
	return mac, ok
}

// ExternalNeighbours are the learned addresses of a network, sorted.
func (v *View) ExternalNeighbours(network string) []netip.Addr {
	out := make([]netip.Addr, 0, len(v.extNeighbours[network]))
	for ip := range v.extNeighbours[network] {
		out = append(out, ip)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// ProviderHome is the chassis that answers, on a flat or vlan network,
// for a router's interface there, and takes the packets the network sends
// to it: the router's gateway chassis when it reaches the network, else
// the rendezvous choice among the chassis hosting the network that reach
// it. Routing out to the network is distributed; the way in is one
// chassis, so the physical network sees the router's MAC in one place.
func (v *View) ProviderHome(router string, n Network) (string, bool) {
	if c, ok := v.gatewayChassis[router]; ok {
		if ch := v.chassis[c]; ch.Reaches(n) {
			return c, true
		}
	}
	best, bestScore := "", uint64(0)
	for _, name := range v.hosts.get(n.ID) {
		c := v.chassis[name]
		if c.Unreachable || !c.Reaches(n) {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(router))
		h.Write([]byte{1})
		h.Write([]byte(name))
		if s := h.Sum64(); best == "" || s > bestScore {
			best, bestScore = name, s
		}
	}
	return best, best != ""
}

// RoutersWithGateway are the routers that have a gateway, in key order.
func (v *View) RoutersWithGateway() []Router {
	out := make([]Router, 0, len(v.gateways))
	for id := range v.gateways {
		if r, ok := v.routers[id]; ok {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Router) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// InSubnet reports whether an address is in one of a network's subnets.
func (v *View) InSubnet(network string, ip netip.Addr) bool {
	for _, sn := range v.subnets {
		if sn.NetworkID == network && sn.Prefix.Contains(ip) {
			return true
		}
	}
	return false
}
