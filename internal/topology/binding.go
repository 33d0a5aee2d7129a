package topology

import "sort"

// Binding is one port plugged into a chassis' bridge: the interface whose
// external_ids:iface-id names the port, and its OpenFlow port number.
type Binding struct {
	PortID string `json:"port_id"`
	OFPort uint32 `json:"ofport"`
	// Active: the chassis' bridge holds the port's flows (ReportPorts).
	Active bool `json:"active,omitempty"`
}

// SetBindings records the complete set of ports plugged into a chassis.
// Listed ports (that exist) are bound to it with their ofport; ports bound
// to this chassis but not listed are unbound. A port bound to another
// chassis that this chassis lists moves here (a migration). Ports that do
// not exist yet are ignored: the chassis reports again when they appear.
// It returns the ids of ports whose binding changed.
func (s *Store) SetBindings(index uint64, chassis string, bindings []Binding) ([]string, error) {
	if _, ok := s.chassis[chassis]; !ok {
		return nil, notFound("ChassisNotFound", "Chassis %s could not be found.", chassis)
	}
	listed := make(map[string]uint32, len(bindings))
	for _, b := range bindings {
		if b.OFPort == 0 || b.OFPort >= 0xffffff00 {
			return nil, invalid("ofport %d of port %s is not a switch port", b.OFPort, b.PortID)
		}
		listed[b.PortID] = b.OFPort
	}
	var changed []string
	for _, id := range sortedKeys(s.ports) {
		p := s.ports[id]
		ofport, here := listed[id]
		switch {
		case here && (p.HostID != chassis || p.OFPort != ofport):
			p.HostID, p.OFPort, p.Status = chassis, ofport, StatusDown
			p.RevisionNumber = index
			changed = append(changed, id)
		case !here && p.HostID == chassis && p.OFPort != 0:
			p.OFPort, p.Status = 0, StatusDown
			p.RevisionNumber = index
			changed = append(changed, id)
		}
	}
	return changed, nil
}

// ReportPorts records, in one change, the complete set of ports plugged
// into a chassis and which of them its bridge is programmed for: listed
// ports (that exist) are bound there with their ofport, ACTIVE when the
// report says so and DOWN otherwise; ports bound there but not listed are
// unbound. A port bound to another chassis that this chassis lists moves
// here. It returns the ids of ports whose binding or status changed.
func (s *Store) ReportPorts(index uint64, chassis string, bindings []Binding) ([]string, error) {
	if _, ok := s.chassis[chassis]; !ok {
		return nil, notFound("ChassisNotFound", "Chassis %s could not be found.", chassis)
	}
	listed := make(map[string]Binding, len(bindings))
	for _, b := range bindings {
		if b.OFPort == 0 || b.OFPort >= 0xffffff00 {
			return nil, invalid("ofport %d of port %s is not a switch port", b.OFPort, b.PortID)
		}
		listed[b.PortID] = b
	}
	var changed []string
	for _, id := range sortedKeys(s.ports) {
		p := s.ports[id]
		b, here := listed[id]
		status := StatusDown
		if b.Active {
			status = StatusActive
		}
		switch {
		case here && (p.HostID != chassis || p.OFPort != b.OFPort || p.Status != status):
			p.HostID, p.OFPort, p.Status = chassis, b.OFPort, status
			p.RevisionNumber = index
			changed = append(changed, id)
		case !here && p.HostID == chassis && p.OFPort != 0:
			p.OFPort, p.Status = 0, StatusDown
			p.RevisionNumber = index
			changed = append(changed, id)
		}
	}
	return changed, nil
}

// SetPortsActive marks ports bound to a chassis ACTIVE: its bridge holds
// their flows. Ports no longer bound there are left alone.
func (s *Store) SetPortsActive(index uint64, chassis string, ports []string) []string {
	sort.Strings(ports)
	var changed []string
	for _, id := range ports {
		p, ok := s.ports[id]
		if !ok || p.HostID != chassis || p.OFPort == 0 || p.Status == StatusActive {
			continue
		}
		p.Status = StatusActive
		p.RevisionNumber = index
		changed = append(changed, id)
	}
	return changed
}

// ChassisByName returns one chassis.
func (s *Store) ChassisByName(name string) (Chassis, bool) {
	c, ok := s.chassis[name]
	if !ok {
		return Chassis{}, false
	}
	return *c, true
}

// Located reports whether a port is plugged into a chassis' bridge.
func (p Port) Located() bool { return p.HostID != "" && p.OFPort != 0 }
