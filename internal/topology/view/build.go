package view

import (
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Build copies the store into a View. Call it under the store's read
// lock; the View shares nothing with the store.
func Build(s *topology.Store) *View { return new(Builder).Build(s) }

// Builder builds views of one store, one applied index after another.
// Build types again only the ports whose revision (the raft index of
// their last change) moved since its last view; Next, told what changed,
// looks at those ports alone. Either way the per-network indexes of the
// networks no changed port is in are the last view's, shared.
type Builder struct {
	prev *View
}

// Build is Build, reusing the typed ports of the builder's last view: it
// walks every port of the store.
func (b *Builder) Build(s *topology.Store) *View {
	v := b.base(s, nil, keepParts{})
	prev := b.prev
	var w portWriter
	var changed []portChange
	if prev == nil {
		w.fresh(&v.ports)
		s.EachPortRef(func(p *topology.Port) {
			if tp, ok := v.port(p); ok {
				w.put(&tp)
			}
		})
	} else {
		v.ports = prev.ports
		w.t = &v.ports
		seen := make(map[string]bool, prev.ports.len())
		s.EachPortRef(func(p *topology.Port) {
			seen[p.ID] = true
			if c, ok := v.retype(&w, prev, p); ok {
				changed = append(changed, c)
			}
		})
		prev.ports.each(func(old *Port) {
			if !seen[old.ID] {
				w.remove(old.ID)
				changed = append(changed, portChange{old: old})
			}
		})
	}
	return b.finish(s, v, prev, changed)
}

// Next is the view after changes, the committed changes since the
// builder's last view (nil when none changed an object): the same view
// Build makes. Only a change to a network or a subnet, which ports are
// typed against, makes it walk every port.
func (b *Builder) Next(s *topology.Store, changes []topology.Change) *View {
	prev := b.prev
	if prev == nil {
		return b.Build(s)
	}
	for _, c := range changes {
		if c.Resource == topology.ResourceNetwork || c.Resource == topology.ResourceSubnet {
			return b.Build(s)
		}
	}
	// What no change touched is the previous view's (views never change).
	var keep keepParts
	keep.networks, keep.chassis, keep.routers = true, true, true
	for _, c := range changes {
		switch c.Resource {
		case topology.ResourceChassis:
			keep.chassis = false
		case topology.ResourceRouter:
			keep.routers = false
		}
	}
	v := b.base(s, prev, keep)
	v.ports = prev.ports
	w := portWriter{t: &v.ports}
	var changed []portChange
	done := map[string]bool{}
	for _, c := range changes {
		if c.Resource != topology.ResourcePort || done[c.ID] {
			continue
		}
		done[c.ID] = true
		if p, ok := s.PortRef(c.ID); ok {
			if pc, ok := v.retype(&w, prev, p); ok {
				changed = append(changed, pc)
			}
		} else if old, ok := prev.ports.get(c.ID); ok {
			w.remove(c.ID)
			changed = append(changed, portChange{old: old})
		}
	}
	return b.finish(s, v, prev, changed)
}

// portChange is a port that differs from the previous view's: the
// previous *Port (nil for a new one) and the new (nil when gone).
type portChange struct{ old, new *Port }

// retype brings one store port into the view's table: the previous
// view's typed port while its revision and network stand, else typed
// again (or taken out when its network is gone). ok reports a change.
func (v *View) retype(w *portWriter, prev *View, p *topology.Port) (portChange, bool) {
	old, had := prev.ports.get(p.ID)
	if had && old.rev == p.RevisionNumber && old.NetworkID == p.NetworkID {
		if _, ok := v.networks[p.NetworkID]; ok {
			return portChange{}, false
		}
	}
	tp, ok := v.port(p)
	switch {
	case ok:
		w.put(&tp)
		if !had {
			old = nil
		}
		return portChange{old: old, new: &tp}, true
	case had:
		w.remove(p.ID)
		return portChange{old: old}, true
	}
	return portChange{}, false
}

// keepParts are the parts of the previous view a new one shares.
type keepParts struct{ networks, chassis, routers bool }

// base types everything but the ports, sharing with prev what keep says
// is unchanged.
func (b *Builder) base(s *topology.Store, prev *View, keep keepParts) *View {
	v := &View{index: s.Index(), vipOwners: map[string]map[netip.Addr]string{}}
	if keep.networks {
		v.networks, v.netByKey, v.subnets = prev.networks, prev.netByKey, prev.subnets
	} else {
		v.typeNetworks(s)
	}
	if keep.chassis {
		v.chassis = prev.chassis
	} else {
		v.typeChassis(s)
	}
	if keep.routers {
		v.routers, v.rtrByKey = prev.routers, prev.rtrByKey
	} else {
		v.typeRouters(s)
	}
	s.EachVIPOwner(func(network string, ip netip.Addr, port string) {
		if v.vipOwners[network] == nil {
			v.vipOwners[network] = map[netip.Addr]string{}
		}
		v.vipOwners[network][ip] = port
	})
	return v
}

// typeNetworks types the networks and subnets.
func (v *View) typeNetworks(s *topology.Store) {
	v.networks, v.netByKey, v.subnets = map[string]Network{}, map[uint32]Network{}, map[string]Subnet{}
	s.EachNetwork(func(n topology.Network) {
		tn := Network{ID: n.ID, Key: n.Key, Type: n.NetworkType, SegmentationID: n.SegmentationID, MTU: n.MTU, AdminUp: n.AdminStateUp,
			DNSDomain:       strings.ToLower(strings.TrimSuffix(n.DNSDomain, ".")),
			PhysicalNetwork: n.PhysicalNetwork, External: n.External}
		v.networks[n.ID], v.netByKey[n.Key] = tn, tn
	})
	s.EachSubnet(func(sn topology.Subnet) {
		ts := Subnet{ID: sn.ID, NetworkID: sn.NetworkID}
		if p, err := netip.ParsePrefix(sn.CIDR); err == nil {
			ts.Prefix = p.Masked()
		}
		if sn.GatewayIP != nil {
			ts.Gateway, _ = netip.ParseAddr(*sn.GatewayIP)
		}
		ts.DHCP = sn.EnableDHCP
		for _, d := range sn.DNSNameservers {
			if ip, err := netip.ParseAddr(d); err == nil && ip.Is4() {
				ts.DNSServers = append(ts.DNSServers, ip)
			}
		}
		for _, r := range sn.HostRoutes {
			dst, err1 := netip.ParsePrefix(r.Destination)
			hop, err2 := netip.ParseAddr(r.NextHop)
			if err1 == nil && err2 == nil && dst.Addr().Is4() && hop.Is4() {
				ts.HostRoutes = append(ts.HostRoutes, Route{Dst: dst.Masked(), NextHop: hop})
			}
		}
		v.subnets[sn.ID] = ts
	})
}

// typeChassis types the chassis.
func (v *View) typeChassis(s *topology.Store) {
	v.chassis = map[string]Chassis{}
	s.EachChassis(func(c topology.Chassis) {
		tc := Chassis{Name: c.Name, Key: c.Key, Encaps: slices.Clone(c.Encaps), NodeID: c.NodeID, Connected: c.Connected,
			Bridge: c.Bridge, DatapathType: c.DatapathType, Mappings: maps.Clone(c.BridgeMappings),
			Gateway: c.Gateway, Unreachable: c.Unreachable}
		if ip, err := netip.ParseAddr(c.EncapIP); err == nil && ip.Is4() {
			tc.EncapIP = ip
		}
		if mac, err := net.ParseMAC(c.DVRMAC); err == nil && topology.IsDVRMAC(mac) {
			tc.DVRMAC = mac
		}
		tc.DatapathID, _ = strconv.ParseUint(c.DatapathID, 16, 64)
		v.chassis[c.Name] = tc
	})
}

// typeRouters types the routers.
func (v *View) typeRouters(s *topology.Store) {
	v.routers, v.rtrByKey = map[string]Router{}, map[uint32]Router{}
	s.EachRouter(func(r topology.Router) {
		tr := Router{ID: r.ID, Key: r.Key, AdminUp: r.AdminStateUp}
		v.routers[r.ID], v.rtrByKey[r.Key] = tr, tr
	})
}

// finish indexes the view's ports and types what depends on them.
func (b *Builder) finish(s *topology.Store, v, prev *View, changed []portChange) *View {
	v.buildExternal(s)
	v.buildSecurityGroups(s)
	v.index_(prev, changed)
	b.prev = v
	return v
}

// port types a store port; ok is false for a port whose MAC does not
// parse (the store never holds one) or whose network is gone.
func (v *View) port(p *topology.Port) (Port, bool) {
	mac, err := net.ParseMAC(p.MACAddress)
	n, ok := v.networks[p.NetworkID]
	if err != nil || !ok {
		return Port{}, false
	}
	tp := Port{ID: p.ID, Key: p.Key, NetworkID: p.NetworkID, NetworkKey: n.Key, MAC: mac,
		PortSecurity: p.PortSecurityEnabled, DeviceOwner: p.DeviceOwner, DeviceID: p.DeviceID, AdminUp: p.AdminStateUp,
		Chassis: p.HostID, OFPort: p.OFPort, Status: p.Status, rev: p.RevisionNumber,
		DNSName: strings.ToLower(strings.TrimSuffix(p.DNSName, ".")), DHCPOpts: p.ExtraDHCPOpts,
		SecurityGroups: slices.Clone(p.SecurityGroups)}
	for _, f := range p.FixedIPs {
		if ip, err := netip.ParseAddr(f.IPAddress); err == nil && ip.Is4() {
			tp.FixedIPs = append(tp.FixedIPs, FixedIP{SubnetID: f.SubnetID, Addr: ip})
		}
	}
	for _, ap := range p.AllowedAddressPairs {
		pm, err := net.ParseMAC(ap.MACAddress)
		if err != nil {
			pm = mac
		}
		if ip, err := netip.ParseAddr(ap.IPAddress); err == nil {
			if ip.Is4() {
				tp.Pairs = append(tp.Pairs, Pair{Prefix: netip.PrefixFrom(ip, 32), Single: true, MAC: pm})
			}
			continue
		}
		if pfx, err := netip.ParsePrefix(ap.IPAddress); err == nil && pfx.Addr().Is4() {
			tp.Pairs = append(tp.Pairs, Pair{Prefix: pfx.Masked(), MAC: pm})
		}
	}
	return tp, true
}
