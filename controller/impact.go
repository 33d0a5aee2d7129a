package controller

import "github.com/wyvern-sdn/wyvern/internal/topology"

// affectedChassis returns the chassis whose bridges a batch of committed
// changes can alter, comparing the views before and after it:
//
//   - a port: every chassis hosting its network before or after (its MAC
//     and location are in their L2 flows), which includes the chassis it
//     left and the one it arrived at;
//   - a network: every chassis hosting it, before or after, and every
//     chassis routing to it (its MTU is in the routers' MTU checks);
//   - a chassis: itself, every chassis sharing a network with it (its
//     encapsulation address is in their tunnel flows) and every chassis
//     routing to its networks;
//   - a router (its interfaces, its state): every chassis hosting one of
//     its networks, before or after.
//
// A port's routes live on every chassis hosting a network of a router
// on the port's network, so those chassis count for a port too. Subnets
// and members change no flow. Everything else on a 100-chassis cloud is
// left alone.
func affectedChassis(before, after *topology.View, changes []topology.Change) map[string]bool {
	out := map[string]bool{}
	hostsOf := func(network string) {
		for _, v := range []*topology.View{before, after} {
			for _, c := range v.NetworkHosts(network) {
				out[c] = true
			}
		}
	}
	routerHosts := func(router string) {
		for _, v := range []*topology.View{before, after} {
			for _, ri := range v.RouterInterfaces(router) {
				hostsOf(ri.Network.ID)
			}
		}
	}
	for _, ch := range changes {
		switch ch.Resource {
		case "port", "vip": // a VIP's owner changes its answer on every host
			for _, v := range []*topology.View{before, after} {
				if p, ok := v.LocatedPort(ch.ID); ok {
					hostsOf(p.NetworkID)
					for _, ri := range v.NetworkInterfaces(p.NetworkID) {
						routerHosts(ri.Router.ID)
					}
				}
			}
		case "router":
			routerHosts(ch.ID)
		case "network": // its MTU is in its routers' checks everywhere they route
			hostsOf(ch.ID)
			for _, v := range []*topology.View{before, after} {
				for _, ri := range v.NetworkInterfaces(ch.ID) {
					routerHosts(ri.Router.ID)
				}
			}
		case "chassis":
			out[ch.ID] = true
			for _, v := range []*topology.View{before, after} {
				for _, n := range v.HostedNetworks(ch.ID) {
					hostsOf(n.ID)
					for _, ri := range v.NetworkInterfaces(n.ID) {
						routerHosts(ri.Router.ID) // they route into its tunnels
					}
				}
			}
		}
	}
	return out
}
