package topology

import (
	"encoding/json"
	"fmt"
)

// --- networks ---------------------------------------------------------

// NetworkSpec is a network create or update; nil fields are absent
// (defaults on create, unchanged on update).
type NetworkSpec struct {
	Extra          map[string]json.RawMessage // merged into the object's Extra
	ID             string
	Name           *string
	AdminStateUp   *bool
	NetworkType    *string
	SegmentationID *uint32
	MTU            *int
	Shared         *bool
	Description    *string
	ProjectID      *string
	TenantID       *string
	Tags           []string
	DNSDomain      *string
	// PhysicalNetwork: for flat and vlan networks; fixed at creation.
	PhysicalNetwork *string
	// External: router:external.
	External *bool
}

// MaxSegmentationID is the largest VNI / GRE key Wyvern hands out (24 bits,
// so VXLAN and GRE share one range).
const MaxSegmentationID = 1<<24 - 1

// CreateNetworks creates networks, all or none.
func (s *Store) CreateNetworks(index uint64, specs []NetworkSpec) ([]Network, error) {
	saved := s.seq.clone()
	var done []string
	out := make([]Network, 0, len(specs))
	for i, sp := range specs {
		n, err := s.createNetwork(index, sp)
		if err != nil {
			for _, id := range done {
				s.removeNetwork(id)
			}
			s.seq = saved
			return nil, withItem(err, i, len(specs))
		}
		done = append(done, n.ID)
		out = append(out, n)
	}
	return out, nil
}

// withItem says which element of a bulk request failed.
func withItem(err error, i, n int) error {
	e, ok := err.(*Error)
	if !ok || n == 1 {
		return err
	}
	c := *e
	c.Message = fmt.Sprintf("item %d: %s", i, e.Message)
	return &c
}

func (s *Store) createNetwork(index uint64, sp NetworkSpec) (Network, error) {
	if sp.ID == "" {
		return Network{}, invalid("network id is required")
	}
	if _, ok := s.networks[sp.ID]; ok {
		return Network{}, conflict("NetworkExists", "Network %s already exists", sp.ID)
	}
	n := &Network{ID: sp.ID, AdminStateUp: true, NetworkType: TypeVXLAN, Status: StatusActive, Tags: []string{}}
	if sp.NetworkType != nil {
		n.NetworkType = *sp.NetworkType
	}
	if sp.PhysicalNetwork != nil {
		n.PhysicalNetwork = *sp.PhysicalNetwork
	}
	if err := applyNetworkFields(n, sp); err != nil {
		return Network{}, err
	}
	if err := s.withinQuota(QuotaNetwork, n.ProjectID); err != nil {
		return Network{}, err
	}
	if err := s.segment(n, sp.SegmentationID); err != nil {
		return Network{}, err
	}
	if sp.MTU == nil {
		switch n.NetworkType {
		case TypeVXLAN:
			n.MTU = 1450
		case TypeGRE:
			n.MTU = 1458
		default:
			n.MTU = 1500
		}
	}
	s.seq.NetworkKey++
	n.Key = s.seq.NetworkKey
	n.RevisionNumber = index
	n.stamp(s.now)
	s.networks[n.ID] = n
	s.indexNetwork(n)
	out, _ := s.Network(n.ID)
	return out, nil
}

func applyNetworkFields(n *Network, sp NetworkSpec) error {
	if sp.Name != nil {
		n.Name = *sp.Name
	}
	if sp.AdminStateUp != nil {
		n.AdminStateUp = *sp.AdminStateUp
	}
	if sp.MTU != nil {
		if *sp.MTU < 68 || *sp.MTU > 9000 {
			return invalid("mtu %d is outside 68..9000", *sp.MTU)
		}
		n.MTU = *sp.MTU
	}
	if sp.Shared != nil {
		n.Shared = *sp.Shared
	}
	if sp.External != nil {
		n.External = *sp.External
	}
	if sp.DNSDomain != nil {
		d, err := checkDNSDomain(*sp.DNSDomain)
		if err != nil {
			return err
		}
		n.DNSDomain = d
	}
	if sp.Description != nil {
		n.Description = *sp.Description
	}
	setProject(&n.ProjectID, &n.TenantID, sp.ProjectID, sp.TenantID)
	if sp.Tags != nil {
		n.Tags = append([]string{}, sp.Tags...)
	}
	mergeExtra(&n.Extra, sp.Extra)
	return nil
}

// mergeExtra sets the given passive fields; a JSON null removes one. It
// builds a new map (copy on write): copies of an object handed to readers
// share its old map, which must never change under them.
func mergeExtra(dst *map[string]json.RawMessage, src map[string]json.RawMessage) {
	if len(src) == 0 {
		return
	}
	m := make(map[string]json.RawMessage, len(*dst)+len(src))
	for k, v := range *dst {
		m[k] = v
	}
	for k, v := range src {
		if string(v) == "null" {
			delete(m, k)
			continue
		}
		m[k] = append(json.RawMessage(nil), v...)
	}
	if len(m) == 0 {
		m = nil
	}
	*dst = m
}

// setProject keeps Neutron's project_id and tenant_id aliases equal.
func setProject(project, tenant *string, p, t *string) {
	switch {
	case p != nil:
		*project, *tenant = *p, *p
	case t != nil:
		*project, *tenant = *t, *t
	}
}

func (s *Store) indexNetwork(n *Network) {
	if s.segIDs[segKey(*n)] == nil {
		s.segIDs[segKey(*n)] = map[uint32]string{}
	}
	s.segIDs[segKey(*n)][n.SegmentationID] = n.ID
	if s.macs[n.ID] == nil {
		s.macs[n.ID] = map[string]string{}
	}
	if s.netPorts[n.ID] == nil {
		s.netPorts[n.ID] = map[string]bool{}
	}
}

// segment checks a new network's type and physical network and gives it
// a segmentation id: the one asked for, if free, or the next free one of
// its type. An overlay's (VNI, GRE key) is unique per type; a vlan's VLAN
// id is unique per physical network, and a physical network carries one
// flat network.
func (s *Store) segment(n *Network, want *uint32) error {
	switch n.NetworkType {
	case TypeVXLAN, TypeGRE:
		if n.PhysicalNetwork != "" {
			return invalid("provider:physical_network is not allowed for a %s network", n.NetworkType)
		}
	case TypeFlat, TypeVLAN:
		if n.PhysicalNetwork == "" {
			return invalid("provider:physical_network is required for a %s network", n.NetworkType)
		}
		if !validPhysnet(n.PhysicalNetwork) {
			return invalid("provider:physical_network %q: want up to 64 letters, digits, '-' or '_'", n.PhysicalNetwork)
		}
	default:
		return invalid("provider:network_type %q is not supported (vxlan, gre, flat or vlan)", n.NetworkType)
	}
	used := s.segIDs[segKey(*n)]
	switch n.NetworkType {
	case TypeFlat:
		if want != nil && *want != 0 {
			return invalid("provider:segmentation_id is not allowed for a flat network")
		}
		if owner, taken := used[0]; taken {
			return conflict("FlatNetworkInUse", "Unable to create the flat network. Physical network %s is in use by network %s.", n.PhysicalNetwork, owner)
		}
		n.SegmentationID = 0
		return nil
	case TypeVLAN:
		if want == nil {
			return invalid("provider:segmentation_id (the VLAN id, 1..%d) is required for a vlan network", MaxVLAN)
		}
		if *want < 1 || *want > MaxVLAN {
			return invalid("provider:segmentation_id %d is outside 1..%d", *want, MaxVLAN)
		}
		if owner, taken := used[*want]; taken {
			return conflict("VlanIdInUse", "Unable to create the network. The VLAN %d on physical network %s is in use by network %s.", *want, n.PhysicalNetwork, owner)
		}
		n.SegmentationID = *want
		return nil
	}
	if want != nil {
		id := *want
		if id < 1 || id > MaxSegmentationID {
			return invalid("provider:segmentation_id %d is outside 1..%d", id, MaxSegmentationID)
		}
		if owner, taken := used[id]; taken {
			return conflict("TunnelIdInUse", "Unable to create the network. The tunnel ID %d is in use by network %s.", id, owner)
		}
		n.SegmentationID = id
		return nil
	}
	id, ok := s.freeSegID(n.NetworkType)
	if !ok {
		return conflict("NoNetworkAvailable", "Unable to create the network. No tenant network is available for allocation.")
	}
	n.SegmentationID = id
	return nil
}

// segKey is the space a network's segmentation id is unique in: its
// overlay type, or its provider type on its physical network.
func segKey(n Network) string {
	if IsProvider(n.NetworkType) {
		return n.NetworkType + ":" + n.PhysicalNetwork
	}
	return n.NetworkType
}

// validPhysnet: a physical network's name is also part of a chassis'
// --bridge-mappings and of an OVS port name's origin.
func validPhysnet(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// freeSegID finds the next unused segmentation id of a type, searching
// from where the last allocation stopped.
func (s *Store) freeSegID(typ string) (uint32, bool) {
	next := s.seq.SegID[typ]
	used := s.segIDs[typ]
	for i := 0; i < MaxSegmentationID; i++ {
		next = next%MaxSegmentationID + 1
		if _, taken := used[next]; !taken {
			s.seq.SegID[typ] = next
			return next, true
		}
	}
	return 0, false
}

// UpdateNetwork changes a network's mutable fields.
func (s *Store) UpdateNetwork(index uint64, sp NetworkSpec) (Network, error) {
	n, ok := s.networks[sp.ID]
	if !ok {
		return Network{}, notFound("NetworkNotFound", "Network %s could not be found.", sp.ID)
	}
	if sp.NetworkType != nil && *sp.NetworkType != n.NetworkType || sp.SegmentationID != nil && *sp.SegmentationID != n.SegmentationID ||
		sp.PhysicalNetwork != nil && *sp.PhysicalNetwork != n.PhysicalNetwork {
		return Network{}, invalid("provider attributes of an existing network cannot be changed")
	}
	c := *n
	if err := applyNetworkFields(&c, sp); err != nil {
		return Network{}, err
	}
	if n.External && !c.External {
		for _, id := range sortedKeys(s.routers) {
			if g := s.routers[id].ExternalGateway; g != nil && g.NetworkID == n.ID {
				return Network{}, conflict("ExternalNetworkInUse", "External network %s cannot be updated, as it is used by the gateway of router %s.", n.ID, id)
			}
		}
		for _, id := range sortedKeys(s.fips) {
			if s.fips[id].FloatingNetworkID == n.ID {
				return Network{}, conflict("ExternalNetworkInUse", "External network %s cannot be updated, as floating IP %s is on it.", n.ID, id)
			}
		}
	}
	c.RevisionNumber = index
	c.stamp(s.now)
	*n = c
	out, _ := s.Network(n.ID)
	return out, nil
}

// DeleteNetwork deletes a network with no ports but the holders of
// floating IPs associated with nothing: those floating IPs go with it,
// as in Neutron (FloatingIPsFreedBy names them), and so do its subnets,
// which are returned.
func (s *Store) DeleteNetwork(_ uint64, id string) ([]string, error) {
	if _, ok := s.networks[id]; !ok {
		return nil, notFound("NetworkNotFound", "Network %s could not be found.", id)
	}
	fips := s.FloatingIPsFreedBy(id)
	if n := len(s.netPorts[id]); n > len(fips) {
		return nil, conflict("NetworkInUse", "Unable to complete operation on network %s. There are one or more ports still in use on the network.", id)
	}
	for _, f := range fips {
		if _, err := s.DeleteFloatingIP(0, f); err != nil {
			return nil, err
		}
	}
	subnets := s.subnetIDs(id)
	s.removeNetwork(id)
	return subnets, nil
}

// FloatingIPsFreedBy are the floating IPs of an external network that
// deleting it deletes: those associated with no port and forwarding no
// ports, in id order.
func (s *Store) FloatingIPsFreedBy(network string) []string {
	var out []string
	for _, id := range sortedKeys(s.fips) {
		if f := s.fips[id]; f.FloatingNetworkID == network && f.PortID == "" && len(f.PortForwardings) == 0 {
			out = append(out, id)
		}
	}
	return out
}

func (s *Store) removeNetwork(id string) {
	n := s.networks[id]
	for _, sid := range s.subnetIDs(id) {
		s.removeSubnet(sid)
	}
	delete(s.segIDs[segKey(*n)], n.SegmentationID)
	delete(s.macs, id)
	delete(s.netPorts, id)
	delete(s.neighbours, id)
	delete(s.networks, id)
}
