// Package view is the typed, read-only picture of the topology that the
// pure apps compute flows from. It is built once per applied raft index
// (Build, under the store's read lock) and shared by every reader of that
// index: addresses are netip.Addr and netip.Prefix, MACs
// net.HardwareAddr, datapath ids uint64, and everything is indexed the
// ways the apps look it up, so no app parses a string or scans the cloud.
//
// It imports internal/topology and the standard library only, and holds
// no clock, logger or I/O. A View never changes once built;
// WithChassisPorts derives a new one, and a Builder the next index's.
package view

import (
	"cmp"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Network is a logical L2 network.
type Network struct {
	ID             string
	Key            uint32 // the pipeline's NetworkKey
	Type           string // topology.TypeVXLAN or TypeGRE
	SegmentationID uint32
	MTU            int
	AdminUp        bool
	// DNSDomain is the domain of its ports' names, without the trailing
	// dot; "" when the network has none.
	DNSDomain string
	// PhysicalNetwork of a flat or vlan network; External: router:external.
	PhysicalNetwork string
	External        bool
}

// VLAN is the network's VLAN id on its physical network: its
// segmentation id for a vlan network, 0 (untagged) otherwise.
func (n Network) VLAN() uint16 {
	if n.Type == topology.TypeVLAN {
		return uint16(n.SegmentationID)
	}
	return 0
}

// Provider reports whether the network is carried by a physical network.
func (n Network) Provider() bool { return topology.IsProvider(n.Type) }

// Subnet is an IPv4 prefix of a network.
type Subnet struct {
	ID        string
	NetworkID string
	Prefix    netip.Prefix
	Gateway   netip.Addr // invalid when the subnet has none
	DHCP      bool       // enable_dhcp
	// DNSServers and HostRoutes are what its DHCP hands out (IPv4 only;
	// entries that do not parse are left out).
	DNSServers []netip.Addr
	HostRoutes []Route
}

// Route is a subnet's host route.
type Route struct {
	Dst     netip.Prefix
	NextHop netip.Addr
}

// FixedIP is one address of a port, in a subnet.
type FixedIP struct {
	SubnetID string
	Addr     netip.Addr
}

// Pair is one allowed address pair: an address (Single) or a CIDR the
// port may also send from, with the MAC it uses for it.
type Pair struct {
	Prefix netip.Prefix // masked; a single address is a /32
	Single bool         // written as one address, not as a CIDR
	MAC    net.HardwareAddr
}

// Port is a logical port. It is located when it is plugged into a
// chassis' bridge: Chassis and OFPort are both set.
type Port struct {
	ID           string
	Key          uint32 // the pipeline's port keys, and the port's cookie object
	NetworkID    string
	NetworkKey   uint32
	MAC          net.HardwareAddr
	FixedIPs     []FixedIP // IPv4 only
	Pairs        []Pair    // IPv4 only
	PortSecurity bool
	DeviceOwner  string
	DeviceID     string
	AdminUp      bool
	Chassis      string
	OFPort       uint32
	Status       string
	DNSName      string // lower case, no trailing dot
	DHCPOpts     []topology.ExtraDHCPOpt
	// SecurityGroups are the ids of the port's security groups.
	SecurityGroups []string
	rev            uint64 // the store's revision it was typed from
}

// Located reports whether the port is plugged into a chassis' bridge.
func (p Port) Located() bool { return p.Chassis != "" && p.OFPort != 0 }

// Router is a distributed logical router.
type Router struct {
	ID      string
	Key     uint32 // the pipeline's RouterKey
	AdminUp bool
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

// Chassis is a hypervisor with an integration bridge.
type Chassis struct {
	Name       string
	Key        uint32
	EncapIP    netip.Addr // invalid when not an IPv4 address
	Encaps     []string
	DVRMAC     net.HardwareAddr // nil unless in the DVR MAC range
	DatapathID uint64
	NodeID     string
	Connected  bool
	// Bridge and DatapathType: the chassis' integration bridge.
	Bridge       string
	DatapathType string
	// Mappings: physical network → the OVS bridge of its uplink.
	Mappings map[string]string
	// Gateway may host routers' SNAT; Unreachable: the leader lost it.
	Gateway     bool
	Unreachable bool
}

// HasEncap reports whether a chassis terminates the encapsulation.
func (c Chassis) HasEncap(typ string) bool { return slices.Contains(c.Encaps, typ) }

// Bridge is the facts of one integration bridge that the apps need beyond
// the topology.
type Bridge struct {
	Chassis string
	// TunnelPorts maps an encapsulation (vxlan, gre) to the OpenFlow port
	// of the bridge's flow-based tunnel port of that type.
	TunnelPorts map[string]uint32
	// PhysicalPorts maps a physical network to the OpenFlow port of the
	// bridge's patch port to that network's bridge.
	PhysicalPorts map[string]uint32
}

// Equal reports whether two bridges' facts are the same.
func (b Bridge) Equal(o Bridge) bool {
	return b.Chassis == o.Chassis && maps.Equal(b.TunnelPorts, o.TunnelPorts) && maps.Equal(b.PhysicalPorts, o.PhysicalPorts)
}

// View is a read-only, typed, indexed copy of the topology at one applied
// index.
type View struct {
	index    uint64
	networks map[string]Network
	netByKey map[uint32]Network
	subnets  map[string]Subnet
	chassis  map[string]Chassis
	routers  map[string]Router
	rtrByKey map[uint32]Router
	// every port (router interfaces included), by id and by key; Ports
	// are shared by the views built from one Builder, never changed
	ports portTable
	// the ports owned by a router as its interfaces, by id
	routerPorts map[string]*Port
	// every port of each network, and the located ones, in key order
	netPorts map[string][]*Port
	located  map[string][]*Port
	// networks with a located port on each chassis, in key order, and
	// the chassis hosting each network, by name
	hosted map[string][]Network
	hosts  map[string][]string
	// owners of shared addresses: network → address → port id
	vipOwners map[string]map[netip.Addr]string
	// interfaces of the routers that are up, by network and by router,
	// in port key order
	ifacesByNet map[string][]RouterInterface
	ifacesByRtr map[string][]RouterInterface
	// who claims what in each network, in port key order: addresses
	// (fixed IPs and single-address pairs of ports that are not router
	// interfaces) and MACs (every port's own and its pairs')
	addrClaims map[string]map[netip.Addr][]uint32
	macClaims  map[string]map[string][]uint32
	// north-south: routers' gateways and static routes, floating IPs,
	// learned neighbours on physical networks; and who serves them
	gateways       map[string]Gateway
	staticRoutes   map[string][]Route
	fips           []FloatingIP
	extNeighbours  map[string]map[netip.Addr]net.HardwareAddr
	gatewayChassis map[string]string
	fipsOn         map[string][]FloatingIP
	served         map[string][]Network // chassis → ServedNetworks, where more than hosted
	sgs            map[string]SecurityGroup
}

// Build copies the store into a View. Call it under the store's read
// lock; the View shares nothing with the store.
func Build(s *topology.Store) *View { return new(Builder).Build(s) }

// Builder builds views of one store, one applied index after another.
// Build types again only the ports whose revision (the raft index of
// their last change) moved since its last view; Next, told what changed,
// looks at those ports alone. Either way the per-network indexes of the
// networks no changed port is in are the last view's, shared.
type Builder struct {
	prev *View
}

// Build is Build, reusing the typed ports of the builder's last view: it
// walks every port of the store.
func (b *Builder) Build(s *topology.Store) *View {
	v := b.base(s, nil, keepParts{})
	prev := b.prev
	var w portWriter
	var changed []portChange
	if prev == nil {
		w.fresh(&v.ports)
		s.EachPortRef(func(p *topology.Port) {
			if tp, ok := v.port(p); ok {
				w.put(&tp)
			}
		})
	} else {
		v.ports = prev.ports
		w.t = &v.ports
		seen := make(map[string]bool, prev.ports.len())
		s.EachPortRef(func(p *topology.Port) {
			seen[p.ID] = true
			if c, ok := v.retype(&w, prev, p); ok {
				changed = append(changed, c)
			}
		})
		prev.ports.each(func(old *Port) {
			if !seen[old.ID] {
				w.remove(old.ID)
				changed = append(changed, portChange{old: old})
			}
		})
	}
	return b.finish(s, v, prev, changed)
}

// Next is the view after changes, the committed changes since the
// builder's last view (nil when none changed an object): the same view
// Build makes. Only a change to a network or a subnet, which ports are
// typed against, makes it walk every port.
func (b *Builder) Next(s *topology.Store, changes []topology.Change) *View {
	prev := b.prev
	if prev == nil {
		return b.Build(s)
	}
	for _, c := range changes {
		if c.Resource == topology.ResourceNetwork || c.Resource == topology.ResourceSubnet {
			return b.Build(s)
		}
	}
	// What no change touched is the previous view's (views never change).
	var keep keepParts
	keep.networks, keep.chassis, keep.routers = true, true, true
	for _, c := range changes {
		switch c.Resource {
		case topology.ResourceChassis:
			keep.chassis = false
		case topology.ResourceRouter:
			keep.routers = false
		}
	}
	v := b.base(s, prev, keep)
	v.ports = prev.ports
	w := portWriter{t: &v.ports}
	var changed []portChange
	done := map[string]bool{}
	for _, c := range changes {
		if c.Resource != topology.ResourcePort || done[c.ID] {
			continue
		}
		done[c.ID] = true
		if p, ok := s.PortRef(c.ID); ok {
			if pc, ok := v.retype(&w, prev, p); ok {
				changed = append(changed, pc)
			}
		} else if old, ok := prev.ports.get(c.ID); ok {
			w.remove(c.ID)
			changed = append(changed, portChange{old: old})
		}
	}
	return b.finish(s, v, prev, changed)
}

// portChange is a port that differs from the previous view's: the
// previous *Port (nil for a new one) and the new (nil when gone).
type portChange struct{ old, new *Port }

// retype brings one store port into the view's table: the previous
// view's typed port while its revision and network stand, else typed
// again (or taken out when its network is gone). ok reports a change.
func (v *View) retype(w *portWriter, prev *View, p *topology.Port) (portChange, bool) {
	old, had := prev.ports.get(p.ID)
	if had && old.rev == p.RevisionNumber && old.NetworkID == p.NetworkID {
		if _, ok := v.networks[p.NetworkID]; ok {
			return portChange{}, false
		}
	}
	tp, ok := v.port(p)
	switch {
	case ok:
		w.put(&tp)
		if !had {
			old = nil
		}
		return portChange{old: old, new: &tp}, true
	case had:
		w.remove(p.ID)
		return portChange{old: old}, true
	}
	return portChange{}, false
}

// keepParts are the parts of the previous view a new one shares.
type keepParts struct{ networks, chassis, routers bool }

// base types everything but the ports, sharing with prev what keep says
// is unchanged.
func (b *Builder) base(s *topology.Store, prev *View, keep keepParts) *View {
	v := &View{index: s.Index(), vipOwners: map[string]map[netip.Addr]string{}}
	if keep.networks {
		v.networks, v.netByKey, v.subnets = prev.networks, prev.netByKey, prev.subnets
	} else {
		v.typeNetworks(s)
	}
	if keep.chassis {
		v.chassis = prev.chassis
	} else {
		v.typeChassis(s)
	}
	if keep.routers {
		v.routers, v.rtrByKey = prev.routers, prev.rtrByKey
	} else {
		v.typeRouters(s)
	}
	s.EachVIPOwner(func(network string, ip netip.Addr, port string) {
		if v.vipOwners[network] == nil {
			v.vipOwners[network] = map[netip.Addr]string{}
		}
		v.vipOwners[network][ip] = port
	})
	return v
}

// typeNetworks types the networks and subnets.
func (v *View) typeNetworks(s *topology.Store) {
	v.networks, v.netByKey, v.subnets = map[string]Network{}, map[uint32]Network{}, map[string]Subnet{}
	s.EachNetwork(func(n topology.Network) {
		tn := Network{ID: n.ID, Key: n.Key, Type: n.NetworkType, SegmentationID: n.SegmentationID, MTU: n.MTU, AdminUp: n.AdminStateUp,
			DNSDomain:       strings.ToLower(strings.TrimSuffix(n.DNSDomain, ".")),
			PhysicalNetwork: n.PhysicalNetwork, External: n.External}
		v.networks[n.ID], v.netByKey[n.Key] = tn, tn
	})
	s.EachSubnet(func(sn topology.Subnet) {
		ts := Subnet{ID: sn.ID, NetworkID: sn.NetworkID}
		if p, err := netip.ParsePrefix(sn.CIDR); err == nil {
			ts.Prefix = p.Masked()
		}
		if sn.GatewayIP != nil {
			ts.Gateway, _ = netip.ParseAddr(*sn.GatewayIP)
		}
		ts.DHCP = sn.EnableDHCP
		for _, d := range sn.DNSNameservers {
			if ip, err := netip.ParseAddr(d); err == nil && ip.Is4() {
				ts.DNSServers = append(ts.DNSServers, ip)
			}
		}
		for _, r := range sn.HostRoutes {
			dst, err1 := netip.ParsePrefix(r.Destination)
			hop, err2 := netip.ParseAddr(r.NextHop)
			if err1 == nil && err2 == nil && dst.Addr().Is4() && hop.Is4() {
				ts.HostRoutes = append(ts.HostRoutes, Route{Dst: dst.Masked(), NextHop: hop})
			}
		}
		v.subnets[sn.ID] = ts
	})
}

// typeChassis types the chassis.
func (v *View) typeChassis(s *topology.Store) {
	v.chassis = map[string]Chassis{}
	s.EachChassis(func(c topology.Chassis) {
		tc := Chassis{Name: c.Name, Key: c.Key, Encaps: slices.Clone(c.Encaps), NodeID: c.NodeID, Connected: c.Connected,
			Bridge: c.Bridge, DatapathType: c.DatapathType, Mappings: maps.Clone(c.BridgeMappings),
			Gateway: c.Gateway, Unreachable: c.Unreachable}
		if ip, err := netip.ParseAddr(c.EncapIP); err == nil && ip.Is4() {
			tc.EncapIP = ip
		}
		if mac, err := net.ParseMAC(c.DVRMAC); err == nil && topology.IsDVRMAC(mac) {
			tc.DVRMAC = mac
		}
		tc.DatapathID, _ = strconv.ParseUint(c.DatapathID, 16, 64)
		v.chassis[c.Name] = tc
	})
}

// typeRouters types the routers.
func (v *View) typeRouters(s *topology.Store) {
	v.routers, v.rtrByKey = map[string]Router{}, map[uint32]Router{}
	s.EachRouter(func(r topology.Router) {
		tr := Router{ID: r.ID, Key: r.Key, AdminUp: r.AdminStateUp}
		v.routers[r.ID], v.rtrByKey[r.Key] = tr, tr
	})
}

// finish indexes the view's ports and types what depends on them.
func (b *Builder) finish(s *topology.Store, v, prev *View, changed []portChange) *View {
	v.buildExternal(s)
	v.buildSecurityGroups(s)
	v.index_(prev, changed)
	b.prev = v
	return v
}

// port types a store port; ok is false for a port whose MAC does not
// parse (the store never holds one) or whose network is gone.
func (v *View) port(p *topology.Port) (Port, bool) {
	mac, err := net.ParseMAC(p.MACAddress)
	n, ok := v.networks[p.NetworkID]
	if err != nil || !ok {
		return Port{}, false
	}
	tp := Port{ID: p.ID, Key: p.Key, NetworkID: p.NetworkID, NetworkKey: n.Key, MAC: mac,
		PortSecurity: p.PortSecurityEnabled, DeviceOwner: p.DeviceOwner, DeviceID: p.DeviceID, AdminUp: p.AdminStateUp,
		Chassis: p.HostID, OFPort: p.OFPort, Status: p.Status, rev: p.RevisionNumber,
		DNSName: strings.ToLower(strings.TrimSuffix(p.DNSName, ".")), DHCPOpts: p.ExtraDHCPOpts,
		SecurityGroups: slices.Clone(p.SecurityGroups)}
	for _, f := range p.FixedIPs {
		if ip, err := netip.ParseAddr(f.IPAddress); err == nil && ip.Is4() {
			tp.FixedIPs = append(tp.FixedIPs, FixedIP{SubnetID: f.SubnetID, Addr: ip})
		}
	}
	for _, ap := range p.AllowedAddressPairs {
		pm, err := net.ParseMAC(ap.MACAddress)
		if err != nil {
			pm = mac
		}
		if ip, err := netip.ParseAddr(ap.IPAddress); err == nil {
			if ip.Is4() {
				tp.Pairs = append(tp.Pairs, Pair{Prefix: netip.PrefixFrom(ip, 32), Single: true, MAC: pm})
			}
			continue
		}
		if pfx, err := netip.ParsePrefix(ap.IPAddress); err == nil && pfx.Addr().Is4() {
			tp.Pairs = append(tp.Pairs, Pair{Prefix: pfx.Masked(), MAC: pm})
		}
	}
	return tp, true
}

// index_ builds the indexes over ports and router interfaces. With a
// previous view, changed are the ports that differ from its: every
// network keeps the previous view's per-network indexes (which views
// share read only) and those with changed ports are patched, so a batch
// of changes costs its networks, not the cloud. Without one it indexes
// every port.
func (v *View) index_(prev *View, changed []portChange) {
	if prev == nil {
		v.netPorts, v.located = make(map[string][]*Port, len(v.networks)), make(map[string][]*Port, len(v.networks))
		v.addrClaims, v.macClaims = make(map[string]map[netip.Addr][]uint32, len(v.networks)), make(map[string]map[string][]uint32, len(v.networks))
		v.hosts = make(map[string][]string, len(v.networks))
		v.indexAll()
	} else {
		v.indexChanges(prev, changed)
	}
	v.ifacesByNet, v.ifacesByRtr = map[string][]RouterInterface{}, map[string][]RouterInterface{}
	for _, p := range v.routerPorts {
		v.addInterface(p)
	}
	for _, m := range []map[string][]RouterInterface{v.ifacesByNet, v.ifacesByRtr} {
		for _, is := range m {
			slices.SortFunc(is, func(a, b RouterInterface) int { return cmp.Compare(a.Port.Key, b.Port.Key) })
		}
	}
	v.indexExternal()
}

// indexAll indexes every port afresh.
func (v *View) indexAll() {
	v.routerPorts = map[string]*Port{}
	v.ports.each(func(p *Port) {
		if p.DeviceOwner == topology.OwnerRouterInterface {
			v.routerPorts[p.ID] = p
		}
		v.netPorts[p.NetworkID] = append(v.netPorts[p.NetworkID], p)
		v.indexClaims(p)
		if p.Located() {
			v.located[p.NetworkID] = append(v.located[p.NetworkID], p)
		}
	})
	byKey := func(a, b *Port) int { return cmp.Compare(a.Key, b.Key) }
	for id := range v.netPorts {
		slices.SortFunc(v.netPorts[id], byKey)
		slices.SortFunc(v.located[id], byKey)
		for _, ks := range v.addrClaims[id] {
			slices.Sort(ks)
		}
		for _, ks := range v.macClaims[id] {
			slices.Sort(ks)
		}
	}
	for id, ps := range v.located {
		v.hosts[id] = hostsOf(ps)
	}
	v.hosted = map[string][]Network{}
	v.indexHosted()
}

// indexChanges patches the previous view's indexes with the changed
// ports.
func (v *View) indexChanges(prev *View, changed []portChange) {
	v.routerPorts = prev.routerPorts
	byNet := map[string][]portChange{}
	ownRouterPorts := false
	for _, c := range changed {
		switch {
		case c.old != nil && c.new != nil && c.old.NetworkID != c.new.NetworkID:
			byNet[c.old.NetworkID] = append(byNet[c.old.NetworkID], portChange{old: c.old})
			byNet[c.new.NetworkID] = append(byNet[c.new.NetworkID], portChange{new: c.new})
		case c.new != nil:
			byNet[c.new.NetworkID] = append(byNet[c.new.NetworkID], c)
		default:
			byNet[c.old.NetworkID] = append(byNet[c.old.NetworkID], c)
		}
		wasRouter := c.old != nil && c.old.DeviceOwner == topology.OwnerRouterInterface
		isRouter := c.new != nil && c.new.DeviceOwner == topology.OwnerRouterInterface
		if !wasRouter && !isRouter {
			continue
		}
		if !ownRouterPorts {
			v.routerPorts, ownRouterPorts = maps.Clone(v.routerPorts), true
		}
		if wasRouter {
			delete(v.routerPorts, c.old.ID)
		}
		if isRouter {
			v.routerPorts[c.new.ID] = c.new
		}
	}
	// Every network keeps the previous view's indexes; a network gone
	// takes its own with it.
	same := sameNetworks(v.networks, prev.networks)
	v.netPorts, v.located = maps.Clone(prev.netPorts), maps.Clone(prev.located)
	v.addrClaims, v.macClaims = maps.Clone(prev.addrClaims), maps.Clone(prev.macClaims)
	v.hosts = maps.Clone(prev.hosts)
	if !same {
		for id := range prev.networks {
			if _, ok := v.networks[id]; !ok {
				delete(v.netPorts, id)
				delete(v.located, id)
				delete(v.addrClaims, id)
				delete(v.macClaims, id)
				delete(v.hosts, id)
			}
		}
	}
	var moved []string // networks whose hosts changed
	for id, cs := range byNet {
		if _, ok := v.networks[id]; !ok {
			continue
		}
		v.patch(id, cs)
		if len(v.located[id]) == 0 {
			delete(v.located, id)
		}
		if hs := hostsOf(v.located[id]); !slices.Equal(hs, v.hosts[id]) {
			if len(hs) == 0 {
				delete(v.hosts, id)
			} else {
				v.hosts[id] = hs
			}
			moved = append(moved, id)
		}
	}
	// Who hosts what: the previous view's, unless a network came, went
	// or changed (a hosted network is a copy of its record).
	if !same {
		v.hosted = map[string][]Network{}
		v.indexHosted()
		return
	}
	v.hosted = prev.hosted
	if len(moved) == 0 {
		return
	}
	v.hosted = maps.Clone(prev.hosted)
	byKey := func(a, b Network) int { return cmp.Compare(a.Key, b.Key) }
	for _, id := range moved {
		n := v.networks[id]
		was, now := prev.hosts[id], v.hosts[id]
		for _, c := range was {
			if _, ok := slices.BinarySearch(now, c); !ok {
				ns := slices.DeleteFunc(slices.Clone(v.hosted[c]), func(o Network) bool { return o.ID == id })
				if len(ns) == 0 {
					delete(v.hosted, c)
				} else {
					v.hosted[c] = ns
				}
			}
		}
		for _, c := range now {
			if _, ok := slices.BinarySearch(was, c); !ok {
				ns := v.hosted[c]
				i, _ := slices.BinarySearchFunc(ns, n, byKey)
				v.hosted[c] = slices.Insert(slices.Clone(ns), i, n)
			}
		}
	}
}

// sameNetworks reports whether two views hold the same networks, each
// with the same record.
func sameNetworks(a, b map[string]Network) bool {
	if len(a) != len(b) {
		return false
	}
	for id, n := range a {
		if o, ok := b[id]; !ok || o != n {
			return false
		}
	}
	return true
}

// indexHosted fills hosted from hosts: the networks of each chassis, in
// key order.
func (v *View) indexHosted() {
	for id, hs := range v.hosts {
		for _, c := range hs {
			v.hosted[c] = append(v.hosted[c], v.networks[id])
		}
	}
	for _, ns := range v.hosted {
		slices.SortFunc(ns, func(a, b Network) int { return cmp.Compare(a.Key, b.Key) })
	}
}

// hostsOf are the chassis of located ports, sorted, each once.
func hostsOf(ps []*Port) []string {
	var hs []string
	for _, p := range ps {
		if !slices.Contains(hs, p.Chassis) {
			hs = append(hs, p.Chassis)
		}
	}
	slices.Sort(hs)
	return hs
}

// patch moves one network's indexes, shared with the previous view, to
// its changed ports: copies of the slices and maps, with the old ports'
// entries out and the new ports' in. It costs the network's size in
// copying, not in building.
func (v *View) patch(network string, cs []portChange) {
	byKey := func(a, b *Port) int { return cmp.Compare(a.Key, b.Key) }
	ports := slices.Clone(v.netPorts[network])
	for _, c := range cs {
		if c.old != nil {
			if i, ok := slices.BinarySearchFunc(ports, c.old, byKey); ok {
				ports = slices.Delete(ports, i, i+1)
			}
		}
		if c.new != nil {
			i, _ := slices.BinarySearchFunc(ports, c.new, byKey)
			ports = slices.Insert(ports, i, c.new)
		}
	}
	v.netPorts[network] = ports
	var located []*Port
	for _, p := range ports {
		if p.Located() {
			located = append(located, p)
		}
	}
	v.located[network] = located
	addrs, macs := maps.Clone(v.addrClaims[network]), maps.Clone(v.macClaims[network])
	if addrs == nil {
		addrs = map[netip.Addr][]uint32{}
	}
	if macs == nil {
		macs = map[string][]uint32{}
	}
	v.addrClaims[network], v.macClaims[network] = addrs, macs
	for _, c := range cs {
		if c.old != nil {
			for _, a := range claimedAddrs(c.old) {
				addrs[a] = without(addrs[a], c.old.Key)
				if len(addrs[a]) == 0 {
					delete(addrs, a)
				}
			}
			for _, mac := range c.old.MACs() {
				m := string(mac)
				macs[m] = without(macs[m], c.old.Key)
				if len(macs[m]) == 0 {
					delete(macs, m)
				}
			}
		}
	}
	for _, c := range cs {
		if c.new != nil {
			for _, a := range claimedAddrs(c.new) {
				addrs[a] = with(addrs[a], c.new.Key)
			}
			for _, mac := range c.new.MACs() {
				macs[string(mac)] = with(macs[string(mac)], c.new.Key)
			}
		}
	}
}

// addInterface indexes a router interface port, if its router is up and
// the port is whole (a fixed IP in a known subnet).
func (v *View) addInterface(p *Port) {
	r, ok := v.routers[p.DeviceID]
	if !ok || !r.AdminUp || len(p.FixedIPs) == 0 {
		return
	}
	sn, ok := v.subnets[p.FixedIPs[0].SubnetID]
	if !ok || !sn.Prefix.IsValid() {
		return
	}
	ri := RouterInterface{Router: r, Port: *p, Network: v.networks[p.NetworkID], Subnet: sn.ID,
		Prefix: sn.Prefix, IP: p.FixedIPs[0].Addr, MAC: p.MAC}
	v.ifacesByNet[p.NetworkID] = append(v.ifacesByNet[p.NetworkID], ri)
	v.ifacesByRtr[r.ID] = append(v.ifacesByRtr[r.ID], ri)
}

// WithChassisPorts derives a view in which a chassis' plugged ports are
// exactly bindings — those listed plugged into it with their ofports,
// those it held before but not listed unplugged — as the chassis itself
// sees them, before raft has recorded it: its own bridge is programmed
// from this view the moment a VM is plugged. Ports the view does not hold
// are ignored; v itself is not changed.
func (v *View) WithChassisPorts(chassis string, bindings []topology.Binding) *View {
	listed := make(map[string]uint32, len(bindings))
	c := v.chassis[chassis]
	for _, b := range bindings {
		if p, ok := v.ports.get(b.PortID); ok && c.Reaches(v.networks[p.NetworkID]) {
			listed[b.PortID] = b.OFPort
		}
	}
	// The ports to change: listed ones plugged elsewhere or at another
	// ofport, and the chassis' plugged ones not listed.
	var moves []*Port
	for id, ofport := range listed {
		if p, _ := v.ports.get(id); p.Chassis != chassis || p.OFPort != ofport {
			c := *p
			c.Chassis, c.OFPort = chassis, ofport
			moves = append(moves, &c)
		}
	}
	for _, p := range v.LocalPorts(chassis) {
		if _, ok := listed[p.ID]; !ok {
			c := *p
			c.OFPort = 0
			moves = append(moves, &c)
		}
	}
	if len(moves) == 0 {
		return v
	}
	d := *v
	w := portWriter{t: &d.ports}
	changed := make([]portChange, 0, len(moves))
	for _, p := range moves {
		old, _ := v.ports.get(p.ID)
		w.put(p)
		changed = append(changed, portChange{old: old, new: p})
	}
	d.index_(v, changed)
	return &d
}
