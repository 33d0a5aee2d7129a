package view

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// index_ builds the indexes over ports and router interfaces. With a
// previous view, changed are the ports that differ from its: every
// network keeps the previous view's per-network indexes (which views
// share read only) and those with changed ports are patched, so a batch
// of changes costs its networks, not the cloud. Without one it indexes
// every port.
func (v *View) index_(prev *View, changed []portChange) {
	if prev == nil {
		v.netPorts, v.located = newShardedMap[[]*Port](), newShardedMap[[]*Port]()
		v.addrClaims, v.macClaims = newShardedMap[map[netip.Addr][]uint32](), newShardedMap[map[string][]uint32]()
		v.hosts = newShardedMap[[]string]()
		v.indexAll()
	} else {
		v.indexChanges(prev, changed)
	}
	v.ifacesByNet, v.ifacesByRtr = map[string][]RouterInterface{}, map[string][]RouterInterface{}
	for _, p := range v.routerPorts {
		v.addInterface(p)
	}
	for _, m := range []map[string][]RouterInterface{v.ifacesByNet, v.ifacesByRtr} {
		for _, is := range m {
			slices.SortFunc(is, func(a, b RouterInterface) int { return cmp.Compare(a.Port.Key, b.Port.Key) })
		}
	}
	v.indexExternal()
}

// indexAll indexes every port afresh.
func (v *View) indexAll() {
	v.routerPorts = map[string]*Port{}
	v.ports.each(func(p *Port) {
		if p.DeviceOwner == topology.OwnerRouterInterface {
			v.routerPorts[p.ID] = p
		}
		v.netPorts.set(p.NetworkID, append(v.netPorts.get(p.NetworkID), p))
		v.indexClaims(p)
		if p.Located() {
			v.located.set(p.NetworkID, append(v.located.get(p.NetworkID), p))
		}
	})
	byKey := func(a, b *Port) int { return cmp.Compare(a.Key, b.Key) }
	for id, ps := range v.netPorts.all() {
		slices.SortFunc(ps, byKey)
		slices.SortFunc(v.located.get(id), byKey)
		for _, ks := range v.addrClaims.get(id) {
			slices.Sort(ks)
		}
		for _, ks := range v.macClaims.get(id) {
			slices.Sort(ks)
		}
	}
	for id, ps := range v.located.all() {
		v.hosts.set(id, hostsOf(ps))
	}
	v.hosted = newShardedMap[[]Network]()
	v.indexHosted()
}

// indexChanges patches the previous view's indexes with the changed
// ports.
func (v *View) indexChanges(prev *View, changed []portChange) {
	v.routerPorts = prev.routerPorts
	byNet := map[string][]portChange{}
	ownRouterPorts := false
	for _, c := range changed {
		switch {
		case c.old != nil && c.new != nil && c.old.NetworkID != c.new.NetworkID:
			byNet[c.old.NetworkID] = append(byNet[c.old.NetworkID], portChange{old: c.old})
			byNet[c.new.NetworkID] = append(byNet[c.new.NetworkID], portChange{new: c.new})
		case c.new != nil:
			byNet[c.new.NetworkID] = append(byNet[c.new.NetworkID], c)
		default:
			byNet[c.old.NetworkID] = append(byNet[c.old.NetworkID], c)
		}
		wasRouter := c.old != nil && c.old.DeviceOwner == topology.OwnerRouterInterface
		isRouter := c.new != nil && c.new.DeviceOwner == topology.OwnerRouterInterface
		if !wasRouter && !isRouter {
			continue
		}
		if !ownRouterPorts {
			v.routerPorts, ownRouterPorts = maps.Clone(v.routerPorts), true
		}
		if wasRouter {
			delete(v.routerPorts, c.old.ID)
		}
		if isRouter {
			v.routerPorts[c.new.ID] = c.new
		}
	}
	// Every network keeps the previous view's indexes; a network gone
	// takes its own with it.
	same := sameNetworks(v.networks, prev.networks)
	v.netPorts, v.located = prev.netPorts.derive(), prev.located.derive()
	v.addrClaims, v.macClaims = prev.addrClaims.derive(), prev.macClaims.derive()
	v.hosts = prev.hosts.derive()
	if !same {
		for id := range prev.networks {
			if _, ok := v.networks[id]; !ok {
				v.netPorts.del(id)
				v.located.del(id)
				v.addrClaims.del(id)
				v.macClaims.del(id)
				v.hosts.del(id)
			}
		}
	}
	var moved []string // networks whose hosts changed
	for id, cs := range byNet {
		if _, ok := v.networks[id]; !ok {
			continue
		}
		v.patch(id, cs)
		if len(v.located.get(id)) == 0 {
			v.located.del(id)
		}
		if hs := hostsOf(v.located.get(id)); !slices.Equal(hs, v.hosts.get(id)) {
			if len(hs) == 0 {
				v.hosts.del(id)
			} else {
				v.hosts.set(id, hs)
			}
			moved = append(moved, id)
		}
	}
	// Who hosts what: the previous view's, unless a network came, went
	// or changed (a hosted network is a copy of its record).
	if !same {
		v.hosted = newShardedMap[[]Network]()
		v.indexHosted()
		return
	}
	v.hosted = prev.hosted.derive()
	byKey := func(a, b Network) int { return cmp.Compare(a.Key, b.Key) }
	for _, id := range moved {
		n := v.networks[id]
		was, now := prev.hosts.get(id), v.hosts.get(id)
		for _, c := range was {
			if _, ok := slices.BinarySearch(now, c); !ok {
				ns := slices.DeleteFunc(slices.Clone(v.hosted.get(c)), func(o Network) bool { return o.ID == id })
				if len(ns) == 0 {
					v.hosted.del(c)
				} else {
					v.hosted.set(c, ns)
				}
			}
		}
		for _, c := range now {
			if _, ok := slices.BinarySearch(was, c); !ok {
				ns := v.hosted.get(c)
				i, _ := slices.BinarySearchFunc(ns, n, byKey)
				v.hosted.set(c, slices.Insert(slices.Clone(ns), i, n))
			}
		}
	}
}

// sameNetworks reports whether two views hold the same networks, each
// with the same record.
func sameNetworks(a, b map[string]Network) bool {
	if len(a) != len(b) {
		return false
	}
	for id, n := range a {
		if o, ok := b[id]; !ok || o != n {
			return false
		}
	}
	return true
}

// indexHosted fills hosted from hosts: the networks of each chassis, in
// key order.
func (v *View) indexHosted() {
	for id, hs := range v.hosts.all() {
		for _, c := range hs {
			v.hosted.set(c, append(v.hosted.get(c), v.networks[id]))
		}
	}
	for _, ns := range v.hosted.all() {
		slices.SortFunc(ns, func(a, b Network) int { return cmp.Compare(a.Key, b.Key) })
	}
}

// hostsOf are the chassis of located ports, sorted, each once.
func hostsOf(ps []*Port) []string {
	var hs []string
	for _, p := range ps {
		if !slices.Contains(hs, p.Chassis) {
			hs = append(hs, p.Chassis)
		}
	}
	slices.Sort(hs)
	return hs
}

// patch moves one network's indexes, shared with the previous view, to
// its changed ports: copies of the slices and maps, with the old ports'
// entries out and the new ports' in. It costs the network's size in
// copying, not in building.
func (v *View) patch(network string, cs []portChange) {
	byKey := func(a, b *Port) int { return cmp.Compare(a.Key, b.Key) }
	ports := slices.Clone(v.netPorts.get(network))
	for _, c := range cs {
		if c.old != nil {
			if i, ok := slices.BinarySearchFunc(ports, c.old, byKey); ok {
				ports = slices.Delete(ports, i, i+1)
			}
		}
		if c.new != nil {
			i, _ := slices.BinarySearchFunc(ports, c.new, byKey)
			ports = slices.Insert(ports, i, c.new)
		}
	}
	v.netPorts.set(network, ports)
	var located []*Port
	for _, p := range ports {
		if p.Located() {
			located = append(located, p)
		}
	}
	v.located.set(network, located)
	addrs, macs := maps.Clone(v.addrClaims.get(network)), maps.Clone(v.macClaims.get(network))
	if addrs == nil {
		addrs = map[netip.Addr][]uint32{}
	}
	if macs == nil {
		macs = map[string][]uint32{}
	}
	v.addrClaims.set(network, addrs)
	v.macClaims.set(network, macs)
	for _, c := range cs {
		if c.old != nil {
			for _, a := range claimedAddrs(c.old) {
				addrs[a] = without(addrs[a], c.old.Key)
				if len(addrs[a]) == 0 {
					delete(addrs, a)
				}
			}
			for _, mac := range c.old.MACs() {
				m := string(mac)
				macs[m] = without(macs[m], c.old.Key)
				if len(macs[m]) == 0 {
					delete(macs, m)
				}
			}
		}
	}
	for _, c := range cs {
		if c.new != nil {
			for _, a := range claimedAddrs(c.new) {
				addrs[a] = with(addrs[a], c.new.Key)
			}
			for _, mac := range c.new.MACs() {
				macs[string(mac)] = with(macs[string(mac)], c.new.Key)
			}
		}
	}
}

// addInterface indexes a router interface port, if its router is up and
// the port is whole (a fixed IP in a known subnet).
func (v *View) addInterface(p *Port) {
	r, ok := v.routers[p.DeviceID]
	if !ok || !r.AdminUp || len(p.FixedIPs) == 0 {
		return
	}
	sn, ok := v.subnets[p.FixedIPs[0].SubnetID]
	if !ok || !sn.Prefix.IsValid() {
		return
	}
	ri := RouterInterface{Router: r, Port: *p, Network: v.networks[p.NetworkID], Subnet: sn.ID,
		Prefix: sn.Prefix, IP: p.FixedIPs[0].Addr, MAC: p.MAC}
	v.ifacesByNet[p.NetworkID] = append(v.ifacesByNet[p.NetworkID], ri)
	v.ifacesByRtr[r.ID] = append(v.ifacesByRtr[r.ID], ri)
}
