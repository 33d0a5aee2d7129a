package topology

import (
	"net/netip"
	"slices"
)

// GatewaySpec sets, changes or clears a router's external gateway.
type GatewaySpec struct {
	Clear      bool // external_gateway_info: null or {}
	NetworkID  string
	EnableSNAT *bool
	FixedIPs   *[]FixedIPSpec
}

// setGateway gives router r the gateway g, with a gateway port of id
// portID (chosen by the caller, as router interfaces' are) when it needs
// a new one: a gateway on another network, or other addresses, replaces
// the old port; enable_snat alone keeps it.
func (s *Store) setGateway(index uint64, r *Router, g GatewaySpec, portID string) error {
	if g.Clear || g.NetworkID == "" {
		if r.ExternalGateway == nil {
			return nil
		}
		if f := s.floatingIPsOfRouter(r.ID); len(f) > 0 {
			return conflict("RouterExternalGatewayInUseByFloatingIp",
				"Gateway cannot be updated for router %s, since a gateway to external network %s is required by one or more floating IPs.",
				r.ID, r.ExternalGateway.NetworkID)
		}
		s.removePort(r.GatewayPortID)
		r.ExternalGateway, r.GatewayPortID = nil, ""
		return nil
	}
	n, ok := s.networks[g.NetworkID]
	if !ok {
		return notFound("NetworkNotFound", "Network %s could not be found.", g.NetworkID)
	}
	if !n.External {
		return invalid("Bad router request: Network %s is not an external network.", n.ID)
	}
	snat := true
	if r.ExternalGateway != nil {
		snat = r.ExternalGateway.EnableSNAT
	}
	if g.EnableSNAT != nil {
		snat = *g.EnableSNAT
	}
	same := r.ExternalGateway != nil && r.ExternalGateway.NetworkID == g.NetworkID && g.FixedIPs == nil
	if same {
		r.ExternalGateway.EnableSNAT = snat
		return nil
	}
	if r.ExternalGateway != nil && r.ExternalGateway.NetworkID != g.NetworkID {
		if f := s.floatingIPsOfRouter(r.ID); len(f) > 0 {
			return conflict("RouterExternalGatewayInUseByFloatingIp",
				"Gateway cannot be updated for router %s, since a gateway to external network %s is required by one or more floating IPs.",
				r.ID, r.ExternalGateway.NetworkID)
		}
	}
	if portID == "" {
		return invalid("gateway port id is required")
	}
	old := r.GatewayPortID
	var oldPort *Port
	if old != "" {
		oldPort = s.ports[old]
		s.unindexPort(oldPort)
	}
	owner := OwnerRouterGateway
	ports, err := s.CreatePorts(index, []PortSpec{{ID: portID, NetworkID: &n.ID, DeviceOwner: &owner, DeviceID: &r.ID,
		FixedIPs: g.FixedIPs, managed: true}})
	if oldPort != nil {
		s.indexPort(oldPort)
	}
	if err != nil {
		return err
	}
	if old != "" {
		s.removePort(old)
	}
	p := s.ports[ports[0].ID]
	p.Status = StatusActive
	r.GatewayPortID = p.ID
	r.ExternalGateway = &ExternalGateway{NetworkID: n.ID, EnableSNAT: snat, ExternalFixedIPs: slices.Clone(p.FixedIPs)}
	return nil
}

// checkRoutes: every static route's next hop must be on a subnet the
// router is connected to (an interface's or its gateway's).
func (s *Store) checkRoutes(r *Router, routes []HostRoute) ([]HostRoute, error) {
	var connected []netip.Prefix
	for _, p := range s.RouterInterfaces(r.ID) {
		for _, f := range p.FixedIPs {
			if sn, ok := s.subnets[f.SubnetID]; ok {
				connected = append(connected, netip.MustParsePrefix(sn.CIDR).Masked())
			}
		}
	}
	if gp, ok := s.ports[r.GatewayPortID]; ok {
		for _, f := range gp.FixedIPs {
			if sn, ok := s.subnets[f.SubnetID]; ok {
				connected = append(connected, netip.MustParsePrefix(sn.CIDR).Masked())
			}
		}
	}
	out := make([]HostRoute, 0, len(routes))
	seen := map[string]bool{}
	for _, rt := range routes {
		dst, err := netip.ParsePrefix(rt.Destination)
		if err != nil || !dst.Addr().Is4() {
			return nil, invalid("Invalid route: destination %q is not an IPv4 CIDR", rt.Destination)
		}
		hop, err := netip.ParseAddr(rt.NextHop)
		if err != nil || !hop.Is4() {
			return nil, invalid("Invalid route: nexthop %q is not an IPv4 address", rt.NextHop)
		}
		ok := false
		for _, c := range connected {
			ok = ok || c.Contains(hop)
		}
		if !ok {
			return nil, invalid("Invalid format for routes: the nexthop %s is not connected with router %s", hop, r.ID)
		}
		key := dst.Masked().String() + "|" + hop.String()
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, HostRoute{Destination: dst.Masked().String(), NextHop: hop.String()})
	}
	return out, nil
}
