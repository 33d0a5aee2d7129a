package l2pop

import (
	"net"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
	"github.com/wyvern-sdn/wyvern/tunnels"
)

// PerDestination reports whether a flow serves one destination port (a
// known MAC in L2Lookup, a port's Egress) — the flows reactive mode
// installs on demand instead of up front.
func PerDestination(f of.Flow) bool {
	kind := pipeline.Cookie(f.Cookie).Kind()
	switch f.Table {
	case pipeline.Table(pipeline.L2Lookup):
		return kind == pipeline.KindPort
	case pipeline.Table(pipeline.Egress):
		return true
	}
	return false
}

// OnMiss returns the flows that serve a packet that missed L2Lookup in
// network (a network key) towards dst: exactly the per-destination flows
// the proactive mode would install for that port — the L2Lookup flow of
// each of its MACs and its Egress flow, built by the same functions — so
// reactive ⊆ proactive by construction. Empty when no located port of the
// network has dst, or the network is not hosted here. It costs the ports
// of one network, not the bridge's whole flow set.
func OnMiss(v *topology.View, br topology.Bridge, network uint32, dst net.HardwareAddr) []of.Flow {
	n, ok := v.NetworkByKey(network)
	if !ok || !v.Hosts(br.Chassis, n.ID) {
		return nil
	}
	own := stationsOf(v, n.ID, dst)
	if len(own) == 0 {
		return nil
	}
	port := *own[0].port
	var out []of.Flow
	for _, st := range own {
		out = append(out, lookup(n, st))
	}
	if f, ok := tunnels.Egress(v, br, n, port); ok {
		out = append(out, f)
	}
	return out
}
