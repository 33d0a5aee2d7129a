package topology

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
)

// FixedIPSpec is one requested address: a subnet (allocate), an address
// (find its subnet), or both.
type FixedIPSpec struct {
	SubnetID  string
	IPAddress string
}

// PortSpec is a port create or update; nil fields are absent.
type PortSpec struct {
	// A spec is a raft command's payload, decoded on every replica: an
	// absent (nil) pointer field is left out of it rather than written
	// as null, which decodes the same (omitempty on pointers only: a
	// slice's nil and empty differ).
	Extra               map[string]json.RawMessage // merged into the object's Extra
	ID                  string
	NetworkID           *string        `json:",omitempty"`
	Name                *string        `json:",omitempty"`
	MACAddress          *string        `json:",omitempty"`
	FixedIPs            *[]FixedIPSpec `json:",omitempty"` // nil: absent; empty: no addresses
	AllowedAddressPairs *[]AddressPair `json:",omitempty"`
	PortSecurityEnabled *bool          `json:",omitempty"`
	DeviceOwner         *string        `json:",omitempty"`
	DeviceID            *string        `json:",omitempty"`
	AdminStateUp        *bool          `json:",omitempty"`
	HostID              *string        `json:",omitempty"`
	Description         *string        `json:",omitempty"`
	ProjectID           *string        `json:",omitempty"`
	TenantID            *string        `json:",omitempty"`
	Tags                []string
	SecurityGroups      []string
	DNSName             *string         `json:",omitempty"`
	ExtraDHCPOpts       *[]ExtraDHCPOpt `json:",omitempty"`

	// managed: the port is one the topology makes itself (a router
	// interface or gateway, a floating IP's holder), the only way to make
	// one: it is never part of a proposed command.
	managed bool
}

// CreatePorts creates ports, all or none: a failure undoes the ports and
// allocations of the earlier elements.
func (s *Store) CreatePorts(index uint64, specs []PortSpec) ([]Port, error) {
	saved := s.seq.clone()
	hints := make(map[string]netip.Addr, len(s.ipHint))
	for k, v := range s.ipHint {
		hints[k] = v
	}
	var done []string
	// The projects without a default security group: a port may create
	// theirs, which a failure undoes.
	var noDefault []string
	for _, sp := range specs {
		if p := specProject(sp.ProjectID, sp.TenantID); s.defaultGroup(p) == nil && !slices.Contains(noDefault, p) {
			noDefault = append(noDefault, p)
		}
	}
	out := make([]Port, 0, len(specs))
	for i, sp := range specs {
		p, err := s.createPort(index, sp)
		if err != nil {
			for _, id := range done {
				s.removePort(id)
			}
			for _, p := range noDefault {
				if s.defaultGroup(p) != nil {
					s.removeSecurityGroup(DefaultSecurityGroupID(p))
				}
			}
			s.seq, s.ipHint = saved, hints
			return nil, withItem(err, i, len(specs))
		}
		done = append(done, p.ID)
		out = append(out, p)
	}
	return out, nil
}

func (s *Store) createPort(index uint64, sp PortSpec) (Port, error) {
	if sp.ID == "" {
		return Port{}, invalid("port id is required")
	}
	if _, ok := s.ports[sp.ID]; ok {
		return Port{}, conflict("PortExists", "Port %s already exists", sp.ID)
	}
	if sp.DeviceOwner != nil && isManaged(*sp.DeviceOwner) && !sp.managed {
		return Port{}, invalid("device_owner %s is set by the router or floating IP that owns the port, not on a port", *sp.DeviceOwner)
	}
	if sp.NetworkID == nil || *sp.NetworkID == "" {
		return Port{}, invalid("network_id is required")
	}
	nw, ok := s.networks[*sp.NetworkID]
	if !ok {
		return Port{}, notFound("NetworkNotFound", "Network %s could not be found.", *sp.NetworkID)
	}
	p := &Port{ID: sp.ID, NetworkID: nw.ID, AdminStateUp: true, PortSecurityEnabled: true, Status: StatusDown,
		FixedIPs: []FixedIP{}, AllowedAddressPairs: []AddressPair{}, Tags: []string{}, SecurityGroups: []string{}}
	if sp.MACAddress != nil {
		mac, err := parseMAC(*sp.MACAddress)
		if err != nil {
			return Port{}, err
		}
		if owner, used := s.macs[nw.ID][mac]; used {
			return Port{}, conflict("MacAddressInUse", "Unable to complete operation for network %s. The mac address %s is in use by port %s.", nw.ID, mac, owner)
		}
		p.MACAddress = mac
	} else {
		p.MACAddress = s.allocateMAC(nw.ID)
	}
	fixed, err := s.resolveFixedIPs(nw.ID, p.ID, sp.FixedIPs)
	if err != nil {
		return Port{}, err
	}
	p.FixedIPs = fixed
	if err := s.applyPortFields(p, sp); err != nil {
		return Port{}, err
	}
	if !sp.managed {
		if err := s.withinQuota(QuotaPort, p.ProjectID); err != nil {
			return Port{}, err
		}
	}
	groups, wantDefault, err := s.portGroups(p, sp, nil, true)
	if err != nil {
		return Port{}, err
	}
	if wantDefault { // the last step that can fail
		g, _, err := s.ensureDefaultGroup(index, p.ProjectID)
		if err != nil {
			return Port{}, err
		}
		groups = []string{g.ID}
	}
	p.SecurityGroups = groups
	s.seq.PortKey++
	p.Key = s.seq.PortKey
	p.RevisionNumber = index
	p.stamp(s.now)
	s.ports[p.ID] = p
	s.indexPort(p)
	return s.portOut(p), nil
}

// allocateMAC hands out fa:16:3e:xx:xx:xx from a counter, skipping any in
// use on the network.
func (s *Store) allocateMAC(network string) string {
	for {
		s.seq.MAC = (s.seq.MAC + 1) & 0xffffff
		mac := fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", byte(s.seq.MAC>>16), byte(s.seq.MAC>>8), byte(s.seq.MAC))
		if _, used := s.macs[network][mac]; !used {
			return mac
		}
	}
}

// resolveFixedIPs validates requested addresses and allocates the missing
// ones. Absent means one address from each subnet of the network.
func (s *Store) resolveFixedIPs(network, port string, req *[]FixedIPSpec) ([]FixedIP, error) {
	var specs []FixedIPSpec
	if req == nil {
		for _, sid := range s.subnetIDs(network) {
			specs = append(specs, FixedIPSpec{SubnetID: sid})
		}
	} else {
		specs = *req
	}
	out := []FixedIP{}
	taken := map[netip.Addr]bool{} // within this request
	for _, f := range specs {
		var sn *Subnet
		if f.SubnetID != "" {
			sn = s.subnets[f.SubnetID]
			if sn == nil {
				return nil, notFound("SubnetNotFound", "Subnet %s could not be found.", f.SubnetID)
			}
			if sn.NetworkID != network {
				return nil, invalid("subnet %s is not on network %s", sn.ID, network)
			}
		}
		if f.IPAddress == "" {
			if sn == nil {
				return nil, invalid("fixed_ips entry needs subnet_id or ip_address")
			}
			a, ok := s.allocateIP(sn, taken)
			if !ok {
				return nil, conflict("IpAddressGenerationFailure", "No more IP addresses available on network %s.", network)
			}
			taken[a] = true
			out = append(out, FixedIP{SubnetID: sn.ID, IPAddress: a.String()})
			continue
		}
		a, err := parseIPv4(f.IPAddress)
		if err != nil {
			return nil, err
		}
		if sn == nil {
			for _, sid := range s.subnetIDs(network) {
				if netip.MustParsePrefix(s.subnets[sid].CIDR).Contains(a) {
					sn = s.subnets[sid]
					break
				}
			}
			if sn == nil {
				return nil, conflict("InvalidIpForNetwork", "IP address %s is not a valid IP for any of the subnets on the specified network.", a)
			}
		}
		prefix := netip.MustParsePrefix(sn.CIDR)
		if !prefix.Contains(a) || a == prefix.Addr() || a == lastAddr(prefix) {
			return nil, conflict("InvalidIpForSubnet", "IP address %s is not a valid IP for the specified subnet.", a)
		}
		if sn.GatewayIP == nil && sn.EnableDHCP && a == LastHost(prefix) {
			return nil, conflict("IpAddressInUse", "IP address %s is the DHCP server's in subnet %s", a, sn.ID)
		}
		if owner, used := s.ips[sn.ID][a]; used && owner != port || taken[a] {
			return nil, conflict("IpAddressInUse", "IP address %s already allocated in subnet %s", a, sn.ID)
		}
		taken[a] = true
		out = append(out, FixedIP{SubnetID: sn.ID, IPAddress: a.String()})
	}
	return out, nil
}

func (s *Store) applyPortFields(p *Port, sp PortSpec) error {
	if sp.Name != nil {
		p.Name = *sp.Name
	}
	if sp.AllowedAddressPairs != nil {
		pairs := []AddressPair{}
		for _, ap := range *sp.AllowedAddressPairs {
			if _, err := netip.ParsePrefix(ap.IPAddress); err != nil {
				if _, err := parseIPv4(ap.IPAddress); err != nil {
					return invalid("allowed_address_pairs: '%s' is not an IP address or CIDR", ap.IPAddress)
				}
			}
			mac := p.MACAddress
			if ap.MACAddress != "" {
				m, err := parseMAC(ap.MACAddress)
				if err != nil {
					return err
				}
				mac = m
			}
			pairs = append(pairs, AddressPair{IPAddress: ap.IPAddress, MACAddress: mac})
		}
		p.AllowedAddressPairs = pairs
	}
	if sp.PortSecurityEnabled != nil {
		p.PortSecurityEnabled = *sp.PortSecurityEnabled
	}
	if sp.DeviceOwner != nil {
		p.DeviceOwner = *sp.DeviceOwner
	}
	if sp.DeviceID != nil {
		p.DeviceID = *sp.DeviceID
	}
	if sp.AdminStateUp != nil {
		p.AdminStateUp = *sp.AdminStateUp
	}
	if sp.HostID != nil {
		p.HostID = *sp.HostID
	}
	if sp.DNSName != nil {
		if err := checkDNSName(*sp.DNSName); err != nil {
			return err
		}
		p.DNSName = *sp.DNSName
	}
	if sp.ExtraDHCPOpts != nil {
		opts, err := mergeDHCPOpts(p.ExtraDHCPOpts, *sp.ExtraDHCPOpts)
		if err != nil {
			return err
		}
		p.ExtraDHCPOpts = opts
	}
	if sp.Description != nil {
		p.Description = *sp.Description
	}
	setProject(&p.ProjectID, &p.TenantID, sp.ProjectID, sp.TenantID)
	if sp.Tags != nil {
		p.Tags = append([]string{}, sp.Tags...)
	}
	mergeExtra(&p.Extra, sp.Extra)
	return nil
}

func (s *Store) indexPort(p *Port) {
	s.macs[p.NetworkID][p.MACAddress] = p.ID
	s.netPorts[p.NetworkID][p.ID] = true
	for _, f := range p.FixedIPs {
		s.ips[f.SubnetID][netip.MustParseAddr(f.IPAddress)] = p.ID
	}
	s.indexHost(p)
}

// indexHost and unindexHost keep hostPorts: call them around any change
// of a port's HostID.
func (s *Store) indexHost(p *Port) {
	if p.HostID == "" {
		return
	}
	if s.hostPorts[p.HostID] == nil {
		s.hostPorts[p.HostID] = map[string]bool{}
	}
	s.hostPorts[p.HostID][p.ID] = true
}

func (s *Store) unindexHost(p *Port) {
	if ps := s.hostPorts[p.HostID]; ps != nil {
		delete(ps, p.ID)
		if len(ps) == 0 {
			delete(s.hostPorts, p.HostID)
		}
	}
}

func (s *Store) unindexPort(p *Port) {
	delete(s.macs[p.NetworkID], p.MACAddress)
	delete(s.netPorts[p.NetworkID], p.ID)
	for _, f := range p.FixedIPs {
		delete(s.ips[f.SubnetID], netip.MustParseAddr(f.IPAddress))
	}
	s.unindexHost(p)
}

// UpdatePort changes a port. New fixed IPs and MAC are checked against
// every other port; the port keeps its key.
func (s *Store) UpdatePort(index uint64, sp PortSpec) (Port, error) {
	p, ok := s.ports[sp.ID]
	if !ok {
		return Port{}, notFound("PortNotFound", "Port %s could not be found.", sp.ID)
	}
	if sp.NetworkID != nil && *sp.NetworkID != p.NetworkID {
		return Port{}, invalid("network_id of an existing port cannot be changed")
	}
	if sp.FixedIPs != nil && sameFixedIPs(p.FixedIPs, *sp.FixedIPs) {
		sp.FixedIPs = nil // what the port has: nothing to change (a router's interface too)
	}
	if isManaged(p.DeviceOwner) && (sp.FixedIPs != nil || sp.MACAddress != nil || sp.DeviceOwner != nil || sp.DeviceID != nil || sp.HostID != nil) {
		return Port{}, conflict("PortInUse", "Port %s is owned by %s %s; change it through its owner", p.ID, p.DeviceOwner, p.DeviceID)
	}
	if sp.DeviceOwner != nil && isManaged(*sp.DeviceOwner) {
		return Port{}, invalid("device_owner %s is set by the router or floating IP that owns the port, not on a port", *sp.DeviceOwner)
	}
	c := *p
	s.unindexPort(p)
	hints := make(map[string]netip.Addr, len(s.ipHint))
	for k, v := range s.ipHint {
		hints[k] = v
	}
	restore := func() { s.indexPort(p); s.ipHint = hints }
	if sp.MACAddress != nil {
		mac, err := parseMAC(*sp.MACAddress)
		if err != nil {
			restore()
			return Port{}, err
		}
		if owner, used := s.macs[p.NetworkID][mac]; used {
			restore()
			return Port{}, conflict("MacAddressInUse", "Unable to complete operation for network %s. The mac address %s is in use by port %s.", p.NetworkID, mac, owner)
		}
		c.MACAddress = mac
	}
	if sp.FixedIPs != nil {
		fixed, err := s.resolveFixedIPs(p.NetworkID, p.ID, sp.FixedIPs)
		if err != nil {
			restore()
			return Port{}, err
		}
		if err := s.fixedIPsInUse(p.ID, fixed); err != nil {
			restore()
			return Port{}, err
		}
		c.FixedIPs = fixed
	}
	if err := s.applyPortFields(&c, sp); err != nil {
		restore()
		return Port{}, err
	}
	groups, _, err := s.portGroups(&c, sp, p.SecurityGroups, false)
	if err != nil {
		restore()
		return Port{}, err
	}
	c.SecurityGroups = groups
	if c.HostID != p.HostID { // a binding belongs to the chassis that reported it
		c.OFPort, c.Status = 0, StatusDown
	}
	c.RevisionNumber = index
	c.stamp(s.now)
	*p = c
	s.indexPort(p)
	return s.portOut(p), nil
}

// sameFixedIPs reports whether requested fixed IPs name exactly the
// addresses a port has, each by its subnet, its address or both.
func sameFixedIPs(have []FixedIP, want []FixedIPSpec) bool {
	if len(have) != len(want) {
		return false
	}
	for i, w := range want {
		h := have[i]
		if w.SubnetID == "" && w.IPAddress == "" || w.SubnetID != "" && w.SubnetID != h.SubnetID {
			return false
		}
		if w.IPAddress != "" {
			if a, err := netip.ParseAddr(w.IPAddress); err != nil || a.String() != h.IPAddress {
				return false
			}
		}
	}
	return true
}

// DeletePort deletes a port and frees its MAC and addresses.
func (s *Store) DeletePort(_ uint64, id string) error {
	p, ok := s.ports[id]
	if !ok {
		return notFound("PortNotFound", "Port %s could not be found.", id)
	}
	if isManaged(p.DeviceOwner) {
		return conflict("PortInUse", "Port %s is owned by %s %s; delete it through its owner", id, p.DeviceOwner, p.DeviceID)
	}
	s.disassociatePort(id)
	s.removePort(id)
	return nil
}

// isManaged reports whether ports of a device owner are made and removed
// by the topology itself, never directly.
func isManaged(owner string) bool {
	return owner == OwnerRouterInterface || owner == OwnerRouterGateway || owner == OwnerFloatingIP
}

func (s *Store) removePort(id string) {
	p := s.ports[id]
	s.unindexPort(p)
	delete(s.ports, id)
}
