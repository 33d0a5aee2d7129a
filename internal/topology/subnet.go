package topology

import (
	"encoding/json"
	"net/netip"
	"sort"
)

// SubnetSpec is a subnet create or update; nil fields are absent.
type SubnetSpec struct {
	Extra           map[string]json.RawMessage // merged into the object's Extra
	ID              string
	NetworkID       *string
	Name            *string
	IPVersion       *int
	CIDR            *string
	GatewayIP       *string // with GatewayNone false: given or absent
	GatewayNone     bool    // "gateway_ip": null
	AllocationPools []AllocationPool
	EnableDHCP      *bool
	DNSNameservers  []string
	HostRoutes      []HostRoute
	Description     *string
	ProjectID       *string
	TenantID        *string
	Tags            []string
	// SubnetPoolID: the subnet pool its CIDR comes from; with no CIDR,
	// the first free prefix of PrefixLen (the pool's default_prefixlen
	// if nil) is cut from the pool.
	SubnetPoolID *string
	PrefixLen    *int
}

// pool is an allocation pool as addresses.
type pool struct{ start, end netip.Addr }

func (p pool) contains(a netip.Addr) bool { return a.Compare(p.start) >= 0 && a.Compare(p.end) <= 0 }

func (s *Store) pools(sn *Subnet) []pool {
	out := make([]pool, 0, len(sn.AllocationPools))
	for _, p := range sn.AllocationPools {
		a, _ := netip.ParseAddr(p.Start)
		b, _ := netip.ParseAddr(p.End)
		out = append(out, pool{a, b})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Less(out[j].start) })
	return out
}

// CreateSubnets creates subnets, all or none.
func (s *Store) CreateSubnets(index uint64, specs []SubnetSpec) ([]Subnet, error) {
	var done []string
	out := make([]Subnet, 0, len(specs))
	for i, sp := range specs {
		sn, err := s.createSubnet(index, sp)
		if err != nil {
			for _, id := range done {
				s.removeSubnet(id)
			}
			return nil, withItem(err, i, len(specs))
		}
		done = append(done, sn.ID)
		out = append(out, sn)
	}
	return out, nil
}

func (s *Store) createSubnet(index uint64, sp SubnetSpec) (Subnet, error) {
	if sp.ID == "" {
		return Subnet{}, invalid("subnet id is required")
	}
	if _, ok := s.subnets[sp.ID]; ok {
		return Subnet{}, conflict("SubnetExists", "Subnet %s already exists", sp.ID)
	}
	if sp.NetworkID == nil || *sp.NetworkID == "" {
		return Subnet{}, invalid("network_id is required")
	}
	if _, ok := s.networks[*sp.NetworkID]; !ok {
		return Subnet{}, notFound("NetworkNotFound", "Network %s could not be found.", *sp.NetworkID)
	}
	if sp.IPVersion != nil && *sp.IPVersion != 4 {
		return Subnet{}, invalid("ip_version %d is not supported (4)", *sp.IPVersion)
	}
	var fromPool *SubnetPool
	if sp.SubnetPoolID != nil && *sp.SubnetPoolID != "" {
		if fromPool = s.subnetPools[*sp.SubnetPoolID]; fromPool == nil {
			return Subnet{}, notFound("SubnetPoolNotFound", "Subnet pool %s could not be found.", *sp.SubnetPoolID)
		}
	}
	if sp.CIDR == nil && fromPool != nil {
		cidr, err := s.cutFromPool(fromPool, sp.PrefixLen)
		if err != nil {
			return Subnet{}, err
		}
		sp.CIDR = &cidr
	}
	if sp.CIDR == nil {
		return Subnet{}, invalid("cidr is required")
	}
	prefix, err := netip.ParsePrefix(*sp.CIDR)
	if err != nil || !prefix.Addr().Is4() {
		return Subnet{}, invalid("'%s' is not a valid IPv4 CIDR", *sp.CIDR)
	}
	if fromPool != nil {
		if err := s.fitsPool(fromPool, prefix.Masked()); err != nil {
			return Subnet{}, err
		}
	}
	if prefix.Bits() > 30 {
		return Subnet{}, invalid("cidr %s leaves no room for hosts (at most /30)", *sp.CIDR)
	}
	// Neutron's rules: no /0 (db_base_plugin_v2 _validate_subnet_cidr);
	// with DHCP, no multicast, loopback or link-local prefix.
	if prefix.Bits() == 0 {
		return Subnet{}, invalid("0 is not allowed as CIDR prefix length")
	}
	prefix = prefix.Masked()
	if sp.EnableDHCP == nil || *sp.EnableDHCP {
		if err := dhcpPrefix(prefix); err != nil {
			return Subnet{}, err
		}
	}
	for _, id := range s.subnetIDs(*sp.NetworkID) {
		other := netip.MustParsePrefix(s.subnets[id].CIDR)
		if other.Overlaps(prefix) {
			return Subnet{}, invalid("Requested subnet with cidr: %s for network: %s overlaps with another subnet (%s).", prefix, *sp.NetworkID, id)
		}
	}
	sn := &Subnet{ID: sp.ID, NetworkID: *sp.NetworkID, IPVersion: 4, CIDR: prefix.String(), EnableDHCP: true,
		DNSNameservers: []string{}, HostRoutes: []HostRoute{}, Tags: []string{}}
	if fromPool != nil {
		sn.SubnetPoolID = fromPool.ID
	}
	first := prefix.Addr().Next()
	last := lastAddr(prefix).Prev() // the broadcast address is not a host
	switch {
	case sp.GatewayNone:
	case sp.GatewayIP != nil:
		gw, err := parseIPv4(*sp.GatewayIP)
		if err != nil {
			return Subnet{}, err
		}
		if !prefix.Contains(gw) || gw == prefix.Addr() || gw == lastAddr(prefix) {
			return Subnet{}, invalid("gateway_ip %s is not a host address of %s", gw, prefix)
		}
		g := gw.String()
		sn.GatewayIP = &g
	default:
		g := first.String()
		sn.GatewayIP = &g
	}
	if sp.AllocationPools != nil {
		var ps []pool
		for _, p := range sp.AllocationPools {
			a, err1 := parseIPv4(p.Start)
			b, err2 := parseIPv4(p.End)
			if err1 != nil || err2 != nil {
				return Subnet{}, invalid("allocation pool %s-%s is not two IPv4 addresses", p.Start, p.End)
			}
			if a.Compare(b) > 0 || a.Compare(first) < 0 || b.Compare(last) > 0 {
				return Subnet{}, invalid("allocation pool %s-%s is not a range of host addresses of %s", a, b, prefix)
			}
			for _, q := range ps {
				if a.Compare(q.end) <= 0 && q.start.Compare(b) <= 0 {
					return Subnet{}, invalid("allocation pools %s-%s and %s-%s overlap", a, b, q.start, q.end)
				}
			}
			if sn.GatewayIP != nil && (pool{a, b}).contains(netip.MustParseAddr(*sn.GatewayIP)) {
				return Subnet{}, conflict("GatewayConflictWithAllocationPools", "Gateway ip %s conflicts with allocation pool %s-%s", *sn.GatewayIP, a, b)
			}
			ps = append(ps, pool{a, b})
			sn.AllocationPools = append(sn.AllocationPools, AllocationPool{a.String(), b.String()})
		}
	} else if sn.GatewayIP == nil && last.Compare(first) > 0 {
		// No gateway: the last host address is the DHCP server's
		// (LastHost), kept out of the pool.
		sn.AllocationPools = defaultPools(first, last.Prev(), nil)
	} else {
		sn.AllocationPools = defaultPools(first, last, sn.GatewayIP)
	}
	if err := applySubnetFields(sn, sp); err != nil {
		return Subnet{}, err
	}
	if err := s.withinQuota(QuotaSubnet, sn.ProjectID); err != nil {
		return Subnet{}, err
	}
	sn.RevisionNumber = index
	sn.stamp(s.now)
	s.subnets[sn.ID] = sn
	s.ips[sn.ID] = map[netip.Addr]string{}
	return *sn, nil
}

// dhcpPrefix refuses, as Neutron does, a prefix DHCP cannot serve.
func dhcpPrefix(p netip.Prefix) error {
	switch a := p.Masked().Addr(); {
	case a.IsMulticast():
		return invalid("Multicast IP subnet is not supported if enable_dhcp is True.")
	case a.IsLoopback():
		return invalid("Loopback IP subnet is not supported if enable_dhcp is True.")
	case a.IsLinkLocalUnicast():
		return invalid("Link-local IP subnet is not supported if enable_dhcp is True.")
	}
	return nil
}

// defaultPools is the whole host range minus the gateway.
func defaultPools(first, last netip.Addr, gateway *string) []AllocationPool {
	if gateway == nil {
		return []AllocationPool{{first.String(), last.String()}}
	}
	gw := netip.MustParseAddr(*gateway)
	var out []AllocationPool
	if gw.Compare(first) > 0 {
		out = append(out, AllocationPool{first.String(), gw.Prev().String()})
	}
	if gw.Compare(last) < 0 {
		out = append(out, AllocationPool{gw.Next().String(), last.String()})
	}
	return out
}

func applySubnetFields(sn *Subnet, sp SubnetSpec) error {
	if sp.Name != nil {
		sn.Name = *sp.Name
	}
	if sp.EnableDHCP != nil {
		sn.EnableDHCP = *sp.EnableDHCP
	}
	if sp.DNSNameservers != nil {
		for _, d := range sp.DNSNameservers {
			if _, err := netip.ParseAddr(d); err != nil {
				return invalid("dns_nameservers: '%s' is not an IP address", d)
			}
		}
		sn.DNSNameservers = append([]string{}, sp.DNSNameservers...)
	}
	if sp.HostRoutes != nil {
		for _, r := range sp.HostRoutes {
			if _, err := netip.ParsePrefix(r.Destination); err != nil {
				return invalid("host_routes: '%s' is not a CIDR", r.Destination)
			}
			if _, err := netip.ParseAddr(r.NextHop); err != nil {
				return invalid("host_routes: '%s' is not an IP address", r.NextHop)
			}
		}
		sn.HostRoutes = append([]HostRoute{}, sp.HostRoutes...)
	}
	if sp.Description != nil {
		sn.Description = *sp.Description
	}
	setProject(&sn.ProjectID, &sn.TenantID, sp.ProjectID, sp.TenantID)
	if sp.Tags != nil {
		sn.Tags = append([]string{}, sp.Tags...)
	}
	mergeExtra(&sn.Extra, sp.Extra)
	return nil
}

// UpdateSubnet changes a subnet's name, DHCP flag, gateway and passive
// fields; its prefix and pools are fixed.
func (s *Store) UpdateSubnet(index uint64, sp SubnetSpec) (Subnet, error) {
	sn, ok := s.subnets[sp.ID]
	if !ok {
		return Subnet{}, notFound("SubnetNotFound", "Subnet %s could not be found.", sp.ID)
	}
	if sp.CIDR != nil && *sp.CIDR != sn.CIDR || sp.NetworkID != nil && *sp.NetworkID != sn.NetworkID ||
		sp.IPVersion != nil && *sp.IPVersion != 4 || sp.AllocationPools != nil ||
		sp.SubnetPoolID != nil && *sp.SubnetPoolID != sn.SubnetPoolID || sp.PrefixLen != nil {
		return Subnet{}, invalid("cidr, network_id, ip_version, allocation_pools, subnetpool_id and prefixlen of an existing subnet cannot be changed")
	}
	gateway, err := s.newGateway(sn, sp)
	if err != nil {
		return Subnet{}, err
	}
	if sp.EnableDHCP != nil && *sp.EnableDHCP && !sn.EnableDHCP {
		prefix := netip.MustParsePrefix(sn.CIDR)
		if err := dhcpPrefix(prefix); err != nil {
			return Subnet{}, err
		}
		if server := LastHost(prefix); sn.GatewayIP == nil {
			if owner, held := s.ips[sn.ID][server]; held {
				return Subnet{}, conflict("IpAddressInUse", "IP address %s, the DHCP server's of subnet %s, is held by port %s", server, sn.ID, owner)
			}
		}
	}
	c := *sn
	if err := applySubnetFields(&c, sp); err != nil {
		return Subnet{}, err
	}
	c.GatewayIP = gateway
	c.RevisionNumber = index
	c.stamp(s.now)
	*sn = c
	return c, nil
}

// newGateway is the gateway_ip a subnet update leaves: as it was, none,
// or a new host address of the prefix outside the allocation pools that
// no port holds. The old one must not be a router's interface: the
// router would keep an address that is no longer the gateway.
func (s *Store) newGateway(sn *Subnet, sp SubnetSpec) (*string, error) {
	if !sp.GatewayNone && (sp.GatewayIP == nil || sn.GatewayIP != nil && *sp.GatewayIP == *sn.GatewayIP) {
		return sn.GatewayIP, nil
	}
	if sp.GatewayNone && sn.GatewayIP == nil {
		return nil, nil
	}
	prefix := netip.MustParsePrefix(sn.CIDR)
	if sn.GatewayIP != nil {
		if owner, held := s.ips[sn.ID][netip.MustParseAddr(*sn.GatewayIP)]; held && s.ports[owner].DeviceOwner == OwnerRouterInterface {
			return nil, conflict("GatewayIpInUse", "Gateway ip %s of subnet %s is in use by the interface %s of router %s.",
				*sn.GatewayIP, sn.ID, owner, s.ports[owner].DeviceID)
		}
	}
	if sp.GatewayNone {
		if server := LastHost(prefix); sn.EnableDHCP {
			if owner, held := s.ips[sn.ID][server]; held {
				return nil, conflict("IpAddressInUse", "IP address %s, the DHCP server's of subnet %s without a gateway, is held by port %s", server, sn.ID, owner)
			}
		}
		return nil, nil
	}
	gw, err := parseIPv4(*sp.GatewayIP)
	if err != nil {
		return nil, err
	}
	if !prefix.Contains(gw) || gw == prefix.Addr() || gw == lastAddr(prefix) {
		return nil, invalid("gateway_ip %s is not a host address of %s", gw, prefix)
	}
	for _, p := range s.pools(sn) {
		if p.contains(gw) {
			return nil, conflict("GatewayConflictWithAllocationPools", "Gateway ip %s conflicts with allocation pool %s-%s", gw, p.start, p.end)
		}
	}
	if owner, held := s.ips[sn.ID][gw]; held {
		return nil, conflict("IpAddressInUse", "Unable to complete operation for network %s. The IP address %s is in use by port %s.", sn.NetworkID, gw, owner)
	}
	g := gw.String()
	return &g, nil
}

// DeleteSubnet deletes a subnet no port has an address in.
func (s *Store) DeleteSubnet(_ uint64, id string) error {
	if _, ok := s.subnets[id]; !ok {
		return notFound("SubnetNotFound", "Subnet %s could not be found.", id)
	}
	if len(s.ips[id]) > 0 {
		return conflict("SubnetInUse", "Unable to complete operation on subnet %s: One or more ports have an IP allocation from this subnet.", id)
	}
	s.removeSubnet(id)
	return nil
}

func (s *Store) removeSubnet(id string) {
	delete(s.subnets, id)
	delete(s.ips, id)
	delete(s.ipHint, id)
}

// allocateIP finds a free address in the subnet's pools, searching on from
// the last allocation so a burst of ports costs no rescans. Addresses in
// taken (claimed earlier in the same request) count as used.
func (s *Store) allocateIP(sn *Subnet, taken map[netip.Addr]bool) (netip.Addr, bool) {
	used := s.ips[sn.ID]
	ps := s.pools(sn)
	if len(ps) == 0 {
		return netip.Addr{}, false
	}
	total := 0
	for _, p := range ps {
		total += int(ip4(p.end)-ip4(p.start)) + 1
	}
	cur, ok := s.ipHint[sn.ID]
	if !ok {
		cur = ps[0].start.Prev()
	}
	server := netip.Addr{} // a subnet without a gateway has its DHCP server at its last host
	if sn.GatewayIP == nil && sn.EnableDHCP {
		server = LastHost(netip.MustParsePrefix(sn.CIDR))
	}
	for i := 0; i <= total; i++ {
		cur = nextInPools(ps, cur)
		if _, inUse := used[cur]; !inUse && !taken[cur] && cur != server {
			s.ipHint[sn.ID] = cur
			return cur, true
		}
	}
	return netip.Addr{}, false
}

// nextInPools returns the address after a in pool order, wrapping.
func nextInPools(ps []pool, a netip.Addr) netip.Addr {
	n := a.Next()
	for _, p := range ps {
		if n.Compare(p.start) < 0 {
			return p.start
		}
		if p.contains(n) {
			return n
		}
	}
	return ps[0].start
}

func ip4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
