package view

import (
	"net"
	"net/netip"
	"slices"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Neighbour is who answers for an IPv4 address in a network: the network's
// ARP table, as the ARP responder answers it and as a router resolves its
// next hop.
type Neighbour struct {
	IP netip.Addr
	// MAC answers for IP; nil for a shared address no port has announced
	// yet.
	MAC net.HardwareAddr
	// Port is the key of the port that holds IP: a VM's port, or a router
	// interface (Router true).
	Port   uint32
	Router bool
	// Located: Port is plugged into a chassis (a router is everywhere, so
	// its gateways count as located). An address of a port that exists
	// but is not plugged yet is answered all the same — a VM is reachable
	// the moment it is plugged — but nothing can be routed or switched to
	// it until it is.
	Located bool
	// Shared: several ports claim IP (a VIP in their allowed address
	// pairs); Port and MAC are those of the one that announced it last.
	Shared bool
}

// Neighbours are the addresses of a network that one port answers for,
// sorted by address: the gateways of the routers that are up on it (which
// no port's claim overrides), the fixed IPs of its ports, plugged or not,
// the single addresses of their allowed address pairs (with the pair's
// MAC), and shared addresses, with their holder when one has announced
// itself. A CIDR pair names no single address.
func (v *View) Neighbours(network string) []Neighbour {
	type claim struct {
		n      Neighbour
		shared bool
	}
	claims := map[netip.Addr]*claim{}
	add := func(ip netip.Addr, p *Port, mac net.HardwareAddr, router bool) {
		if c, ok := claims[ip]; ok {
			// A gateway is the router's: no port's pair can share it
			// or take it over.
			if c.n.Port != p.Key && !c.n.Router {
				c.shared = true
			}
			return
		}
		claims[ip] = &claim{n: Neighbour{IP: ip, MAC: mac, Port: p.Key, Router: router, Located: router || p.Located()}}
	}
	for _, ri := range v.ifacesByNet[network] {
		add(ri.IP, &ri.Port, ri.MAC, true)
	}
	for _, p := range v.netPorts.get(network) {
		if p.DeviceOwner == topology.OwnerRouterInterface {
			continue // a gateway, when its router is up
		}
		for _, f := range p.FixedIPs {
			add(f.Addr, p, p.MAC, false)
		}
		for _, ap := range p.Pairs {
			if ap.Single {
				add(ap.Prefix.Addr(), p, ap.MAC, false)
			}
		}
	}
	out := make([]Neighbour, 0, len(claims))
	for ip, c := range claims {
		if !c.shared {
			out = append(out, c.n)
			continue
		}
		out = append(out, v.sharedNeighbour(network, ip))
	}
	slices.SortFunc(out, func(a, b Neighbour) int { return a.IP.Compare(b.IP) })
	return out
}

// sharedNeighbour is the entry of an address several ports claim: its
// holder's, once one has announced itself.
func (v *View) sharedNeighbour(network string, ip netip.Addr) Neighbour {
	nb := Neighbour{IP: ip, Shared: true}
	if id, ok := v.VIPOwner(network, ip); ok {
		if holder, ok := v.ports.get(id); ok {
			if mac := pairMAC(*holder, ip); mac != nil {
				nb.MAC, nb.Port, nb.Located = mac, holder.Key, holder.Located()
			}
		}
	}
	return nb
}

// pairMAC is the MAC a port uses for a single address of its allowed
// pairs.
func pairMAC(p Port, ip netip.Addr) net.HardwareAddr {
	for _, ap := range p.Pairs {
		if ap.Single && ap.Prefix.Addr() == ip {
			return ap.MAC
		}
	}
	return nil
}

// Neighbour is the one entry of Neighbours for an address, found without
// building the network's whole table: the ARP answer and the routing next
// hop for one punt, from the index of who claims what.
func (v *View) Neighbour(network string, ip netip.Addr) (Neighbour, bool) {
	for _, ri := range v.ifacesByNet[network] {
		if ri.IP == ip {
			return Neighbour{IP: ip, MAC: ri.MAC, Port: ri.Port.Key, Router: true, Located: true}, true
		}
	}
	keys := v.addrClaims.get(network)[ip]
	switch len(keys) {
	case 0:
		return Neighbour{}, false
	case 1:
		p, _ := v.ports.getKey(keys[0])
		mac := p.MAC
		if !slices.ContainsFunc(p.FixedIPs, func(f FixedIP) bool { return f.Addr == ip }) {
			mac = pairMAC(*p, ip)
		}
		return Neighbour{IP: ip, MAC: mac, Port: p.Key, Located: p.Located()}, true
	}
	return v.sharedNeighbour(network, ip), true
}

// SharedAddresses are the addresses of a network that several ports
// claim (VIPs), a router's gateways aside, sorted: the entries of
// Neighbours with Shared set.
func (v *View) SharedAddresses(network string) []netip.Addr {
	var out []netip.Addr
	for ip, keys := range v.addrClaims.get(network) {
		if len(keys) > 1 && !v.isGateway(network, ip) {
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

func (v *View) isGateway(network string, ip netip.Addr) bool {
	for _, ri := range v.ifacesByNet[network] {
		if ri.IP == ip {
			return true
		}
	}
	return false
}
