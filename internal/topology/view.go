package topology

import (
	"net"
	"net/netip"
	"sort"
)

// View is a read-only copy of what the pipeline apps need, indexed for
// flow computation: networks, located ports and chassis. Build it once per
// recompute (NewView, under the store's read lock); the apps only read it.
type View struct {
	networks map[string]Network
	chassis  map[string]Chassis
	// located ports (bound to a chassis with an ofport), by network, in
	// port key order
	byNetwork map[string][]Port
	// networks with a located port on each chassis, in network key order
	hosted map[string][]Network
	// chassis hosting each network, by name
	hosts map[string][]string
	// located ports by id
	located map[string]Port
	// owners of shared addresses: network → address → port id
	vipOwners map[string]map[netip.Addr]string
	byKey     map[uint32]Port
	netByKey  map[uint32]Network
	// every router by id, and the interfaces of the routers that are up,
	// by network and by router, in port key order
	routers     map[string]Router
	routerByKey map[uint32]Router
	ifacesByNet map[string][]RouterInterface
	ifacesByRtr map[string][]RouterInterface
}

// RouterInterface is a router's leg in one subnet: the port that holds
// the subnet's gateway address, with the router's MAC on that subnet.
type RouterInterface struct {
	Router  Router
	Port    Port
	Network Network
	Subnet  string
	Prefix  netip.Prefix // the subnet's CIDR
	IP      netip.Addr   // the gateway address
	MAC     net.HardwareAddr
}

// Bridge is the facts of one integration bridge that the apps need beyond
// the topology.
type Bridge struct {
	Chassis string
	// TunnelPorts maps an encapsulation (vxlan, gre) to the OpenFlow port
	// of the bridge's flow-based tunnel port of that type.
	TunnelPorts map[string]uint32
}

// Located reports whether a port is plugged into a chassis' bridge.
func (p Port) Located() bool { return p.HostID != "" && p.OFPort != 0 }

// NewView copies the store into a View.
func NewView(s *Store) *View {
	v := &View{
		networks:  make(map[string]Network, len(s.networks)),
		chassis:   make(map[string]Chassis, len(s.chassis)),
		byNetwork: map[string][]Port{},
		hosted:    map[string][]Network{},
		hosts:     map[string][]string{},
		located:   map[string]Port{},
		vipOwners: map[string]map[netip.Addr]string{},
		byKey:     map[uint32]Port{},
		netByKey:  map[uint32]Network{},

		routers:     map[string]Router{},
		routerByKey: map[uint32]Router{},
		ifacesByNet: map[string][]RouterInterface{},
		ifacesByRtr: map[string][]RouterInterface{},
	}
	for id, r := range s.routers {
		v.routers[id] = *r
		v.routerByKey[r.Key] = *r
	}
	for net, m := range s.vipOwners {
		for ip := range m {
			if id, ok := s.VIPOwner(net, ip); ok {
				if v.vipOwners[net] == nil {
					v.vipOwners[net] = map[netip.Addr]string{}
				}
				v.vipOwners[net][ip] = id
			}
		}
	}
	for id, n := range s.networks {
		v.networks[id] = *n
		v.netByKey[n.Key] = *n
	}
	for name, c := range s.chassis {
		v.chassis[name] = *c
	}
	seen := map[[2]string]bool{}
	for _, p := range s.ports {
		if p.DeviceOwner == OwnerRouterInterface {
			v.addInterface(s, *p)
		}
		if !p.Located() {
			continue
		}
		v.byNetwork[p.NetworkID] = append(v.byNetwork[p.NetworkID], *p)
		v.located[p.ID] = *p
		v.byKey[p.Key] = *p
		k := [2]string{p.HostID, p.NetworkID}
		if !seen[k] {
			seen[k] = true
			v.hosted[p.HostID] = append(v.hosted[p.HostID], v.networks[p.NetworkID])
			v.hosts[p.NetworkID] = append(v.hosts[p.NetworkID], p.HostID)
		}
	}
	for _, ps := range v.byNetwork {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Key < ps[j].Key })
	}
	for _, ns := range v.hosted {
		sort.Slice(ns, func(i, j int) bool { return ns[i].Key < ns[j].Key })
	}
	for _, hs := range v.hosts {
		sort.Strings(hs)
	}
	for _, m := range []map[string][]RouterInterface{v.ifacesByNet, v.ifacesByRtr} {
		for _, is := range m {
			sort.Slice(is, func(i, j int) bool { return is[i].Port.Key < is[j].Port.Key })
		}
	}
	return v
}

// addInterface indexes a router interface port, if its router is up and
// the port is whole (one fixed IP in a known subnet, a valid MAC).
func (v *View) addInterface(s *Store, p Port) {
	r, ok := s.routers[p.DeviceID]
	if !ok || !r.AdminStateUp || len(p.FixedIPs) == 0 {
		return
	}
	sn, ok := s.subnets[p.FixedIPs[0].SubnetID]
	if !ok {
		return
	}
	prefix, err1 := netip.ParsePrefix(sn.CIDR)
	ip, err2 := netip.ParseAddr(p.FixedIPs[0].IPAddress)
	mac, err3 := net.ParseMAC(p.MACAddress)
	n, ok := s.networks[p.NetworkID]
	if err1 != nil || err2 != nil || err3 != nil || !ok {
		return
	}
	ri := RouterInterface{Router: *r, Port: p, Network: *n, Subnet: sn.ID, Prefix: prefix, IP: ip, MAC: mac}
	v.ifacesByNet[n.ID] = append(v.ifacesByNet[n.ID], ri)
	v.ifacesByRtr[r.ID] = append(v.ifacesByRtr[r.ID], ri)
}

// Router returns a router by id, up or not.
func (v *View) Router(id string) (Router, bool) {
	r, ok := v.routers[id]
	return r, ok
}

// RouterByKey returns a router by its key (the pipeline's RouterKey).
func (v *View) RouterByKey(key uint32) (Router, bool) {
	r, ok := v.routerByKey[key]
	return r, ok
}

// NetworkInterfaces are the interfaces of routers that are up on a
// network, in port key order.
func (v *View) NetworkInterfaces(network string) []RouterInterface { return v.ifacesByNet[network] }

// RouterInterfaces are the interfaces of a router that is up, in port key
// order; none for a router that is down.
func (v *View) RouterInterfaces(router string) []RouterInterface { return v.ifacesByRtr[router] }

// ChassisRouters are the routers that are up with an interface on a
// network the chassis hosts: the routers its bridge routes for, in key
// order.
func (v *View) ChassisRouters(chassis string) []Router {
	seen := map[uint32]bool{}
	var out []Router
	for _, n := range v.hosted[chassis] {
		for _, ri := range v.ifacesByNet[n.ID] {
			if !seen[ri.Router.Key] {
				seen[ri.Router.Key] = true
				out = append(out, ri.Router)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// VIPOwner is the port holding a shared address of a network.
func (v *View) VIPOwner(network string, ip netip.Addr) (string, bool) {
	id, ok := v.vipOwners[network][ip]
	return id, ok
}

// LocatedPortByKey returns a located port by its key (the pipeline's
// register value).
func (v *View) LocatedPortByKey(key uint32) (Port, bool) {
	p, ok := v.byKey[key]
	return p, ok
}

// LocatedPort returns a port plugged into a chassis, by id.
func (v *View) LocatedPort(id string) (Port, bool) {
	p, ok := v.located[id]
	return p, ok
}

// NetworkByKey returns a network by its key (the pipeline's metadata).
func (v *View) NetworkByKey(key uint32) (Network, bool) {
	n, ok := v.netByKey[key]
	return n, ok
}

// Network returns a network by id.
func (v *View) Network(id string) (Network, bool) {
	n, ok := v.networks[id]
	return n, ok
}

// Chassis returns a chassis by name.
func (v *View) Chassis(name string) (Chassis, bool) {
	c, ok := v.chassis[name]
	return c, ok
}

// HostedNetworks are the networks with a port plugged into the chassis.
func (v *View) HostedNetworks(chassis string) []Network { return v.hosted[chassis] }

// NetworkPorts are the located ports of a network, on every chassis.
func (v *View) NetworkPorts(network string) []Port { return v.byNetwork[network] }

// NetworkHosts are the chassis with a port of the network.
func (v *View) NetworkHosts(network string) []string { return v.hosts[network] }

// Hosts reports whether a chassis hosts a network (has a port of it).
func (v *View) Hosts(chassis, network string) bool {
	for _, c := range v.hosts[network] {
		if c == chassis {
			return true
		}
	}
	return false
}

// LocalPorts are the ports plugged into the chassis, by network key then
// port key.
func (v *View) LocalPorts(chassis string) []Port {
	var out []Port
	for _, n := range v.hosted[chassis] {
		for _, p := range v.byNetwork[n.ID] {
			if p.HostID == chassis {
				out = append(out, p)
			}
		}
	}
	return out
}

// HasEncap reports whether a chassis terminates the encapsulation.
func (c Chassis) HasEncap(typ string) bool {
	for _, e := range c.Encaps {
		if e == typ {
			return true
		}
	}
	return false
}

// Neighbour is who answers for an IPv4 address in a network: the network's
// ARP table, as the ARP responder answers it and as a router resolves its
// next hop.
type Neighbour struct {
	IP netip.Addr
	// MAC answers for IP; nil for a shared address no port has announced
	// yet.
	MAC net.HardwareAddr
	// Port is the key of the port that holds IP: a located port, or a
	// router interface (Router true).
	Port   uint32
	Router bool
	// Shared: several ports claim IP (a VIP in their allowed address
	// pairs); Port and MAC are those of the one that announced it last.
	Shared bool
}

// Neighbours are the addresses of a network that one port answers for,
// sorted by address: the gateways of the routers that are up on it (which
// no port's claim overrides), the fixed IPs of
// its located ports, the single addresses of their allowed address pairs
// (with the pair's MAC), and shared addresses, with their holder when one
// has announced itself. A CIDR pair names no single address.
func (v *View) Neighbours(network string) []Neighbour {
	type claim struct {
		n      Neighbour
		shared bool
	}
	claims := map[netip.Addr]*claim{}
	add := func(ip netip.Addr, key uint32, mac net.HardwareAddr, router bool) {
		if c, ok := claims[ip]; ok {
			// A gateway is the router's: no port's pair can share it
			// or take it over.
			if c.n.Port != key && !c.n.Router {
				c.shared = true
			}
			return
		}
		claims[ip] = &claim{n: Neighbour{IP: ip, MAC: mac, Port: key, Router: router}}
	}
	for _, ri := range v.ifacesByNet[network] {
		add(ri.IP, ri.Port.Key, ri.MAC, true)
	}
	for _, p := range v.byNetwork[network] {
		mac, err := net.ParseMAC(p.MACAddress)
		if err != nil {
			continue
		}
		for _, f := range p.FixedIPs {
			if ip, err := netip.ParseAddr(f.IPAddress); err == nil && ip.Is4() {
				add(ip, p.Key, mac, false)
			}
		}
		for _, ap := range p.AllowedAddressPairs {
			ip, err := netip.ParseAddr(ap.IPAddress)
			if err != nil || !ip.Is4() {
				continue
			}
			if m, err := net.ParseMAC(ap.MACAddress); err == nil {
				add(ip, p.Key, m, false)
			}
		}
	}
	out := make([]Neighbour, 0, len(claims))
	for ip, c := range claims {
		if !c.shared {
			out = append(out, c.n)
			continue
		}
		nb := Neighbour{IP: ip, Shared: true}
		if id, ok := v.VIPOwner(network, ip); ok {
			if holder, ok := v.located[id]; ok {
				if mac := pairMAC(holder, ip); mac != nil {
					nb.MAC, nb.Port = mac, holder.Key
				}
			}
		}
		out = append(out, nb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out
}

// pairMAC is the MAC a port uses for an address of its allowed pairs.
func pairMAC(p Port, ip netip.Addr) net.HardwareAddr {
	for _, ap := range p.AllowedAddressPairs {
		a, err := netip.ParseAddr(ap.IPAddress)
		if err != nil || a != ip {
			continue
		}
		if m, err := net.ParseMAC(ap.MACAddress); err == nil {
			return m
		}
	}
	return nil
}

// Neighbour is the one entry of Neighbours for an address, found without
// building the network's whole table: the ARP answer and the routing next
// hop for one punt.
func (v *View) Neighbour(network string, ip netip.Addr) (Neighbour, bool) {
	for _, ri := range v.ifacesByNet[network] {
		if ri.IP == ip {
			return Neighbour{IP: ip, MAC: ri.MAC, Port: ri.Port.Key, Router: true}, true
		}
	}
	// Stored addresses are canonical (fixed IPs are formatted by the
	// store, single-address pairs parsed strictly): compare text.
	want := ip.String()
	var first *Neighbour
	shared := false
	for i := range v.byNetwork[network] {
		p := &v.byNetwork[network][i]
		var mac net.HardwareAddr
		for _, f := range p.FixedIPs {
			if f.IPAddress == want {
				mac, _ = net.ParseMAC(p.MACAddress)
				break
			}
		}
		if mac == nil {
			for _, ap := range p.AllowedAddressPairs {
				if ap.IPAddress == want {
					if m, err := net.ParseMAC(ap.MACAddress); err == nil {
						mac = m
						break
					}
				}
			}
		}
		if mac == nil {
			continue
		}
		if _, err := net.ParseMAC(p.MACAddress); err != nil {
			continue // Neighbours skips such a port whole
		}
		switch {
		case first == nil:
			first = &Neighbour{IP: ip, MAC: mac, Port: p.Key}
		case first.Port != p.Key:
			shared = true
		}
	}
	if first == nil {
		return Neighbour{}, false
	}
	if !shared {
		return *first, true
	}
	nb := Neighbour{IP: ip, Shared: true}
	if id, ok := v.VIPOwner(network, ip); ok {
		if holder, ok := v.located[id]; ok {
			if mac := pairMAC(holder, ip); mac != nil {
				nb.MAC, nb.Port = mac, holder.Key
			}
		}
	}
	return nb, true
}
