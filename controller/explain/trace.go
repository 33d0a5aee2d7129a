package explain

import (
	"context"
	"fmt"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
	"github.com/wyvern-sdn/wyvern/trace"
)

// TraceRequest is /debug/trace's query.
type TraceRequest struct {
	trace.Request
	// Live also runs ofproto/trace on the switch and compares.
	Live bool
	// CTEst assumes the packet's connection is established (ct_state
	// +trk+est) instead of new.
	CTEst bool
}

// Trace is /debug/trace.
type Trace struct {
	Node        string      `json:"node"`
	Chassis     string      `json:"chassis"`
	Mode        string      `json:"mode"`
	Packet      TracePacket `json:"packet"`
	Assumptions []string    `json:"assumptions"`
	Hops        []trace.Hop `json:"hops"`
	End         trace.End   `json:"end"`
	Live        *LiveTrace  `json:"live,omitempty"`
	Text        string      `json:"text"`
}

// TracePacket is the packet traced, as the operator reads it.
type TracePacket struct {
	InPort  uint32 `json:"in_port"`
	Port    string `json:"port"`
	EthSrc  string `json:"eth_src"`
	EthDst  string `json:"eth_dst"`
	IPSrc   string `json:"ip_src"`
	IPDst   string `json:"ip_dst"`
	Proto   string `json:"proto"`
	DstPort uint16 `json:"dst_port,omitempty"`
	TTL     uint8  `json:"ttl"`
}

// TraceOf walks a packet from a port through its chassis' desired flows
// and, with Live, through the switch.
func (s *Service) TraceOf(ctx context.Context, req TraceRequest) (Trace, error) {
	if req.From == "" || req.To == "" {
		return Trace{}, fmt.Errorf("%w: from (a port) and to (an IPv4 address or a MAC) are required", trace.ErrBadRequest)
	}
	p, err := s.portChassis(req.From)
	if err != nil {
		return Trace{}, err
	}
	ex, tb, err := s.local(p.Chassis)
	if err != nil {
		return Trace{}, err
	}
	pkt, err := tb.Packet(req.Request)
	if err != nil {
		return Trace{}, err
	}
	ct := "ct_state=+trk+new: every ct() is assumed to see a connection's first packet"
	if req.CTEst {
		tb.Options.CTState = of.CTTrk | of.CTEst
		ct = "ct_state=+trk+est: every ct() is assumed to see an established connection"
	}
	proto := req.Proto
	if proto == "" {
		proto = "icmp"
	}
	out := Trace{Node: s.cfg.Node, Chassis: s.cfg.Chassis, Mode: ex.Pipeline.Mode().String(),
		Packet: TracePacket{InPort: pkt.InPort, Port: req.From, EthSrc: pkt.EthSrc.String(), EthDst: pkt.EthDst.String(),
			IPSrc: pkt.IPSrc.String(), IPDst: pkt.IPDst.String(), Proto: proto, DstPort: pkt.DstPort, TTL: 64},
		Assumptions: []string{"conntrack is not modelled: " + ct,
			fmt.Sprintf("flows: the desired flows of bridge %s computed from the view at raft index %d, cookie round %d", s.cfg.Bridge, ex.View.Index(), ex.Round)}}
	if ex.Pipeline.Mode() == pipeline.Reactive {
		out.Assumptions = append(out.Assumptions, "reactive: a punt is answered by its app as the controller would, and the walk goes on with the flows it installs (marked reactive)")
	}
	tb.Options.Names = s.names(tb)
	r := tb.Walk(pkt)
	out.Hops, out.End, out.Text = r.Hops, r.End, trace.Format(r, false)
	if req.Live {
		live, err := s.live(ctx, pkt, req, r)
		if err != nil {
			return Trace{}, err
		}
		out.Live = live
	}
	return out, nil
}
