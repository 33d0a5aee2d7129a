package bridge

import (
	"context"
	"fmt"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Debug is GET /debug/punts: the node's punt counters and, per bridge,
// what each source punted, what the controller's fair queue dropped, what
// each punt meter dropped in the datapath, and the flows the switch
// refused.
func (m *Manager) Debug(ctx context.Context, node string, v *view.View, switches []*ofctl.Switch) map[string]any {
	out := map[string]any{"node": node}
	for k, c := range m.stats.Counters() {
		out[k] = c
	}
	portID := func(key uint64) string {
		if v == nil {
			return ""
		}
		if p, ok := v.PortByKey(uint32(key)); ok {
			return p.ID
		}
		return ""
	}
	list := []map[string]any{}
	for _, sw := range switches {
		st := sw.Stats()
		sources := []map[string]any{}
		for _, src := range sw.PuntSources() {
			e := map[string]any{"received": src.Received, "dropped": src.Dropped}
			if src.Source>>32 == 0 {
				e["port_key"], e["port_id"] = src.Source, portID(src.Source)
			} else {
				e["in_port"] = uint32(src.Source)
			}
			sources = append(sources, e)
		}
		meters := []map[string]any{}
		mctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		stats, err := sw.MeterStats(mctx)
		cancel()
		for _, ms := range stats {
			e := map[string]any{"meter_id": ms.ID, "packets": ms.Packets, "dropped": ms.Dropped}
			switch ms.ID {
			case pipeline.MeterFromRemotes:
				e["serves"] = "punts of packets from other chassis (tunnels, physical networks)"
			case pipeline.MeterAnnouncements:
				e["serves"] = "VIP announcements"
			case pipeline.MeterICMPErrors:
				e["serves"] = "routed packets answered with an ICMP error"
			case pipeline.MeterNeighbours:
				e["serves"] = "ARP of routers' next hops on physical networks"
			default:
				e["serves"], e["port_id"] = "port", portID(uint64(ms.ID))
			}
			meters = append(meters, e)
		}
		entry := map[string]any{"dpid": fmt.Sprintf("%016x", sw.DPID()),
			"punts_received": st.PuntsReceived.Load(), "punts_dropped": st.PuntsDropped.Load(),
			"punts_malformed": st.PuntsMalformed.Load(), "handler_panics": st.HandlerPanics.Load(),
			"sources": sources, "meters": meters, "rejected_flows": m.Rejected(sw.DPID())}
		if err != nil {
			entry["meters_error"] = err.Error()
		}
		list = append(list, entry)
	}
	out["switches"] = list
	return out
}
