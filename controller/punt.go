package controller

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/arpresponder"
	"github.com/wyvern-sdn/wyvern/dvr"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/l2pop"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// PuntStats count what the punt handler did.
type PuntStats struct {
	Received   atomic.Uint64
	Answered   atomic.Uint64 // flows installed for the destination, packet re-injected
	Flooded    atomic.Uint64 // unknown destination, packet re-injected into Flood
	Malformed  atomic.Uint64 // could not be decoded; dropped
	Unanswered atomic.Uint64 // no app answers this table (yet); dropped
	Learned    atomic.Uint64 // VIP holders learned from gratuitous ARPs
	Unroutable atomic.Uint64 // sent to a router for an address none of its subnets' ports holds; dropped
	TTLExpired atomic.Uint64 // routed packets whose TTL ran out
	ICMPSent   atomic.Uint64 // ICMP time exceeded answers sent for them
	TooBig     atomic.Uint64 // routed packets larger than the MTU of the network they were routed to
	FragSent   atomic.Uint64 // ICMP fragmentation needed answers sent for them
}

// puntMeter is the band of a punt-path meter: a port's own, or a shared
// one.
func (n *Node) puntMeter(id uint32) ofctl.Meter {
	if id == pipeline.MeterFromTunnels {
		// Packets from tunnels were metered at their source chassis
		// already; this meter serves every remote port at once.
		return ofctl.Meter{ID: id, Rate: 10 * n.cfg.PuntRate, Burst: 10 * n.cfg.PuntBurst}
	}
	return ofctl.Meter{ID: id, Rate: n.cfg.PuntRate, Burst: n.cfg.PuntBurst}
}

// puntSource keys the controller's fair punt queue: the logical port a
// punt came from (reg6), or, for a packet with none (from a tunnel), its
// ingress port with bit 32 set.
func puntSource(pi ofctl.PacketIn) uint64 {
	if src, ok := pi.Match.Get(of.FieldReg6); ok && src.Value != 0 {
		return src.Value
	}
	return 1<<32 | uint64(pi.InPort())
}

// pipelineFields keeps the fields of a punt's match that a packet-out may
// carry back into the pipeline: metadata, registers and tunnel metadata.
func pipelineFields(m of.Match) of.Match {
	var out of.Match
	for _, c := range m.Conds() {
		switch c.Field {
		case of.FieldMetadata, of.FieldTunID, of.FieldTunSrc, of.FieldTunDst,
			of.FieldReg0, of.FieldReg1, of.FieldReg2, of.FieldReg3,
			of.FieldReg4, of.FieldReg5, of.FieldReg6, of.FieldReg7:
			out = out.WithMasked(c.Field, c.Value, c.Mask)
		}
	}
	return out
}

// handlePunt answers a packet that missed a lookup: it installs, with an
// idle timeout and the bridge's current cookie round, the flows the
// proactive mode would have for its destination, in one bundle, and then
// re-injects the packet where it left the pipeline, so the first packet is
// not lost (OVS does not buffer punts). An unknown L2 destination is
// flooded as l2pop says, installing nothing; an unknown routed destination
// is dropped and counted. A routed packet whose TTL ran out, or too big
// for the network it is routed to, is answered with an ICMP error.
func (n *Node) handlePunt(ctx context.Context, sw *ofctl.Switch, pi ofctl.PacketIn) {
	n.puntStats.Received.Add(1)
	if isVIPAnnouncement(pi) {
		n.learnVIP(ctx, pi)
		return // the learning flow already sent the announcement on
	}
	l2, arp, l3 := pipeline.Table(pipeline.L2Lookup), pipeline.Table(pipeline.ARPResponder), pipeline.Table(pipeline.L3Lookup)
	if pi.Table == l3 && pipeline.Cookie(pi.Cookie).App() == pipeline.AppDVR {
		n.answerICMPError(ctx, sw, pi)
		return
	}
	if n.cfg.Mode != pipeline.Reactive || n.local == nil || (pi.Table != l2 && pi.Table != arp && pi.Table != l3) {
		n.puntStats.Unanswered.Add(1)
		return
	}
	br, dpid, ok := n.local.bridge()
	if !ok || dpid != sw.DPID() {
		n.puntStats.Unanswered.Add(1)
		return
	}
	pkt, err := of.ParsePacket(pi.Data)
	if err != nil {
		n.puntStats.Malformed.Add(1)
		return
	}
	network, _ := pi.Match.Get(of.FieldMetadata)
	v := n.view()
	var flows []of.Flow
	var next, otherwise uint8
	switch pi.Table {
	case arp:
		if pkt.EthType != of.EthTypeARP || pkt.ARPOp != of.ARPRequest {
			n.puntStats.Malformed.Add(1)
			return
		}
		// Known address: the new flow answers the re-injected request.
		// Unknown: on to L2Lookup, which floods the broadcast.
		flows = arpresponder.OnMiss(v, br, uint32(network.Value), pkt.ARPTPA)
		next, otherwise = arp, l2
	case l3:
		router, _ := pi.Match.Get(of.FieldReg5)
		if pkt.EthType == of.EthTypeIPv4 {
			flows = dvr.OnMiss(v, br, uint32(router.Value), pkt.IPDst)
		}
		if len(flows) == 0 { // a router has nowhere to flood to
			n.puntStats.Unroutable.Add(1)
			if ce := n.log.Check(zap.DebugLevel, "unroutable"); ce != nil {
				ce.Write(zap.Uint64("router", router.Value), zap.Uint16("eth-type", pkt.EthType), zap.Stringer("ip-dst", pkt.IPDst))
			}
			return
		}
		next = l3
	default:
		flows = l2pop.OnMiss(v, br, uint32(network.Value), pkt.EthDst)
		next, otherwise = l2, pipeline.Table(pipeline.Flood)
	}
	if len(flows) == 0 {
		next = otherwise
		n.puntStats.Flooded.Add(1)
	} else {
		round, _ := n.reconciler.Round(dpid)
		mods := make([]of.FlowMod, len(flows))
		for i, f := range flows {
			f = pipeline.WithRound(f, round)
			f.IdleTimeout = n.cfg.IdleTimeout
			mods[i] = of.FlowMod{Command: of.FlowAdd, Flow: f}
		}
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := sw.Bundle(bctx, mods)
		cancel()
		if err != nil {
			n.log.Warn("could not install reactive flows", zap.Error(err))
			return
		}
		n.puntStats.Answered.Add(1)
	}
	if ce := n.log.Check(zap.DebugLevel, "punt answered"); ce != nil {
		ce.Write(zap.Uint8("table", pi.Table), zap.Uint32("in-port", pi.InPort()), zap.Uint64("network", network.Value),
			zap.Stringer("eth-dst", pkt.EthDst), zap.Stringer("eth-src", pkt.EthSrc), zap.Uint16("eth-type", pkt.EthType),
			zap.Int("flows", len(flows)), zap.Uint8("resubmit", next))
	}
	err = sw.PacketOut(ctx, ofctl.PacketOut{InPort: pi.InPort(), Match: pipelineFields(pi.Match),
		Actions: []of.Action{of.Resubmit{Table: next}}, Data: pi.Data})
	if err != nil {
		n.log.Debug("re-injecting a punted packet failed", zap.Error(err))
	}
}

// answerICMPError answers a routed packet the router cannot forward —
// its TTL ran out, or it is larger than the MTU of the network it is
// routed to (L3Lookup's MTU check set PktLarger) — with ICMP time exceeded
// or fragmentation needed, from the router's gateway address on the
// sender's subnet, back out the port it came in on. Routing happens only
// on the sender's chassis, so that port is the sender's.
func (n *Node) answerICMPError(ctx context.Context, sw *ofctl.Switch, pi ofctl.PacketIn) {
	router, _ := pi.Match.Get(of.FieldReg5)
	network, _ := pi.Match.Get(of.FieldMetadata)
	flags, _ := pi.Match.Get(of.FieldReg0)
	build, counted, sent := dvr.TimeExceeded, &n.puntStats.TTLExpired, &n.puntStats.ICMPSent
	if flags.Value&pipeline.PktLarger.Mask() != 0 {
		build, counted, sent = dvr.FragmentationNeeded, &n.puntStats.TooBig, &n.puntStats.FragSent
	}
	counted.Add(1)
	reply, err := build(n.view(), uint32(router.Value), uint32(network.Value), pi.Data)
	if err != nil {
		n.log.Debug("no ICMP error sent", zap.Uint64("router", router.Value), zap.Error(err))
		return
	}
	err = sw.PacketOut(ctx, ofctl.PacketOut{InPort: of.PortController,
		Actions: []of.Action{of.Output{Port: pi.InPort()}}, Data: reply})
	if err != nil {
		n.log.Debug("sending an ICMP error failed", zap.Error(err))
		return
	}
	sent.Add(1)
}

// puntCounters answers GET /debug/punts: this node's punt handling, and
// per bridge what each source punted, what the controller's fair queue
// dropped, and what each punt meter dropped in the datapath.
func (n *Node) puntCounters(w http.ResponseWriter, r *http.Request) {
	s := &n.puntStats
	out := map[string]any{"node": n.cfg.NodeID, "received": s.Received.Load(), "answered": s.Answered.Load(),
		"flooded": s.Flooded.Load(), "malformed": s.Malformed.Load(), "unanswered": s.Unanswered.Load(), "vips_learned": s.Learned.Load(),
		"unroutable": s.Unroutable.Load(), "ttl_expired": s.TTLExpired.Load(), "icmp_time_exceeded_sent": s.ICMPSent.Load(),
		"too_big": s.TooBig.Load(), "icmp_frag_needed_sent": s.FragSent.Load(),
		"tunnel_probes": n.underlayProbes.Load()}
	v := n.view()
	portID := func(key uint64) string {
		if p, ok := v.LocatedPortByKey(uint32(key)); ok {
			return p.ID
		}
		return ""
	}
	switches := []map[string]any{}
	for _, sw := range n.openflow.Switches() {
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
		mctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		stats, err := sw.MeterStats(mctx)
		cancel()
		for _, m := range stats {
			e := map[string]any{"meter_id": m.ID, "packets": m.Packets, "dropped": m.Dropped}
			switch m.ID {
			case pipeline.MeterFromTunnels:
				e["serves"] = "punts from tunnels"
			case pipeline.MeterAnnouncements:
				e["serves"] = "VIP announcements"
			case pipeline.MeterICMPErrors:
				e["serves"] = "routed packets answered with an ICMP error"
			default:
				e["serves"], e["port_id"] = "port", portID(uint64(m.ID))
			}
			meters = append(meters, e)
		}
		entry := map[string]any{"dpid": fmt.Sprintf("%016x", sw.DPID()),
			"punts_received": st.PuntsReceived.Load(), "punts_dropped": st.PuntsDropped.Load(),
			"punts_malformed": st.PuntsMalformed.Load(), "handler_panics": st.HandlerPanics.Load(),
			"sources": sources, "meters": meters}
		if err != nil {
			entry["meters_error"] = err.Error()
		}
		switches = append(switches, entry)
	}
	out["switches"] = switches
	writeJSON(w, http.StatusOK, out)
}

// isVIPAnnouncement reports whether a punt came from a VIP learning flow.
// Standard OpenFlow 1.5 packet-ins do not carry the flow's userdata, but
// they do carry its cookie: a learning flow is arpresponder's, while
// lookups that found nothing punt through the pipeline's per-port or
// table-miss flows. The frame must be a gratuitous ARP (sender address
// equal to target address).
func isVIPAnnouncement(pi ofctl.PacketIn) bool {
	if pi.Table != pipeline.Table(pipeline.ARPResponder) || pi.Reason != ofctl.ReasonAction ||
		pipeline.Cookie(pi.Cookie).App() != pipeline.AppARPResponder {
		return false
	}
	pkt, err := of.ParsePacket(pi.Data)
	return err == nil && pkt.EthType == of.EthTypeARP && pkt.ARPOp == of.ARPRequest && pkt.ARPSPA == pkt.ARPTPA
}

// learnVIP records the sender of a gratuitous ARP for a shared address as
// its holder, if it is not already.
func (n *Node) learnVIP(ctx context.Context, pi ofctl.PacketIn) {
	pkt, err := of.ParsePacket(pi.Data)
	if err != nil {
		n.puntStats.Malformed.Add(1)
		return
	}
	src, _ := pi.Match.Get(of.FieldReg6)
	var port topology.Port
	var ok, already bool
	n.fsm.Read(func(s *topology.Store) {
		v := n.viewOf(s)
		if port, ok = v.LocatedPortByKey(uint32(src.Value)); ok {
			id, held := v.VIPOwner(port.NetworkID, pkt.ARPSPA)
			already = held && id == port.ID
		}
	})
	if !ok || already {
		return
	}
	err = n.callAPI(ctx, http.MethodPut, "/v2.0/ports/"+port.ID+"/vip", map[string]any{"ip_address": pkt.ARPSPA.String()})
	if err != nil {
		n.log.Warn("recording a VIP holder failed", zap.String("port", port.ID), zap.Stringer("vip", pkt.ARPSPA), zap.Error(err))
		return
	}
	n.puntStats.Learned.Add(1)
	n.log.Info("VIP moved", zap.String("port", port.ID), zap.Stringer("vip", pkt.ARPSPA))
}
