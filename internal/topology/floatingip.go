package topology

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// --- floating IPs -------------------------------------------------------

// FloatingIPSpec is a floating IP create or update; nil fields are absent.
type FloatingIPSpec struct {
	ID                string
	HolderPortID      string // the port that will hold the address, chosen by the caller
	FloatingNetworkID *string
	FloatingIPAddress *string
	SubnetID          *string
	PortID            *string // "" disassociates
	FixedIPAddress    *string
	Description       *string
	ProjectID         *string
	TenantID          *string
	Tags              []string
}

// FloatingIPs returns every floating IP, in id order.
func (s *Store) FloatingIPs() []FloatingIP {
	out := make([]FloatingIP, 0, len(s.fips))
	for _, id := range sortedKeys(s.fips) {
		out = append(out, s.fipOut(s.fips[id]))
	}
	return out
}

// FloatingIP returns one floating IP.
func (s *Store) FloatingIP(id string) (FloatingIP, bool) {
	f, ok := s.fips[id]
	if !ok {
		return FloatingIP{}, false
	}
	return s.fipOut(f), true
}

// EachFloatingIP calls fn with every floating IP, in id order; fn must
// not keep the slices it is handed.
func (s *Store) EachFloatingIP(fn func(FloatingIP)) {
	for _, id := range sortedKeys(s.fips) {
		fn(*s.fips[id])
	}
}

func (s *Store) fipOut(f *FloatingIP) FloatingIP {
	out := *f
	out.Tags = slices.Clone(f.Tags)
	out.PortForwardings = slices.Clone(f.PortForwardings)
	if out.PortForwardings == nil {
		out.PortForwardings = []PortForwarding{}
	}
	return out
}

// CreateFloatingIP allocates an address on an external network, held by
// a port of its own, and associates it with a port if one is named.
func (s *Store) CreateFloatingIP(index uint64, sp FloatingIPSpec) (FloatingIP, error) {
	if sp.ID == "" || sp.HolderPortID == "" {
		return FloatingIP{}, invalid("floating IP id and holder port id are required")
	}
	if _, ok := s.fips[sp.ID]; ok {
		return FloatingIP{}, conflict("FloatingIPExists", "Floating IP %s already exists", sp.ID)
	}
	if sp.FloatingNetworkID == nil || *sp.FloatingNetworkID == "" {
		return FloatingIP{}, invalid("floating_network_id is required")
	}
	if err := s.withinQuota(QuotaFloatingIP, specProject(sp.ProjectID, sp.TenantID)); err != nil {
		return FloatingIP{}, err
	}
	n, ok := s.networks[*sp.FloatingNetworkID]
	if !ok {
		return FloatingIP{}, notFound("NetworkNotFound", "Network %s could not be found.", *sp.FloatingNetworkID)
	}
	if !n.External {
		return FloatingIP{}, invalid("Bad floatingip request: Network %s is not a valid external network.", n.ID)
	}
	f := &FloatingIP{ID: sp.ID, FloatingNetworkID: n.ID, Status: StatusDown, Tags: []string{}, HolderPortID: sp.HolderPortID}
	// The address: the one asked for, or one from the subnet asked for,
	// or one from the network's first subnet.
	var want FixedIPSpec
	switch {
	case sp.SubnetID != nil && *sp.SubnetID != "":
		sn, ok := s.subnets[*sp.SubnetID]
		if !ok || sn.NetworkID != n.ID {
			return FloatingIP{}, invalid("Bad floatingip request: subnet %s is not on network %s.", *sp.SubnetID, n.ID)
		}
		want.SubnetID = sn.ID
	case len(s.subnetIDs(n.ID)) > 0:
		want.SubnetID = s.subnetIDs(n.ID)[0]
	default:
		return FloatingIP{}, invalid("Bad floatingip request: network %s has no subnet.", n.ID)
	}
	if sp.FloatingIPAddress != nil && *sp.FloatingIPAddress != "" {
		want = FixedIPSpec{IPAddress: *sp.FloatingIPAddress, SubnetID: ""}
		if sp.SubnetID != nil {
			want.SubnetID = *sp.SubnetID
		}
	}
	saved, hints := s.seq.clone(), maps.Clone(s.ipHint)
	owner := OwnerFloatingIP
	ports, err := s.CreatePorts(index, []PortSpec{{ID: sp.HolderPortID, NetworkID: &n.ID, DeviceOwner: &owner, DeviceID: &f.ID,
		FixedIPs: &[]FixedIPSpec{want}, managed: true}})
	if err != nil {
		if e, ok := err.(*Error); ok && e.Type == "IpAddressInUse" {
			return FloatingIP{}, conflict("FloatingIPAddressInUse", "Unable to complete operation for network %s. The IP address %s is in use.", n.ID, want.IPAddress)
		}
		return FloatingIP{}, err
	}
	holder := s.ports[ports[0].ID]
	holder.Status = StatusActive
	f.FloatingIPAddress = holder.FixedIPs[0].IPAddress
	if err := s.applyFIPFields(f, sp); err != nil {
		s.removePort(holder.ID)
		s.seq, s.ipHint = saved, hints
		return FloatingIP{}, err
	}
	s.seq.FloatingIPKey++
	f.Key = s.seq.FloatingIPKey
	f.RevisionNumber = index
	f.stamp(s.now)
	s.fips[f.ID] = f
	return s.fipOut(f), nil
}

// applyFIPFields sets the association and the passive fields.
func (s *Store) applyFIPFields(f *FloatingIP, sp FloatingIPSpec) error {
	if sp.PortID != nil || sp.FixedIPAddress != nil {
		port := f.PortID
		if sp.PortID != nil {
			port = *sp.PortID
		}
		fixed := ""
		if sp.FixedIPAddress != nil {
			fixed = *sp.FixedIPAddress
		} else if sp.PortID == nil || *sp.PortID == f.PortID {
			fixed = f.FixedIPAddress
		}
		if err := s.associate(f, port, fixed); err != nil {
			return err
		}
	}
	if sp.Description != nil {
		f.Description = *sp.Description
	}
	setProject(&f.ProjectID, &f.TenantID, sp.ProjectID, sp.TenantID)
	if sp.Tags != nil {
		f.Tags = append([]string{}, sp.Tags...)
	}
	return nil
}

// associate points f at a port's fixed IP (its first IPv4 one unless
// given), through the router that connects the port's subnet to f's
// network; port "" disassociates.
func (s *Store) associate(f *FloatingIP, portID, fixed string) error {
	if portID == "" {
		f.PortID, f.FixedIPAddress, f.Status = "", "", StatusDown
		if len(f.PortForwardings) == 0 {
			f.RouterID = ""
		}
		return nil
	}
	if len(f.PortForwardings) > 0 {
		return conflict("FloatingIPPortForwardingInUse", "Floating IP %s has port forwardings; it cannot be associated with a port.", f.ID)
	}
	p, ok := s.ports[portID]
	if !ok {
		return notFound("PortNotFound", "Port %s could not be found.", portID)
	}
	if isManaged(p.DeviceOwner) {
		return invalid("Bad floatingip request: port %s is owned by %s and cannot have a floating IP.", p.ID, p.DeviceOwner)
	}
	fx, router, err := s.reachable(f.FloatingNetworkID, p, fixed)
	if err != nil {
		return err
	}
	for _, id := range sortedKeys(s.fips) {
		o := s.fips[id]
		if o.ID != f.ID && o.PortID == p.ID && o.FixedIPAddress == fx.IPAddress {
			return conflict("FloatingIPPortAlreadyAssociated",
				"Cannot associate floating IP %s (%s) with port %s using fixed IP %s, as that fixed IP already has a floating IP on external network %s.",
				f.FloatingIPAddress, f.ID, p.ID, fx.IPAddress, f.FloatingNetworkID)
		}
	}
	f.PortID, f.FixedIPAddress, f.RouterID, f.Status = p.ID, fx.IPAddress, router, StatusActive
	return nil
}

// reachable finds a port's fixed IP (fixed, or its first IPv4 one) and
// the router that has an interface on its subnet and its gateway on the
// external network, lowest id first.
func (s *Store) reachable(external string, p *Port, fixed string) (FixedIP, string, error) {
	var fx *FixedIP
	for i := range p.FixedIPs {
		if fixed == "" || p.FixedIPs[i].IPAddress == fixed {
			fx = &p.FixedIPs[i]
			break
		}
	}
	if fx == nil {
		if fixed == "" {
			return FixedIP{}, "", invalid("Bad floatingip request: Port %s does not have any IPv4 address.", p.ID)
		}
		return FixedIP{}, "", invalid("Bad floatingip request: Port %s does not have fixed ip %s.", p.ID, fixed)
	}
	for _, rid := range sortedKeys(s.routers) {
		r := s.routers[rid]
		if r.ExternalGateway == nil || r.ExternalGateway.NetworkID != external {
			continue
		}
		for _, ip := range s.RouterInterfaces(rid) {
			for _, rf := range ip.FixedIPs {
				if rf.SubnetID == fx.SubnetID {
					return *fx, rid, nil
				}
			}
		}
	}
	return FixedIP{}, "", notFound("ExternalGatewayForFloatingIPNotFound",
		"External network %s is not reachable from subnet %s. Therefore, cannot associate Port %s with a Floating IP.", external, fx.SubnetID, p.ID)
}

// UpdateFloatingIP changes a floating IP's association or passive fields.
func (s *Store) UpdateFloatingIP(index uint64, sp FloatingIPSpec) (FloatingIP, error) {
	f, ok := s.fips[sp.ID]
	if !ok {
		return FloatingIP{}, notFound("FloatingIPNotFound", "Floating IP %s could not be found", sp.ID)
	}
	if sp.FloatingNetworkID != nil && *sp.FloatingNetworkID != f.FloatingNetworkID ||
		sp.FloatingIPAddress != nil && *sp.FloatingIPAddress != f.FloatingIPAddress {
		return FloatingIP{}, invalid("floating_network_id and floating_ip_address of a floating IP cannot be changed")
	}
	c := *f
	if err := s.applyFIPFields(&c, sp); err != nil {
		return FloatingIP{}, err
	}
	c.RevisionNumber = index
	c.stamp(s.now)
	*f = c
	return s.fipOut(f), nil
}

// DeleteFloatingIP releases a floating IP, its address and its port
// forwardings.
func (s *Store) DeleteFloatingIP(_ uint64, id string) (FloatingIP, error) {
	f, ok := s.fips[id]
	if !ok {
		return FloatingIP{}, notFound("FloatingIPNotFound", "Floating IP %s could not be found", id)
	}
	out := s.fipOut(f)
	if _, ok := s.ports[f.HolderPortID]; ok {
		s.removePort(f.HolderPortID)
	}
	delete(s.fips, id)
	return out, nil
}

// disassociatePort drops the floating IPs of a port being deleted (as
// Neutron does) and the port forwardings to it. It returns the floating
// IPs it changed.
func (s *Store) disassociatePort(port string) []string {
	var changed []string
	for _, id := range sortedKeys(s.fips) {
		f := s.fips[id]
		touched := false
		if f.PortID == port {
			f.PortID, f.FixedIPAddress, f.RouterID, f.Status = "", "", "", StatusDown
			touched = true
		}
		kept := f.PortForwardings[:0:0]
		for _, pf := range f.PortForwardings {
			if pf.InternalPortID == port {
				touched = true
				continue
			}
			kept = append(kept, pf)
		}
		if touched {
			f.PortForwardings = kept
			if f.PortID == "" && len(kept) == 0 {
				f.RouterID, f.Status = "", StatusDown
			}
			changed = append(changed, id)
		}
	}
	return changed
}

// FloatingIPsOfPort returns the ids of the floating IPs a port is
// reached by, directly or by a port forwarding.
func (s *Store) FloatingIPsOfPort(port string) []string {
	var out []string
	for _, id := range sortedKeys(s.fips) {
		f := s.fips[id]
		hit := f.PortID == port
		for _, pf := range f.PortForwardings {
			hit = hit || pf.InternalPortID == port
		}
		if hit {
			out = append(out, id)
		}
	}
	return out
}

// floatingIPsOfRouter are the floating IPs translated through a router.
func (s *Store) floatingIPsOfRouter(router string) []string {
	var out []string
	for _, id := range sortedKeys(s.fips) {
		if s.fips[id].RouterID == router {
			out = append(out, id)
		}
	}
	return out
}

// floatingIPsThrough are the floating IPs of a router whose fixed address
// (or a port forwarding's) is in a subnet.
func (s *Store) floatingIPsThrough(router, subnet string) []string {
	sn, ok := s.subnets[subnet]
	if !ok {
		return nil
	}
	pfx := netip.MustParsePrefix(sn.CIDR)
	in := func(a string) bool {
		ip, err := netip.ParseAddr(a)
		return err == nil && pfx.Contains(ip)
	}
	var out []string
	for _, id := range s.floatingIPsOfRouter(router) {
		f := s.fips[id]
		hit := in(f.FixedIPAddress)
		for _, pf := range f.PortForwardings {
			hit = hit || in(pf.InternalIPAddress)
		}
		if hit {
			out = append(out, id)
		}
	}
	return out
}

// --- port forwardings ---------------------------------------------------

// PortForwardingSpec is a port forwarding create or update.
type PortForwardingSpec struct {
	FloatingIPID      string
	ID                string
	Protocol          *string
	ExternalPort      *int
	InternalPort      *int
	InternalIPAddress *string
	InternalPortID    *string
	Description       *string
}

// CreatePortForwarding adds a port forwarding to a floating IP that is
// not associated with a port.
func (s *Store) CreatePortForwarding(index uint64, sp PortForwardingSpec) (PortForwarding, error) {
	f, ok := s.fips[sp.FloatingIPID]
	if !ok {
		return PortForwarding{}, notFound("FloatingIPNotFound", "Floating IP %s could not be found", sp.FloatingIPID)
	}
	if sp.ID == "" {
		return PortForwarding{}, invalid("port forwarding id is required")
	}
	if f.PortID != "" {
		return PortForwarding{}, conflict("FloatingIPPortAlreadyAssociated",
			"Floating IP %s is associated with port %s; it cannot have port forwardings.", f.ID, f.PortID)
	}
	for _, o := range f.PortForwardings {
		if o.ID == sp.ID {
			return PortForwarding{}, conflict("PortForwardingExists", "Port forwarding %s already exists", sp.ID)
		}
	}
	if sp.Protocol == nil || sp.ExternalPort == nil || sp.InternalPort == nil || sp.InternalIPAddress == nil || sp.InternalPortID == nil {
		return PortForwarding{}, invalid("protocol, external_port, internal_port, internal_ip_address and internal_port_id are required")
	}
	pf := PortForwarding{ID: sp.ID}
	router, err := s.applyPFFields(f, &pf, sp)
	if err != nil {
		return PortForwarding{}, err
	}
	f.PortForwardings = append(slices.Clone(f.PortForwardings), pf)
	f.RouterID, f.Status = router, StatusActive
	f.RevisionNumber = index
	f.stamp(s.now)
	return pf, nil
}

// applyPFFields checks and sets a port forwarding's fields against the
// floating IP's others; it returns the router that reaches the internal
// address.
func (s *Store) applyPFFields(f *FloatingIP, pf *PortForwarding, sp PortForwardingSpec) (string, error) {
	c := *pf
	if sp.Protocol != nil {
		proto := strings.ToLower(*sp.Protocol)
		if proto != "tcp" && proto != "udp" {
			return "", invalid("Invalid input for protocol. Reason: %q is not in [tcp, udp].", *sp.Protocol)
		}
		c.Protocol = proto
	}
	for _, p := range []struct {
		v    *int
		dst  *uint16
		name string
	}{{sp.ExternalPort, &c.ExternalPort, "external_port"}, {sp.InternalPort, &c.InternalPort, "internal_port"}} {
		if p.v == nil {
			continue
		}
		if *p.v < 1 || *p.v > 65535 {
			return "", invalid("Invalid input for %s. Reason: %d is not a valid port number (1..65535).", p.name, *p.v)
		}
		*p.dst = uint16(*p.v)
	}
	if sp.InternalPortID != nil {
		c.InternalPortID = *sp.InternalPortID
	}
	if sp.InternalIPAddress != nil {
		c.InternalIPAddress = *sp.InternalIPAddress
	}
	if sp.Description != nil {
		c.Description = *sp.Description
	}
	p, ok := s.ports[c.InternalPortID]
	if !ok {
		return "", notFound("PortNotFound", "Port %s could not be found.", c.InternalPortID)
	}
	if isManaged(p.DeviceOwner) {
		return "", invalid("Bad port forwarding request: port %s is owned by %s.", p.ID, p.DeviceOwner)
	}
	fx, router, err := s.reachable(f.FloatingNetworkID, p, c.InternalIPAddress)
	if err != nil {
		return "", err
	}
	c.InternalIPAddress = fx.IPAddress // "" means the port's first address
	// One router translates the floating IP (RouterID): the one its
	// other port forwardings go through.
	if f.RouterID != router && slices.ContainsFunc(f.PortForwardings, func(o PortForwarding) bool { return o.ID != c.ID }) {
		return "", invalid("Bad port forwarding request: floating IP %s is translated by router %s; port %s is reached through router %s.",
			f.ID, f.RouterID, p.ID, router)
	}
	for _, o := range f.PortForwardings {
		if o.ID == c.ID {
			continue
		}
		if o.Protocol == c.Protocol && o.ExternalPort == c.ExternalPort {
			return "", conflict("PortForwardingInUse",
				"A duplicate port forwarding entry with same attributes already exists, conflicting values are {'floatingip_id': %s, 'external_port': %d, 'protocol': %s}", f.ID, c.ExternalPort, c.Protocol)
		}
		if o.Protocol == c.Protocol && o.InternalIPAddress == c.InternalIPAddress && o.InternalPort == c.InternalPort {
			return "", conflict("PortForwardingInUse",
				"A duplicate port forwarding entry with same attributes already exists, conflicting values are {'internal_ip_address': %s, 'internal_port': %d, 'protocol': %s}", c.InternalIPAddress, c.InternalPort, c.Protocol)
		}
	}
	*pf = c
	return router, nil
}

// UpdatePortForwarding changes one port forwarding of a floating IP.
func (s *Store) UpdatePortForwarding(index uint64, sp PortForwardingSpec) (PortForwarding, error) {
	f, ok := s.fips[sp.FloatingIPID]
	if !ok {
		return PortForwarding{}, notFound("FloatingIPNotFound", "Floating IP %s could not be found", sp.FloatingIPID)
	}
	i := slices.IndexFunc(f.PortForwardings, func(pf PortForwarding) bool { return pf.ID == sp.ID })
	if i < 0 {
		return PortForwarding{}, notFound("PortForwardingNotFound", "Port Forwarding %s could not be found", sp.ID)
	}
	pf := f.PortForwardings[i]
	router, err := s.applyPFFields(f, &pf, sp)
	if err != nil {
		return PortForwarding{}, err
	}
	pfs := slices.Clone(f.PortForwardings)
	pfs[i] = pf
	f.PortForwardings, f.RouterID = pfs, router
	f.RevisionNumber = index
	f.stamp(s.now)
	return pf, nil
}

// DeletePortForwarding removes one port forwarding of a floating IP.
func (s *Store) DeletePortForwarding(index uint64, fip, id string) error {
	f, ok := s.fips[fip]
	if !ok {
		return notFound("FloatingIPNotFound", "Floating IP %s could not be found", fip)
	}
	i := slices.IndexFunc(f.PortForwardings, func(pf PortForwarding) bool { return pf.ID == id })
	if i < 0 {
		return notFound("PortForwardingNotFound", "Port Forwarding %s could not be found", id)
	}
	f.PortForwardings = slices.Delete(slices.Clone(f.PortForwardings), i, i+1)
	if len(f.PortForwardings) == 0 && f.PortID == "" {
		f.RouterID, f.Status = "", StatusDown
	}
	f.RevisionNumber = index
	f.stamp(s.now)
	return nil
}

// fixedIPsInUse refuses new fixed IPs for a port that drop one a floating
// IP or port forwarding translates to: the address could go to another
// port, which the floating IP would then reach.
func (s *Store) fixedIPsInUse(port string, fixed []FixedIP) error {
	has := func(ip string) bool {
		return slices.ContainsFunc(fixed, func(f FixedIP) bool { return f.IPAddress == ip })
	}
	for _, id := range sortedKeys(s.fips) {
		f := s.fips[id]
		if f.PortID == port && !has(f.FixedIPAddress) {
			return conflict("FloatingIPAssociated", "Port %s's fixed IP %s has floating IP %s; disassociate it first.", port, f.FixedIPAddress, f.FloatingIPAddress)
		}
		for _, pf := range f.PortForwardings {
			if pf.InternalPortID == port && !has(pf.InternalIPAddress) {
				return conflict("PortForwardingInUse", "Port %s's fixed IP %s is the target of port forwarding %s; delete it first.", port, pf.InternalIPAddress, pf.ID)
			}
		}
	}
	return nil
}
