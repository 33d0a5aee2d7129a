package apps

import (
	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
)

// Concerns reports whether a batch of changes may change any flow of a
// chassis' bridge. It answers no only for what no app's flows there can
// see: plain ports (no security group, no owner, no floating IP) of
// networks the chassis serves neither before nor after the batch, nor
// reaches through a router, and plugged elsewhere. Any other change
// concerns every chassis. With 1,000 chassis, a bind then costs the
// dozen bridges that host its network, not every bridge a node masters.
func Concerns(before, after *view.View, chassis string, changes []topology.Change) bool {
	for _, c := range changes {
		if c.Resource != topology.ResourcePort {
			return true
		}
	}
	// Each port as app.Ports would take it, without building the list: a
	// bulk create names a thousand ports, and each bridge asks.
	networks := map[string]bool{}
	// every notes a side's network and reports whether the port concerns
	// every chassis (or is this one's) whatever its network.
	every := func(v *view.View, p view.Port) bool {
		networks[p.NetworkID] = true
		return p.Chassis == chassis || len(p.SecurityGroups) > 0 || p.DeviceOwner != "" || hasFloatingIP(v, p.ID)
	}
	for _, c := range changes {
		b, inBefore := before.Port(c.ID)
		a, inAfter := after.Port(c.ID)
		if inBefore && inAfter && !app.FlowsSee(b, a) {
			continue
		}
		if inBefore && every(before, b) || inAfter && every(after, a) {
			return true
		}
	}
	for n := range networks {
		for _, v := range []*view.View{before, after} {
			if serves(v, chassis, n) {
				return true
			}
			// Routed to from the networks of the routers on it.
			for _, ri := range v.NetworkInterfaces(n) {
				for _, leg := range v.RouterInterfaces(ri.Router.ID) {
					if serves(v, chassis, leg.Network.ID) {
						return true
					}
				}
			}
		}
	}
	return false
}

// serves reports whether a chassis hosts or serves a network.
func serves(v *view.View, chassis, network string) bool {
	if v.Hosts(chassis, network) {
		return true
	}
	for _, n := range v.ServedNetworks(chassis) {
		if n.ID == network {
			return true
		}
	}
	return false
}

// hasFloatingIP reports whether a floating IP or one of its port
// forwardings names the port.
func hasFloatingIP(v *view.View, port string) bool {
	for _, f := range v.FloatingIPs() {
		if f.Port.ID == port {
			return true
		}
		for _, fw := range f.Forwardings {
			if fw.Port.ID == port {
				return true
			}
		}
	}
	return false
}
