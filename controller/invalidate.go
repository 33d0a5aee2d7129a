package controller

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// invalidate deletes, on the local bridge, the reactive flows a batch of
// committed changes made stale: the next packet they would have served
// punts and is answered from the new topology.
func (n *Node) invalidate(ctx context.Context, before, after *topology.View, changes []topology.Change) {
	if n.cfg.Mode != pipeline.Reactive {
		return
	}
	_, sw, ok := n.localSwitch()
	if !ok {
		return
	}
	mods := invalidations(before, after, changes)
	if len(mods) == 0 {
		return
	}
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := sw.FlowMods(fctx, mods); err != nil {
		n.log.Warn("invalidating reactive flows failed", zap.Error(err))
	}
}

// Cookie masks of reactive flow deletes: one object's flows of one app;
// or every flow of one app serving some port, narrowed by a match. Both
// reach only per-destination flows, never the reconciler's.
const (
	byObject = pipeline.AppMask | pipeline.ObjectMask
	byKind   = pipeline.AppMask | pipeline.KindMask
)

// invalidations are the deletes of reactive flows that changes make
// stale, comparing the views before and after them:
//
//   - a port whose location, MAC, network or addresses changed: every
//     reactive flow for it (L2Lookup, Egress, its ARP answers, routes to
//     it), and, by address and by MAC, the ARP answers, routes and
//     L2Lookup flows for each address and MAC it had or has — whoever they
//     named (an address or MAC shared or given up changes hands);
//   - a VIP changing hands: the same for the ports involved;
//   - a router whose interfaces or state changed: its routes (by its key
//     in reg5) and the answers for its gateways;
//   - a chassis whose tunnel endpoint changed: the Egress flows and routes
//     that tunnel to its ports.
func invalidations(before, after *topology.View, changes []topology.Change) []of.FlowMod {
	var mods []of.FlowMod
	ports := map[uint32]bool{}
	addrs := map[[2]uint64]bool{} // network key, address
	dropPort := func(p topology.Port, all bool) {
		if p.Key == 0 || ports[p.Key] {
			return
		}
		ports[p.Key] = true
		obj := pipeline.PortObject(p.Key)
		del := func(table string, app pipeline.App) {
			mods = append(mods, of.FlowMod{Command: of.FlowDelete, CookieMask: byObject,
				Flow: of.Flow{Table: pipeline.Table(table), Cookie: pipeline.NewCookie(0, app, obj)}})
		}
		del(pipeline.ARPResponder, pipeline.AppARPResponder)
		del(pipeline.L3Lookup, pipeline.AppDVR)
		if all {
			del(pipeline.L2Lookup, pipeline.AppL2Pop)
			del(pipeline.Egress, pipeline.AppTunnels)
		}
	}
	macs := map[[2]uint64]bool{} // network key, MAC
	dropAddresses := func(v *topology.View, p topology.Port) {
		n, ok := v.Network(p.NetworkID)
		if !ok {
			return
		}
		for _, ip := range addresses(p) {
			k := [2]uint64{uint64(n.Key), of.IPv4Value(ip)}
			if !addrs[k] {
				addrs[k] = true
				mods = append(mods, addressInvalidation(n.Key, ip)...)
			}
		}
		// A MAC changing hands (a pair's MAC now shared, a port's own MAC
		// some pair held): what switched it to its old holder goes.
		for _, m := range macsOf(p) {
			k := [2]uint64{uint64(n.Key), of.MACValue(m)}
			if macs[k] {
				continue
			}
			macs[k] = true
			mods = append(mods, of.FlowMod{Command: of.FlowDelete, CookieMask: byKind,
				Flow: of.Flow{Table: pipeline.Table(pipeline.L2Lookup),
					Cookie: pipeline.NewCookie(0, pipeline.AppL2Pop, pipeline.PortObject(0)),
					Match:  of.Match{}.Reg(pipeline.NetworkKey, uint64(n.Key)).EthDst(m)}})
		}
	}
	for _, ch := range changes {
		switch ch.Resource {
		case "router":
			mods = append(mods, routerInvalidation(ch.ID, before, after)...)
		case "vip": // the answer for a VIP changed hands
			for _, v := range []*topology.View{before, after} {
				if p, ok := v.LocatedPort(ch.ID); ok {
					dropPort(p, false)
					dropAddresses(v, p)
				}
			}
		case "chassis":
			b, _ := before.Chassis(ch.ID)
			a, _ := after.Chassis(ch.ID)
			if b.EncapIP == a.EncapIP && slices.Equal(b.Encaps, a.Encaps) {
				continue
			}
			for _, v := range []*topology.View{before, after} {
				for _, p := range v.LocalPorts(ch.ID) {
					dropPort(p, true)
				}
			}
		case "port":
			b, inBefore := before.LocatedPort(ch.ID)
			a, inAfter := after.LocatedPort(ch.ID)
			if inBefore && inAfter && b.HostID == a.HostID && b.OFPort == a.OFPort && b.MACAddress == a.MACAddress &&
				b.NetworkID == a.NetworkID && fmt.Sprint(b.FixedIPs, b.AllowedAddressPairs) == fmt.Sprint(a.FixedIPs, a.AllowedAddressPairs) {
				continue // status or names only
			}
			if inBefore {
				dropPort(b, true)
				dropAddresses(before, b)
			}
			if inAfter {
				dropPort(a, true)
				dropAddresses(after, a)
			}
		}
	}
	return mods
}

// addressInvalidation deletes the reactive flows naming whoever held an
// address of a network: its ARP answers and the routes to it.
func addressInvalidation(network uint32, ip netip.Addr) []of.FlowMod {
	return []of.FlowMod{
		{Command: of.FlowDelete, CookieMask: byKind,
			Flow: of.Flow{Table: pipeline.Table(pipeline.ARPResponder),
				Cookie: pipeline.NewCookie(0, pipeline.AppARPResponder, pipeline.PortObject(0)),
				Match:  of.Match{}.Reg(pipeline.NetworkKey, uint64(network)).EthType(of.EthTypeARP).ARPTPA(ip)}},
		{Command: of.FlowDelete, CookieMask: byKind,
			Flow: of.Flow{Table: pipeline.Table(pipeline.L3Lookup),
				Cookie: pipeline.NewCookie(0, pipeline.AppDVR, pipeline.PortObject(0)),
				Match:  of.Match{}.EthType(of.EthTypeIPv4).IPv4Dst(netip.PrefixFrom(ip, 32))}},
	}
}

// macsOf are a port's own MAC and its pairs' MACs.
func macsOf(p topology.Port) []net.HardwareAddr {
	var out []net.HardwareAddr
	if m, err := net.ParseMAC(p.MACAddress); err == nil {
		out = append(out, m)
	}
	for _, ap := range p.AllowedAddressPairs {
		if m, err := net.ParseMAC(ap.MACAddress); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// addresses are a port's single IPv4 addresses: fixed IPs and
// single-address allowed pairs.
func addresses(p topology.Port) []netip.Addr {
	var out []netip.Addr
	for _, f := range p.FixedIPs {
		if ip, err := netip.ParseAddr(f.IPAddress); err == nil && ip.Is4() {
			out = append(out, ip)
		}
	}
	for _, ap := range p.AllowedAddressPairs {
		if ip, err := netip.ParseAddr(ap.IPAddress); err == nil && ip.Is4() {
			out = append(out, ip)
		}
	}
	return out
}

// routerInvalidation deletes a router's reactive flows when its
// interfaces or state changed (a rename changes no flow): its routes (the
// L3Lookup flows matching its key that serve a destination port) and
// whatever answered for its gateway addresses (it, or a port's pair while
// it was away), before and after the change.
func routerInvalidation(id string, before, after *topology.View) []of.FlowMod {
	rb, inBefore := before.Router(id)
	ra, inAfter := after.Router(id)
	legs := func(v *topology.View) string {
		var s []string
		for _, ri := range v.RouterInterfaces(id) {
			s = append(s, fmt.Sprint(ri.Port.ID, ri.IP, ri.MAC, ri.Network.Key))
		}
		return fmt.Sprint(s)
	}
	if inBefore && inAfter && rb.AdminStateUp == ra.AdminStateUp && legs(before) == legs(after) {
		return nil
	}
	var mods []of.FlowMod
	routers, ifaces := map[uint32]bool{}, map[uint32]bool{}
	for _, v := range []*topology.View{before, after} {
		r, ok := v.Router(id)
		if ok && !routers[r.Key] {
			routers[r.Key] = true
			mods = append(mods, of.FlowMod{Command: of.FlowDelete, CookieMask: byKind,
				Flow: of.Flow{Table: pipeline.Table(pipeline.L3Lookup), Cookie: pipeline.NewCookie(0, pipeline.AppDVR, pipeline.PortObject(0)),
					Match: of.Match{}.Reg(pipeline.RouterKey, uint64(r.Key))}})
		}
		for _, ri := range v.RouterInterfaces(id) {
			if !ifaces[ri.Port.Key] {
				ifaces[ri.Port.Key] = true
				// By address: a port's pair may have held the gateway
				// while the router was away.
				mods = append(mods, addressInvalidation(ri.Network.Key, ri.IP)...)
			}
		}
	}
	return mods
}
