package bridge

import (
	"context"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Punts held for their destination: a binding not yet known, answered
// when a view brings it, or dropped when they expire.

// heldPunt waits for its destination's binding.
type heldPunt struct {
	req   *puntRequest
	dst   heldFor
	until time.Time
}

// heldFor is the destination a punt waits for: the reason, the network
// and router it was in, and the frame's destination MAC and address —
// all an answer to a held punt depends on, but for what it sends back.
type heldFor struct {
	reason          pipeline.PuntReason
	network, router uint64
	mac             string
	ip              netip.Addr
}

func destinationOf(p app.Punt) heldFor {
	ip := p.Packet.IPDst
	if p.Packet.ARPTPA.IsValid() {
		ip = p.Packet.ARPTPA
	}
	return heldFor{reason: p.Reason, network: p.Reg(pipeline.NetworkKey), router: p.Reg(pipeline.RouterKey),
		mac: string(p.Packet.EthDst), ip: ip}
}

// heldAnswers are the held punts a new view answers, and the adds of
// their flows, which go in the bundle that brings the view to the bridge.
type heldAnswers struct {
	ready []*puntRequest
	keep  []heldPunt // still waiting
	mods  []of.FlowMod
	outs  []ofctl.PacketOut // the ready ones' packet-outs, sent behind the bundle
}

// answerHeld asks again, from the bridge's view, about every punt waiting
// for a binding; it computes one answer per destination, and installs
// each flow once however many punts wait for it. Nothing leaves the hold
// until deliverHeld.
func (l *loop) answerHeld() heldAnswers {
	var out heldAnswers
	if len(l.held) == 0 || l.local == nil {
		return out
	}
	sent := map[of.FlowKey]of.Flow{}
	answers := map[heldFor]app.Answer{} // one answer per destination and view
	for _, h := range l.held {
		a, ok := answers[h.dst]
		if !ok || len(a.Send) > 0 || a.Claim != nil || a.Learn != nil {
			a = l.m.pipeline.OnPunt(l.eff, l.local.Bridge, h.req.punt)
			answers[h.dst] = a
		}
		if a.Outcome == app.Held {
			out.keep = append(out.keep, h)
			continue
		}
		h.req.view, h.req.answer = l.eff, a
		out.ready = append(out.ready, h.req)
		out.mods = append(out.mods, l.onDemand(a.Flows, sent)...)
		out.outs = l.appendPacketOuts(out.outs, h.req)
	}
	return out
}

// deliveredHeld finishes the answered held punts, whose flows are in and
// whose packet-outs went behind them.
func (l *loop) deliveredHeld(h heldAnswers) {
	if len(h.ready) == 0 {
		return
	}
	for _, req := range h.ready {
		l.m.stats.HeldDone.Add(1)
		l.m.stats.count(req.answer.Outcome)
		l.delivered(req)
	}
	l.held = h.keep
}

// retryHeld answers held punts in a bundle of their own (after a replay,
// which brings no view change through sync).
func (l *loop) retryHeld(ctx context.Context) {
	h := l.answerHeld()
	if len(h.ready) == 0 {
		return
	}
	if err := l.sw.Apply(ctx, nil, h.mods, h.outs...); err != nil {
		l.log.Warn("could not install reactive flows", zap.Error(err))
		return
	}
	l.deliveredHeld(h)
}

// expireHeld drops the held punts whose time is up.
func (l *loop) expireHeld() {
	now := time.Now()
	keep := l.held[:0]
	for _, h := range l.held {
		if now.Before(h.until) {
			keep = append(keep, h)
			continue
		}
		l.m.stats.HeldLost.Add(1)
	}
	l.held = keep
}

func (l *loop) dropHeld() {
	l.m.stats.HeldLost.Add(uint64(len(l.held)))
	l.held = nil
}
