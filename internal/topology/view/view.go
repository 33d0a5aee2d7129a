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
	"maps"
	"net"
	"net/netip"
	"slices"

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
	netPorts shardedMap[[]*Port]
	located  shardedMap[[]*Port]
	// networks with a located port on each chassis, in key order, and
	// the chassis hosting each network, by name
	hosted shardedMap[[]Network]
	hosts  shardedMap[[]string]
	// owners of shared addresses: network → address → port id
	vipOwners map[string]map[netip.Addr]string
	// interfaces of the routers that are up, by network and by router,
	// in port key order
	ifacesByNet map[string][]RouterInterface
	ifacesByRtr map[string][]RouterInterface
	// who claims what in each network, in port key order: addresses
	// (fixed IPs and single-address pairs of ports that are not router
	// interfaces) and MACs (every port's own and its pairs')
	addrClaims shardedMap[map[netip.Addr][]uint32]
	macClaims  shardedMap[map[string][]uint32]
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
