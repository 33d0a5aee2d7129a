package topology

import (
	"net"
	"net/netip"
	"sort"
	"time"
)

// Counters are the store's deterministic allocators.
type Counters struct {
	NetworkKey    uint32            `json:"network_key"`
	PortKey       uint32            `json:"port_key"`
	RouterKey     uint32            `json:"router_key"`
	ChassisKey    uint32            `json:"chassis_key"`
	MAC           uint32            `json:"mac"`
	FloatingIPKey uint32            `json:"floatingip_key,omitempty"`
	SegID         map[string]uint32 `json:"seg_id"` // next candidate per network type

	// SecurityGroupKey and RuleKey: the last keys of security groups and
	// of their rules.
	SecurityGroupKey uint32 `json:"securitygroup_key,omitempty"`
	RuleKey          uint32 `json:"securitygroup_rule_key,omitempty"`

	// Mastership is the mastership epoch (mastership.go).
	Mastership uint64 `json:"mastership_epoch,omitempty"`
}

// Store holds the topology. It is not safe for concurrent use: the FSM
// serializes writes and gives readers consistent copies.
type Store struct {
	networks    map[string]*Network
	subnets     map[string]*Subnet
	ports       map[string]*Port
	routers     map[string]*Router
	chassis     map[string]*Chassis
	members     map[string]*Member
	fips        map[string]*FloatingIP
	sgs         map[string]*SecurityGroup // with their rules
	subnetPools map[string]*SubnetPool
	quotas      map[string]map[string]int // project → resource → limit
	// neighbours: external network → address → MAC, learned by ARP
	neighbours map[string]map[netip.Addr]string
	seq        Counters
	index      uint64 // raft index of the last command applied
	// now is when the command being applied was appended to the raft
	// log, as its Stamps show it (SetTime).
	now string

	// Indexes, rebuilt from the objects on restore.
	segIDs   map[string]map[uint32]string     // type → segmentation id → network
	macs     map[string]map[string]string     // network → MAC → port
	ips      map[string]map[netip.Addr]string // subnet → address → port
	netPorts map[string]map[string]bool       // network → ports
	// hostPorts: chassis → the ports whose binding:host_id names it
	hostPorts map[string]map[string]bool
	ipHint    map[string]netip.Addr // subnet → where the next search starts
	sgRules   map[string]string     // security group rule → its group
	// vipOwners: network → shared address → the port that announced it last
	vipOwners map[string]map[netip.Addr]string
}

// New returns an empty store.
func New() *Store {
	return &Store{
		networks:    map[string]*Network{},
		subnets:     map[string]*Subnet{},
		ports:       map[string]*Port{},
		routers:     map[string]*Router{},
		chassis:     map[string]*Chassis{},
		members:     map[string]*Member{},
		fips:        map[string]*FloatingIP{},
		sgs:         map[string]*SecurityGroup{},
		subnetPools: map[string]*SubnetPool{},
		quotas:      map[string]map[string]int{},
		sgRules:     map[string]string{},
		neighbours:  map[string]map[netip.Addr]string{},
		seq:         Counters{SegID: map[string]uint32{}},
		segIDs:      map[string]map[uint32]string{},
		macs:        map[string]map[string]string{},
		ips:         map[string]map[netip.Addr]string{},
		netPorts:    map[string]map[string]bool{},
		hostPorts:   map[string]map[string]bool{},
		ipHint:      map[string]netip.Addr{},
		vipOwners:   map[string]map[netip.Addr]string{},
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// SetIndex records the raft index of the last command applied (accepted
// or rejected); it travels with snapshots.
func (s *Store) SetIndex(i uint64) { s.index = i }

// SetTime records when the command about to be applied was appended to
// the raft log (raft.Log.AppendedAt, chosen by the leader): the time of
// every change it makes. It is not kept in snapshots.
func (s *Store) SetTime(t time.Time) { s.now = t.UTC().Format(TimeFormat) }

// TimeFormat is how Stamps are written, as Neutron writes them.
const TimeFormat = "2006-01-02T15:04:05Z"

// Index is the raft index of the last command applied.
func (s *Store) Index() uint64 { return s.index }

// --- reads (copies, sorted by id) -------------------------------------

// Network returns a copy of one network.
func (s *Store) Network(id string) (Network, bool) {
	n, ok := s.networks[id]
	if !ok {
		return Network{}, false
	}
	c := *n
	c.Subnets = s.subnetIDs(id)
	return c, true
}

// Networks returns every network.
func (s *Store) Networks() []Network {
	out := make([]Network, 0, len(s.networks))
	for _, id := range sortedKeys(s.networks) {
		n, _ := s.Network(id)
		out = append(out, n)
	}
	return out
}

func (s *Store) subnetIDs(network string) []string {
	out := []string{}
	for id, sn := range s.subnets {
		if sn.NetworkID == network {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Subnet returns a copy of one subnet.
func (s *Store) Subnet(id string) (Subnet, bool) {
	n, ok := s.subnets[id]
	if !ok {
		return Subnet{}, false
	}
	return *n, true
}

// Subnets returns every subnet.
func (s *Store) Subnets() []Subnet {
	out := make([]Subnet, 0, len(s.subnets))
	for _, id := range sortedKeys(s.subnets) {
		out = append(out, *s.subnets[id])
	}
	return out
}

// Port returns a copy of one port.
func (s *Store) Port(id string) (Port, bool) {
	p, ok := s.ports[id]
	if !ok {
		return Port{}, false
	}
	return s.portOut(p), true
}

// Ports returns every port.
func (s *Store) Ports() []Port {
	out := make([]Port, 0, len(s.ports))
	for _, id := range sortedKeys(s.ports) {
		out = append(out, s.portOut(s.ports[id]))
	}
	return out
}

// Routers returns every router.
func (s *Store) Routers() []Router {
	out := make([]Router, 0, len(s.routers))
	for _, id := range sortedKeys(s.routers) {
		out = append(out, routerOut(s.routers[id]))
	}
	return out
}

// Router returns a copy of one router.
func (s *Store) Router(id string) (Router, bool) {
	r, ok := s.routers[id]
	if !ok {
		return Router{}, false
	}
	return routerOut(r), true
}

// Chassis returns every chassis.
func (s *Store) Chassis() []Chassis {
	out := make([]Chassis, 0, len(s.chassis))
	for _, id := range sortedKeys(s.chassis) {
		out = append(out, *s.chassis[id])
	}
	return out
}

// Members returns every registered controller node.
func (s *Store) Members() []Member {
	out := make([]Member, 0, len(s.members))
	for _, id := range sortedKeys(s.members) {
		out = append(out, *s.members[id])
	}
	return out
}

// Member returns one registered controller node.
func (s *Store) Member(id string) (Member, bool) {
	m, ok := s.members[id]
	if !ok {
		return Member{}, false
	}
	return *m, true
}

func (c Counters) clone() Counters {
	c2 := c
	c2.SegID = make(map[string]uint32, len(c.SegID))
	for k, v := range c.SegID {
		c2.SegID[k] = v
	}
	return c2
}

// --- helpers shared by subnets and ports -------------------------------

func parseMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 || hw.String() == "00:00:00:00:00:00" {
		return "", invalid("'%s' is not a valid MAC address", s)
	}
	if hw[0]&1 != 0 { // broadcast included
		return "", invalid("'%s' is a multicast MAC address", s)
	}
	if IsDVRMAC(hw) {
		return "", invalid("'%s' is in %s/%s, the range reserved for chassis DVR MACs", s, DVRMACPrefix, DVRMACMask)
	}
	if IsServiceMAC(hw) {
		return "", invalid("'%s' is in 02:77:79:00:00:00/ff:ff:ff:00:00:00, the range reserved for DHCP servers", s)
	}
	return hw.String(), nil
}

func parseIPv4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, invalid("'%s' is not a valid IPv4 address", s)
	}
	return a, nil
}

// LastHost is a prefix's last host address (before the broadcast): a
// subnet without a gateway has its DHCP server there.
func LastHost(p netip.Prefix) netip.Addr { return lastAddr(p).Prev() }

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= 1<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// --- iteration, for views built once per applied index -------------------

// EachNetwork calls fn with a copy of every network, in no order (without
// its Subnets list, which costs a scan per network).
func (s *Store) EachNetwork(fn func(Network)) {
	for _, n := range s.networks {
		fn(*n)
	}
}

// EachSubnet calls fn with a copy of every subnet, in no order.
func (s *Store) EachSubnet(fn func(Subnet)) {
	for _, sn := range s.subnets {
		fn(*sn)
	}
}

// PortRef is one port itself, for a reader that holds the store's read
// lock and neither keeps nor changes it.
func (s *Store) PortRef(id string) (*Port, bool) {
	p, ok := s.ports[id]
	return p, ok
}

// EachPortRef calls fn with every port itself, in no order, for a reader
// that holds the store's read lock and neither keeps nor changes it.
func (s *Store) EachPortRef(fn func(*Port)) {
	for _, p := range s.ports {
		fn(p)
	}
}

// EachRouter calls fn with a copy of every router, in no order.
func (s *Store) EachRouter(fn func(Router)) {
	for _, r := range s.routers {
		fn(*r)
	}
}

// EachChassis calls fn with a copy of every chassis, in no order.
func (s *Store) EachChassis(fn func(Chassis)) {
	for _, c := range s.chassis {
		fn(*c)
	}
}

// EachVIPOwner calls fn for every shared address whose recorded holder
// still claims it, in no order.
func (s *Store) EachVIPOwner(fn func(network string, ip netip.Addr, port string)) {
	for network, m := range s.vipOwners {
		for ip := range m {
			if id, ok := s.VIPOwner(network, ip); ok {
				fn(network, ip, id)
			}
		}
	}
}
