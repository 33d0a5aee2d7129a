package topology

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
)

// RouterSpec is a router create or update; nil fields are absent.
type RouterSpec struct {
	Extra        map[string]json.RawMessage // merged into the object's Extra
	ID           string
	Name         *string
	AdminStateUp *bool
	Distributed  *bool
	Description  *string
	ProjectID    *string
	TenantID     *string
	Tags         []string
	// Gateway sets or clears external_gateway_info; GatewayPortID is the
	// id of its port, should one be made (chosen by the caller).
	Gateway       *GatewaySpec
	GatewayPortID string
	Routes        *[]HostRoute
}

// CreateRouters creates routers, all or none: a failure removes the
// earlier elements' routers and gateway ports and rewinds the allocators.
func (s *Store) CreateRouters(index uint64, specs []RouterSpec) ([]Router, error) {
	saved, hints := s.seq.clone(), maps.Clone(s.ipHint)
	var done []string
	undo := func() {
		for _, id := range done {
			if gp := s.routers[id].GatewayPortID; gp != "" {
				s.removePort(gp)
			}
			delete(s.routers, id)
		}
		s.seq, s.ipHint = saved, hints
	}
	out := make([]Router, 0, len(specs))
	for i, sp := range specs {
		if sp.ID == "" || s.routers[sp.ID] != nil {
			undo()
			if sp.ID == "" {
				return nil, withItem(invalid("router id is required"), i, len(specs))
			}
			return nil, withItem(conflict("RouterExists", "Router %s already exists", sp.ID), i, len(specs))
		}
		r := &Router{ID: sp.ID, AdminStateUp: true, Status: StatusActive, Distributed: true, Tags: []string{}, Routes: []HostRoute{}}
		applyRouterFields(r, sp)
		if err := s.withinQuota(QuotaRouter, r.ProjectID); err != nil {
			undo()
			return nil, withItem(err, i, len(specs))
		}
		s.seq.RouterKey++
		r.Key = s.seq.RouterKey
		r.RevisionNumber = index
		r.stamp(s.now)
		s.routers[r.ID] = r
		done = append(done, r.ID)
		if err := s.applyRouterRouting(index, r, sp); err != nil {
			undo()
			return nil, withItem(err, i, len(specs))
		}
		out = append(out, routerOut(r))
	}
	return out, nil
}

// applyRouterRouting sets a router's gateway and static routes.
func (s *Store) applyRouterRouting(index uint64, r *Router, sp RouterSpec) error {
	if sp.Gateway != nil {
		if err := s.setGateway(index, r, *sp.Gateway, sp.GatewayPortID); err != nil {
			return err
		}
	}
	routes := r.Routes
	if sp.Routes != nil {
		routes = *sp.Routes
	}
	checked, err := s.checkRoutes(r, routes)
	if err != nil {
		return err
	}
	r.Routes = checked
	return nil
}

// routerOut is a copy of a router as the store hands it out.
func routerOut(r *Router) Router {
	out := *r
	out.Routes = append([]HostRoute{}, r.Routes...)
	if r.ExternalGateway != nil {
		g := *r.ExternalGateway
		g.ExternalFixedIPs = append([]FixedIP{}, g.ExternalFixedIPs...)
		out.ExternalGateway = &g
	}
	return out
}

func applyRouterFields(r *Router, sp RouterSpec) {
	if sp.Name != nil {
		r.Name = *sp.Name
	}
	if sp.AdminStateUp != nil {
		r.AdminStateUp = *sp.AdminStateUp
	}
	if sp.Distributed != nil {
		r.Distributed = *sp.Distributed
	}
	if sp.Description != nil {
		r.Description = *sp.Description
	}
	setProject(&r.ProjectID, &r.TenantID, sp.ProjectID, sp.TenantID)
	if sp.Tags != nil {
		r.Tags = append([]string{}, sp.Tags...)
	}
	mergeExtra(&r.Extra, sp.Extra)
}

// UpdateRouter changes a router's fields.
func (s *Store) UpdateRouter(index uint64, sp RouterSpec) (Router, error) {
	r, ok := s.routers[sp.ID]
	if !ok {
		return Router{}, notFound("RouterNotFound", "Router %s could not be found", sp.ID)
	}
	c := *r
	if r.ExternalGateway != nil { // setGateway may change it in place
		g := *r.ExternalGateway
		c.ExternalGateway = &g
	}
	applyRouterFields(&c, sp)
	saved, hints := s.seq.clone(), maps.Clone(s.ipHint)
	oldPort := s.ports[r.GatewayPortID]
	if err := s.applyRouterRouting(index, &c, sp); err != nil {
		// The gateway may have been replaced or cleared before the
		// routes were refused: put its port back.
		if c.GatewayPortID != r.GatewayPortID {
			if c.GatewayPortID != "" {
				s.removePort(c.GatewayPortID)
			}
			if oldPort != nil {
				s.ports[oldPort.ID] = oldPort
				s.indexPort(oldPort)
			}
		}
		s.seq, s.ipHint = saved, hints
		return Router{}, err
	}
	c.RevisionNumber = index
	c.stamp(s.now)
	*r = c
	return routerOut(r), nil
}

// RouterInterfaces returns the router's interface ports.
func (s *Store) RouterInterfaces(router string) []Port {
	var out []Port
	for _, id := range sortedKeys(s.ports) {
		p := s.ports[id]
		if p.DeviceOwner == OwnerRouterInterface && p.DeviceID == router {
			out = append(out, *p)
		}
	}
	return out
}

// DeleteRouter deletes a router with no interfaces.
func (s *Store) DeleteRouter(_ uint64, id string) error {
	if _, ok := s.routers[id]; !ok {
		return notFound("RouterNotFound", "Router %s could not be found", id)
	}
	if len(s.RouterInterfaces(id)) > 0 {
		return conflict("RouterInUse", "Router %s still has ports", id)
	}
	if f := s.floatingIPsOfRouter(id); len(f) > 0 {
		return conflict("RouterInUse", "Router %s still has floating IPs: %v", id, f)
	}
	if gp := s.routers[id].GatewayPortID; gp != "" {
		s.removePort(gp)
	}
	delete(s.routers, id)
	return nil
}

// AddRouterInterface plugs a router into a subnet: a port holding the
// subnet's gateway IP, with a MAC of the router's own, owned by the router.
// portID is chosen by the caller before the command is proposed.
func (s *Store) AddRouterInterface(index uint64, router, subnet, portID string) (Port, error) {
	if _, ok := s.routers[router]; !ok {
		return Port{}, notFound("RouterNotFound", "Router %s could not be found", router)
	}
	sn, ok := s.subnets[subnet]
	if !ok {
		return Port{}, notFound("SubnetNotFound", "Subnet %s could not be found.", subnet)
	}
	if sn.GatewayIP == nil {
		return Port{}, invalid("subnet %s has no gateway_ip", subnet)
	}
	if err := s.routerMayJoin(router, subnet); err != nil {
		return Port{}, err
	}
	owner := OwnerRouterInterface
	// The interface is the router's project's, as in Neutron: its owner
	// sees and manages it.
	project := s.routers[router].ProjectID
	spec := PortSpec{ID: portID, NetworkID: &sn.NetworkID, DeviceOwner: &owner, DeviceID: &router, ProjectID: &project, TenantID: &project,
		FixedIPs: &[]FixedIPSpec{{SubnetID: subnet, IPAddress: *sn.GatewayIP}}, managed: true}
	ports, err := s.CreatePorts(index, []PortSpec{spec})
	if err != nil {
		return Port{}, err
	}
	p := s.ports[ports[0].ID]
	p.Status = StatusActive
	return s.portOut(p), nil
}

// RemoveRouterInterface unplugs a router from a subnet and deletes the
// interface port.
func (s *Store) RemoveRouterInterface(_ uint64, router, subnet string) (Port, error) {
	if _, ok := s.routers[router]; !ok {
		return Port{}, notFound("RouterNotFound", "Router %s could not be found", router)
	}
	for _, p := range s.RouterInterfaces(router) {
		for _, f := range p.FixedIPs {
			if f.SubnetID == subnet {
				return s.unplug(router, p)
			}
		}
	}
	return Port{}, notFound("RouterInterfaceNotFoundForSubnet", "Router %s has no interface on subnet %s", router, subnet)
}

// DetachRouterInterface unplugs a router's interface given by its port
// (remove_router_interface with port_id) and deletes the port, as
// Neutron does.
func (s *Store) DetachRouterInterface(_ uint64, router, portID string) (Port, error) {
	if _, ok := s.routers[router]; !ok {
		return Port{}, notFound("RouterNotFound", "Router %s could not be found", router)
	}
	p, ok := s.ports[portID]
	if !ok || p.DeviceOwner != OwnerRouterInterface || p.DeviceID != router {
		return Port{}, notFound("RouterInterfaceNotFound", "Router %s does not have an interface with id %s", router, portID)
	}
	return s.unplug(router, *p)
}

// unplug removes interface p of a router, unless a floating IP or a
// static route still needs its subnet.
func (s *Store) unplug(router string, p Port) (Port, error) {
	for _, f := range p.FixedIPs {
		subnet := f.SubnetID
		if fips := s.floatingIPsThrough(router, subnet); len(fips) > 0 {
			return Port{}, conflict("RouterInterfaceInUseByFloatingIP",
				"Router interface for subnet %s on router %s cannot be deleted, as it is required by one or more floating IPs.", subnet, router)
		}
		if r := s.routers[router]; len(r.Routes) > 0 {
			pfx := netip.MustParsePrefix(s.subnets[subnet].CIDR)
			for _, rt := range r.Routes {
				if hop, err := netip.ParseAddr(rt.NextHop); err == nil && pfx.Contains(hop) {
					return Port{}, conflict("RouterInterfaceInUseByRoute",
						"Router interface for subnet %s on router %s cannot be deleted, as it is required by one or more routes.", subnet, router)
				}
			}
		}
	}
	s.removePort(p.ID)
	return p, nil
}

// AttachRouterInterface plugs a router into a subnet through an existing
// port (add_router_interface with port_id): the port, which must belong
// to no device and hold exactly one address, on a subnet that overlaps
// none of the router's, becomes the router's interface with the
// address it has.
func (s *Store) AttachRouterInterface(index uint64, router, portID string) (Port, error) {
	if _, ok := s.routers[router]; !ok {
		return Port{}, notFound("RouterNotFound", "Router %s could not be found", router)
	}
	p, ok := s.ports[portID]
	if !ok {
		return Port{}, notFound("PortNotFound", "Port %s could not be found.", portID)
	}
	if p.DeviceOwner != "" || p.DeviceID != "" {
		return Port{}, conflict("PortInUse", "Unable to complete operation on port %s for network %s. Port already has an attached device %s.",
			p.ID, p.NetworkID, p.DeviceID)
	}
	switch len(p.FixedIPs) {
	case 0:
		return Port{}, invalidAs("BadRequest", "Bad router request: Router port must have at least one fixed IP.")
	case 1:
	default:
		return Port{}, invalidAs("BadRequest", "Bad router request: Cannot have multiple IPv4 subnets on router port.")
	}
	if err := s.routerMayJoin(router, p.FixedIPs[0].SubnetID); err != nil {
		return Port{}, err
	}
	p.DeviceOwner, p.DeviceID, p.Status, p.SecurityGroups = OwnerRouterInterface, router, StatusActive, []string{}
	p.RevisionNumber = index
	p.stamp(s.now)
	return s.portOut(p), nil
}

// routerMayJoin checks that a router has no interface on the subnet yet
// and none on a subnet overlapping it: it would not know which of them a
// destination is in.
func (s *Store) routerMayJoin(router, subnet string) error {
	prefix := netip.MustParsePrefix(s.subnets[subnet].CIDR)
	for _, p := range s.RouterInterfaces(router) {
		for _, f := range p.FixedIPs {
			if f.SubnetID == subnet {
				return invalidAs("BadRequest", fmt.Sprintf("Bad router request: Router already has a port on subnet %s.", subnet))
			}
			if other, ok := s.subnets[f.SubnetID]; ok && netip.MustParsePrefix(other.CIDR).Overlaps(prefix) {
				return invalidAs("BadRequest", fmt.Sprintf("Bad router request: Cidr %s of subnet %s overlaps with cidr %s of subnet %s.",
					prefix, subnet, other.CIDR, other.ID))
			}
		}
	}
	return nil
}

// ChassisSpec registers or refreshes a chassis.
type ChassisSpec struct {
	Name       string
	EncapIP    string
	Encaps     []string
	DatapathID string
	NodeID     string
	Connected  bool
	LastSeen   string // chosen by the reporting node, never inside Apply
	// Bridge and DatapathType are the chassis' integration bridge, as
	// Nova's os-vif needs them to plug a VM.
	Bridge       string
	DatapathType string
	// BridgeMappings and Gateway: --bridge-mappings and --gateway.
	BridgeMappings map[string]string
	Gateway        bool
}

// DVRMACBase is the first per-chassis DVR MAC; chassis key k gets base+k.
// The whole /24 of MACs under DVRMACPrefix is reserved for them: no port
// may have one, so a frame from a tunnel with such a source was routed by
// the chassis that sent it.
const DVRMACBase = 0xfa163f000000

// The range of DVR MACs, as a prefix and mask for flows.
var (
	DVRMACPrefix = net.HardwareAddr{0xfa, 0x16, 0x3f, 0, 0, 0}
	DVRMACMask   = net.HardwareAddr{0xff, 0xff, 0xff, 0, 0, 0}
)

// IsDVRMAC reports whether a MAC is in the range reserved for DVR MACs.
func IsDVRMAC(mac net.HardwareAddr) bool {
	return len(mac) == 6 && bytes.Equal(mac[:3], DVRMACPrefix[:3])
}

// IsServiceMAC reports whether a MAC is in the range of the DHCP servers'
// service MACs (02:77:79 and a network key), which no port may have.
func IsServiceMAC(mac net.HardwareAddr) bool {
	return len(mac) == 6 && mac[0] == 0x02 && mac[1] == 0x77 && mac[2] == 0x79
}

// RegisterChassis creates or updates a chassis; a new one gets a key and a
// DVR MAC no other chassis has.
func (s *Store) RegisterChassis(i uint64, sp ChassisSpec) (Chassis, error) {
	if sp.Name == "" {
		return Chassis{}, invalid("chassis name is required")
	}
	if _, err := parseIPv4(sp.EncapIP); err != nil {
		return Chassis{}, err
	}
	for _, e := range sp.Encaps {
		if e != TypeVXLAN && e != TypeGRE {
			return Chassis{}, invalid("encap %q is not supported", e)
		}
	}
	for k, v := range sp.BridgeMappings {
		if !validPhysnet(k) || v == "" {
			return Chassis{}, invalid("bridge mapping %q:%q: want PHYSNET:BRIDGE", k, v)
		}
	}
	c, ok := s.chassis[sp.Name]
	if !ok {
		s.seq.ChassisKey++
		k := uint64(s.seq.ChassisKey)
		mac := uint64(DVRMACBase) + k
		c = &Chassis{Name: sp.Name, Key: s.seq.ChassisKey,
			DVRMAC: fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", byte(mac>>40), byte(mac>>32), byte(mac>>24), byte(mac>>16), byte(mac>>8), byte(mac))}
		s.chassis[sp.Name] = c
	}
	if !ok || c.DatapathID != sp.DatapathID || c.NodeID != sp.NodeID {
		s.touchMastership(i) // who runs which bridge changed
	}
	c.EncapIP, c.Encaps, c.DatapathID, c.NodeID = sp.EncapIP, append([]string{}, sp.Encaps...), sp.DatapathID, sp.NodeID
	c.Bridge, c.DatapathType = sp.Bridge, sp.DatapathType
	// Unreachable is the leader's word (SetChassisReachable), not the
	// chassis' own: a registration leaves it.
	c.BridgeMappings, c.Gateway = nil, sp.Gateway
	if len(sp.BridgeMappings) > 0 {
		c.BridgeMappings = make(map[string]string, len(sp.BridgeMappings))
		for k, v := range sp.BridgeMappings {
			c.BridgeMappings[k] = v
		}
	}
	c.Connected, c.LastSeen = sp.Connected, sp.LastSeen
	return *c, nil
}

// DeleteChassis forgets a chassis: a hypervisor taken out of service. The
// ports plugged there are no longer located (ofport 0, DOWN) and keep
// their binding:host_id, which is Nova's word; they show binding_failed
// until a chassis of that name registers and reports them again, with a
// new key and DVR MAC. A chassis that a member node registered is that
// node's to report: it is refused while the node is a member (remove the
// member first), or the node would register it again. It returns the ids
// of the ports it changed.
func (s *Store) DeleteChassis(i uint64, name string) ([]string, error) {
	c, ok := s.chassis[name]
	if !ok {
		return nil, notFound("ChassisNotFound", "Chassis %s could not be found.", name)
	}
	if _, member := s.members[c.NodeID]; c.NodeID != "" && member {
		return nil, conflict("ChassisManaged", "Chassis %s is managed by member %s, which registers it again; remove the member first.", name, c.NodeID)
	}
	delete(s.chassis, name)
	s.touchMastership(i)
	changed := sortedKeys(s.hostPorts[name])
	for _, id := range changed {
		p := s.ports[id]
		p.OFPort, p.Status = 0, StatusDown
		p.RevisionNumber = i
		p.stamp(s.now)
	}
	return changed, nil
}

// RegisterMember records a controller node's addresses.
// Unreachable stays the leader's word.
func (s *Store) RegisterMember(i uint64, m Member) (Member, error) {
	if m.ID == "" || m.RaftAddr == "" || m.APIAddr == "" {
		return Member{}, invalid("member needs id, raft_address and api_address")
	}
	c := m
	if old, ok := s.members[m.ID]; ok {
		c.Unreachable = old.Unreachable
	}
	s.members[m.ID] = &c
	s.touchMastership(i)
	return c, nil
}

// RemoveMember forgets a controller node.
func (s *Store) RemoveMember(i uint64, id string) error {
	if _, ok := s.members[id]; !ok {
		return notFound("MemberNotFound", "Member %s could not be found", id)
	}
	delete(s.members, id)
	s.touchMastership(i)
	return nil
}
