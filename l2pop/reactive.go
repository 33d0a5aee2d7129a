package l2pop

import (
	"net"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/pipeline"
	"github.com/wyvern-sdn/wyvern/tunnels"
)

// PerDestination reports whether a flow serves one destination port (a
// known MAC in L2Lookup, a port's Egress) — the flows reactive mode
// installs on demand instead of up front.
func PerDestination(f pipeline.Flow) bool {
	kind := f.Cookie.Kind()
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
// the proactive mode would install for that port, so reactive ⊆ proactive
// by construction. Empty when no located port of the network has dst.
func OnMiss(v *topology.View, br topology.Bridge, network uint32, dst net.HardwareAddr) []pipeline.Flow {
	n, ok := v.NetworkByKey(network)
	if !ok {
		return nil
	}
	var port topology.Port
	found := false
	for _, st := range stations(v, n.ID) {
		if st.mac.String() == dst.String() {
			port, found = st.port, true
			break
		}
	}
	if !found {
		return nil
	}
	obj := pipeline.PortObject(port.Key)
	var out []pipeline.Flow
	for _, f := range append(Flows(v, br), tunnels.Flows(v, br)...) {
		if PerDestination(f) && f.Cookie.Object() == obj {
			out = append(out, f)
		}
	}
	return out
}
