// Package apps puts the pure apps together: what one bridge holds in a
// forwarding mode, as the reconciler installs it and as the golden tests
// check it.
package apps

import (
	"github.com/wyvern-sdn/wyvern/arpresponder"
	"github.com/wyvern-sdn/wyvern/dvr"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/l2pop"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
	"github.com/wyvern-sdn/wyvern/tunnels"
)

// Flows returns every app's flows for one bridge (the table-miss flows of
// the base pipeline aside). Proactive mode gets them all. Reactive mode
// leaves out the flows that serve one destination — they come from punts,
// on demand — and instead gives each local port its metered punt flows.
func Flows(v *topology.View, br topology.Bridge, mode pipeline.Mode) []of.Flow {
	flows := tunnels.Flows(v, br)
	flows = append(flows, l2pop.Flows(v, br)...)
	flows = append(flows, arpresponder.Flows(v, br)...)
	flows = append(flows, dvr.Flows(v, br)...)
	if mode != pipeline.Reactive {
		return flows
	}
	out := flows[:0]
	for _, f := range flows {
		if !PerDestination(f) {
			out = append(out, f)
		}
	}
	for _, p := range v.LocalPorts(br.Chassis) {
		out = append(out, pipeline.PortPuntFlows(mode, p.Key)...)
	}
	return out
}

// PerDestination reports whether a flow is one reactive mode installs on
// demand, for one destination.
func PerDestination(f of.Flow) bool {
	return l2pop.PerDestination(f) || arpresponder.PerDestination(f) || dvr.PerDestination(f)
}
