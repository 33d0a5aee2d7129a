package topology

import (
	"fmt"
	"sort"
)

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
// A port bound anew is DOWN; one whose binding stays keeps its status.
// It returns the ids of ports whose binding changed. (The command of older
// releases, kept for their logs; ReportPorts is what a chassis sends.)
func (s *Store) SetBindings(index uint64, chassis string, bindings []Binding) ([]string, error) {
	return s.bind(index, chassis, bindings, false)
}

// ReportPorts is SetBindings with each listed port's status as well:
// ACTIVE when the report says its bridge is programmed for it, DOWN
// otherwise — binding and status in one change. It returns the ids of
// ports whose binding or status changed.
func (s *Store) ReportPorts(index uint64, chassis string, bindings []Binding) ([]string, error) {
	return s.bind(index, chassis, bindings, true)
}

// bind is SetBindings, and with withStatus ReportPorts.
func (s *Store) bind(index uint64, chassis string, bindings []Binding, withStatus bool) ([]string, error) {
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
	// The ports it lists and those bound to it now, in id order.
	ids := make([]string, 0, len(listed)+len(s.hostPorts[chassis]))
	for id := range listed {
		if _, ok := s.ports[id]; ok {
			ids = append(ids, id)
		}
	}
	for id := range s.hostPorts[chassis] {
		if _, ok := listed[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var changed []string
	for _, id := range ids {
		p := s.ports[id]
		b, here := listed[id]
		if here && !s.canHost(chassis, p) {
			// Refused: bound here (so the port says where it failed), but
			// never located, so no flow serves it.
			b.OFPort, b.Active = 0, false
		}
		moved := here && (p.HostID != chassis || p.OFPort != b.OFPort)
		status := StatusDown
		if withStatus && b.Active {
			status = StatusActive
		}
		switch {
		case moved || here && withStatus && p.Status != status:
			s.unindexHost(p)
			p.HostID, p.OFPort, p.Status = chassis, b.OFPort, status
			s.indexHost(p)
			p.RevisionNumber = index
			p.stamp(s.now)
			changed = append(changed, id)
		case !here && p.HostID == chassis && p.OFPort != 0:
			p.OFPort, p.Status = 0, StatusDown
			p.RevisionNumber = index
			p.stamp(s.now)
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
		p.stamp(s.now)
		changed = append(changed, id)
	}
	return changed
}

// canHost reports whether a chassis can carry a port's network: a flat or
// vlan network needs a bridge mapping of its physical network there.
func (s *Store) canHost(chassis string, p *Port) bool {
	c, ok1 := s.chassis[chassis]
	n, ok2 := s.networks[p.NetworkID]
	return ok1 && ok2 && c.Reaches(*n)
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

// portOut is a copy of a port as the store hands it out, with what Nova's
// os-vif reads filled in: vif_type ovs once its binding:host_id names a
// registered chassis (set by the chassis when the VM is plugged, or
// beforehand by Nova: a pre-binding), binding_failed if it names none,
// unbound before; vif_details of that chassis' bridge.
func (s *Store) portOut(p *Port) Port {
	out := *p
	out.VNICType = VNICNormal
	switch c, ok := s.chassis[p.HostID]; {
	case p.HostID == "":
		out.VIFType, out.VIFDetails = VIFTypeUnbound, map[string]any{}
	case !ok:
		out.VIFType, out.VIFDetails = VIFTypeBindingFailed, map[string]any{}
	case !s.canHost(p.HostID, p):
		n := s.networks[p.NetworkID]
		out.VIFType = VIFTypeBindingFailed
		out.VIFDetails = map[string]any{"wyvern:binding_error": fmt.Sprintf(
			"chassis %s has no bridge mapping for physical network %s", p.HostID, n.PhysicalNetwork)}
	default:
		bridge, dp := c.Bridge, c.DatapathType
		if bridge == "" {
			bridge = "br-int"
		}
		if dp == "" {
			dp = "system"
		}
		out.VIFType = VIFTypeOVS
		out.VIFDetails = map[string]any{"port_filter": true, "bridge_name": bridge, "datapath_type": dp,
			"connectivity": "l2", "ovs_hybrid_plug": false}
	}
	return out
}
