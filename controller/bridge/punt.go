package bridge

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// puntRequest is a punt and the answer computed for it, sent from the
// punt worker when it changes no flow (answerDirect), else handed to the
// bridge's loop, which alone changes the bridge's flows.
type puntRequest struct {
	pi     ofctl.PacketIn
	punt   app.Punt
	view   *view.View // the view the answer was computed from
	answer app.Answer
	// received is when the packet-in arrived (the answer latency's start).
	received time.Time
	// early: the answer's Reply went out from the punt worker, ahead of
	// its flows (answerEarly), and was counted delivered there; the loop
	// only installs the flows.
	early bool
}

// PuntSource keys the controller's fair punt queue: the logical port a
// punt came from (reg6), or, for a packet with none (from a tunnel), its
// ingress port with bit 32 set.
func PuntSource(pi ofctl.PacketIn) uint64 {
	if src, ok := pi.Match.Get(of.FieldReg6); ok && src.Value != 0 {
		return src.Value
	}
	return 1<<32 | uint64(pi.InPort())
}

// decode turns a packet-in into an app's punt: the reason its flow gave,
// the pipeline fields, the frame decoded.
func decode(pi ofctl.PacketIn) (app.Punt, app.Outcome, bool) {
	reason, data, ok := pipeline.ParsePuntData(pi.UserData)
	if !ok {
		return app.Punt{}, app.Unanswered, false
	}
	pkt, err := of.ParseOwnPacket(pi.Data) // the packet-in's own copy of the frame
	if err != nil {
		return app.Punt{}, app.Malformed, false
	}
	return app.Punt{Reason: reason, Data: data, Table: pi.Table, Cookie: pi.Cookie, InPort: pi.InPort(),
		Fields: pi.Match, Packet: pkt, Frame: pi.Data}, 0, true
}

// PacketIns implements ofctl.BatchHandler: PacketIn for a batch of a
// switch's punts, answered together.
func (m *Manager) PacketIns(ctx context.Context, sw *ofctl.Switch, pis []ofctl.PacketIn) {
	m.stats.Received.Add(uint64(len(pis)))
	m.mu.Lock()
	l := m.bridges[sw.DPID()]
	m.mu.Unlock()
	if l == nil {
		for range pis {
			m.stats.count(app.Unanswered)
		}
		return
	}
	l.answerPunts(ctx, pis)
}

// punt answers one punt (answerPunts).
func (l *loop) punt(ctx context.Context, pi ofctl.PacketIn) {
	l.answerPunts(ctx, []ofctl.PacketIn{pi})
}

// answerPunts answers punts from the bridge's current view and returns
// once each has been acted on. An answer that changes no flow (a flood,
// a re-injection, a packet the app built) is sent from here
// (answerDirect); one with flows to install, or held for a binding, is
// handed to the loop, which alone changes flows.
func (l *loop) answerPunts(ctx context.Context, pis []ofctl.PacketIn) {
	received := time.Now()
	v, local := l.view()
	pooled := l.m.requests.take(len(pis)) // room for all: the batch points into it
	reqs := *pooled
	var direct, early, looped []*puntRequest
	var byReason [256]int // counted once a batch, not looked up once a punt
	defer func() {
		for r, n := range byReason {
			if n > 0 {
				l.m.metrics.punts.WithLabelValues(pipeline.PuntReason(r).String()).Add(float64(n))
			}
		}
	}()
	for _, pi := range pis {
		p, outcome, ok := decode(pi)
		if !ok {
			l.m.stats.count(outcome)
			continue
		}
		byReason[p.Reason]++
		if v == nil || local == nil {
			l.m.stats.count(app.Unanswered) // not the local chassis' bridge, or not yet replayed
			continue
		}
		reqs = append(reqs, puntRequest{pi: pi, punt: p, view: v, answer: l.m.pipeline.OnPunt(v, local.Bridge, p), received: received})
		r := &reqs[len(reqs)-1]
		switch {
		case r.answer.Outcome == app.Held:
			looped = append(looped, r)
		case len(r.answer.Flows) > 0 && r.answer.Reply != nil && len(r.answer.Send) == 0:
			early = append(early, r)
		case len(r.answer.Flows) > 0:
			looped = append(looped, r)
		default:
			direct = append(direct, r)
		}
	}
	if len(direct) > 0 && !l.answerDirect(ctx, v, direct) {
		looped = append(looped, direct...)
	}
	kept := false // a request the loop may hold on to
	if len(early) > 0 {
		if install, ok := l.answerEarly(ctx, v, early); !ok {
			looped = append(looped, early...)
		} else if len(install) > 0 {
			l.handOff(ctx, install...)
			kept = true
		}
	}
	if len(looped) > 0 {
		l.submit(ctx, looped...)
		kept = true
	}
	if !kept {
		l.m.requests.put(pooled, reqs)
	}
}

// answerEarly sends the Replies of answers that have flows to install
// but whose reply depends on none of them (app.Answer.Reply: a frame
// the app built as the flow would, sent straight out of a port, through
// no table), computed from view v, ahead of their flows; false if the
// loop has moved on from v (the loop then answers them the usual way).
//
// Why this is safe, for an ARP answer: the switch would turn the
// re-injected request into exactly this reply once the flow is in, and
// the reply goes out of the requester's own port without meeting any
// table, so whether the flow is in yet, or is refused later, changes
// nothing about it. The flow only spares later requests the punt. It is
// installed behind, in the loop's bundles as before (handOff), and if
// the switch refuses it the next request for the address is punted and
// answered again. As in answerDirect, v is checked and the replies are
// queued on the switch under mu, so they go on the wire ahead of any
// bundle the loop sends for a newer view. A re-injection (Reinject
// without Reply) does depend on the flows and still goes behind their
// commit (answerBatch).
//
// It returns the answers whose flows are still to be installed: those
// whose flows the switch accepted a moment ago (accepted) need their
// reply only, and are done here.
func (l *loop) answerEarly(ctx context.Context, v *view.View, reqs []*puntRequest) ([]*puntRequest, bool) {
	pooled := l.m.packetOuts.take(0)
	outs := *pooled
	for _, r := range reqs {
		outs = append(outs, ofctl.PacketOut{InPort: of.PortController, Actions: r.answer.Reply.Actions, Data: r.answer.Reply.Frame})
	}
	sent := l.sendIfCurrent(ctx, v, outs)
	l.m.packetOuts.put(pooled, outs)
	if !sent {
		return nil, false
	}
	install := l.notAccepted(reqs)
	for _, r := range reqs {
		l.delivered(r)
		r.early = true
	}
	return install, true
}

// sendIfCurrent queues packet-outs computed from view v on the switch,
// under mu, if v is still the bridge's view (see answerDirect); false,
// sending nothing, if the loop has moved on.
func (l *loop) sendIfCurrent(ctx context.Context, v *view.View, outs []ofctl.PacketOut) bool {
	l.mu.Lock()
	if l.current != v {
		l.mu.Unlock()
		return false
	}
	err := l.sw.Apply(ctx, nil, nil, outs...)
	l.mu.Unlock()
	if err != nil {
		l.log.Debug("sending punts' packet-outs failed", zap.Int("packet-outs", len(outs)), zap.Error(err))
	}
	return true
}

// handOff hands answers whose replies are sent to the loop, for their
// flows, without waiting for the loop to act: nothing the worker sends
// waits on them.
func (l *loop) handOff(ctx context.Context, reqs ...*puntRequest) {
	select {
	case l.punts <- &puntBatch{reqs: reqs, done: make(chan struct{})}:
	case <-ctx.Done():
	}
}

// answerDirect sends the packet-outs of answers that change no flow,
// computed from view v, without a handoff to the loop, if v is still the
// bridge's view; false if the loop has moved on (the loop then answers
// them, recomputed). The loop takes mu to move to a new view, and v is
// checked and the packet-outs queued on the switch under mu, so they go
// on the wire ahead of any bundle the loop sends for a newer view — as
// if the loop had answered them before moving on. (A replay sends its
// bundle before it moves: a packet re-injected from the old view may
// then meet the new round's flows, as one in flight would.)
func (l *loop) answerDirect(ctx context.Context, v *view.View, reqs []*puntRequest) bool {
	pooled := l.m.packetOuts.take(0)
	outs := *pooled
	for _, r := range reqs {
		outs = l.appendPacketOuts(outs, r)
	}
	sent := l.sendIfCurrent(ctx, v, outs)
	l.m.packetOuts.put(pooled, outs)
	if !sent {
		return false
	}
	for _, r := range reqs {
		l.m.stats.count(r.answer.Outcome)
		l.delivered(r)
	}
	return true
}

// puntBatch is punts handed to the loop together; done is closed once
// the loop has acted on every one.
type puntBatch struct {
	reqs []*puntRequest
	done chan struct{}
}

// submit hands computed answers to the loop and waits for it to act.
func (l *loop) submit(ctx context.Context, reqs ...*puntRequest) {
	b := &puntBatch{reqs: reqs, done: make(chan struct{})}
	select {
	case l.punts <- b:
	case <-ctx.Done():
		return
	}
	select {
	case <-b.done:
	case <-ctx.Done():
	}
}

// answerBatch acts on the answers of batches of punts: the flows of all
// in one bundle, their packet-outs right behind its commit, each punt's
// outcome counted. A bridge's punts arrive from several workers at a
// time (ofctl), so under load the loop answers many per round trip to
// the switch instead of one. An answer computed from a view older than
// the bridge's — one the loop has since invalidated flows for — is
// computed again from the bridge's: a stale answer is never installed.
//
// The bundle is sent as a flight: the loop goes on to the next punts
// while the switch checks and commits it, and lands it (landFlight)
// when its reply comes, or before the loop changes flows itself.
func (l *loop) answerBatch(ctx context.Context, batches []*puntBatch) {
	var ready []*puntRequest
	for _, b := range batches {
		for _, r := range b.reqs {
			if l.admitAnswer(r) {
				ready = append(ready, r)
			}
		}
	}
	sent := map[of.FlowKey]of.Flow{}
	var mods []of.FlowMod
	var outs []ofctl.PacketOut
	for _, r := range ready {
		mods = append(mods, l.onDemand(r.answer.Flows, sent)...)
		outs = l.appendPacketOuts(outs, r)
	}
	if len(mods) == 0 { // nothing to wait for
		if err := l.sw.Apply(ctx, nil, nil, outs...); err != nil {
			l.log.Debug("sending punts' packet-outs failed", zap.Int("packet-outs", len(outs)), zap.Error(err))
		}
		for _, r := range ready {
			l.delivered(r)
		}
		for _, b := range batches {
			close(b.done)
		}
		return
	}
	for len(l.flights) >= maxPuntFlights {
		l.land(ctx)
	}
	f := &puntFlight{ready: ready, batches: batches, mods: mods, start: time.Now(), err: make(chan error, 1)}
	go func() {
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		f.err <- l.sw.Apply(bctx, nil, mods, outs...)
	}()
	l.flights = append(l.flights, f)
}

// maxPuntFlights bounds the punt bundles in flight to one bridge.
const maxPuntFlights = 8

// puntFlight is a bundle of punts' answers sent and not yet landed.
// Flights of one view are independent: the same flow in two is the same
// flow (one view, one answer), so they may commit in any order; the
// loop lands every one before it moves to another view.
type puntFlight struct {
	ready   []*puntRequest // admitted answers, their flows in the bundle
	batches []*puntBatch   // the workers waiting for them
	mods    []of.FlowMod
	start   time.Time
	err     chan error // Apply's result
}

// landing is the oldest flight's result, nil with none in flight.
func (l *loop) landing() <-chan error {
	if len(l.flights) == 0 {
		return nil
	}
	return l.flights[0].err
}

// land waits for the oldest flight and lands it.
func (l *loop) land(ctx context.Context) {
	l.landFlight(ctx, <-l.flights[0].err)
}

// landAll lands every flight: before the loop changes flows itself, no
// punt bundle of the view it leaves may still commit after.
func (l *loop) landAll(ctx context.Context) {
	for len(l.flights) > 0 {
		l.land(ctx)
	}
}

// landFlight finishes the oldest flight, whose bundle returned err: its
// answers delivered (their packet-outs went behind the commit), or, if
// the switch refused the bundle, each answered alone (execute), so that
// one punt's flow the switch refuses does not cost the others theirs.
func (l *loop) landFlight(ctx context.Context, err error) {
	f := l.flights[0]
	l.flights[0] = nil
	l.flights = l.flights[1:]
	defer func() {
		for _, b := range f.batches {
			close(b.done)
		}
	}()
	if errors.Is(err, ofctl.ErrDisconnected) || ctx.Err() != nil {
		return
	}
	if err != nil {
		l.log.Warn("a batch of reactive flows failed; answering its punts one by one", zap.Int("punts", len(f.ready)), zap.Error(err))
		for _, r := range f.ready {
			l.execute(ctx, r)
		}
		return
	}
	l.m.metrics.bundle(l.sw.DPID(), kindReactive, len(f.mods), time.Since(f.start))
	l.accept(f.mods, f.start)
	for _, r := range f.ready {
		l.delivered(r)
	}
}

// admitAnswer readies a punt's answer in the loop, recomputing a stale
// one, holding one for a port not plugged yet, and counting its outcome;
// it reports whether the answer is to be executed now.
func (l *loop) admitAnswer(req *puntRequest) bool {
	if l.local == nil || l.eff == nil {
		l.m.stats.count(app.Unanswered)
		return false
	}
	if req.view != l.eff {
		l.m.stats.Stale.Add(1)
		req.view, req.answer = l.eff, l.m.pipeline.OnPunt(l.eff, l.local.Bridge, req.punt)
		if req.early && (req.answer.Outcome == app.Held || len(req.answer.Flows) == 0) {
			// Replied from the older view (as if just before the loop
			// moved on); the new one installs nothing for it.
			l.m.stats.count(app.Answered)
			return false
		}
	}
	if req.answer.Outcome == app.Held {
		l.m.stats.count(app.Held)
		dst := destinationOf(req.punt)
		waiting := 0
		for _, h := range l.held {
			if h.dst == dst {
				waiting++
			}
		}
		if len(l.held) >= l.m.cfg.HoldMax || waiting >= l.m.cfg.HoldPerDestination {
			l.m.stats.HeldLost.Add(1)
			return false
		}
		l.held = append(l.held, heldPunt{req: req, dst: dst, until: time.Now().Add(l.m.cfg.HoldFor)})
		return false
	}
	l.m.stats.count(req.answer.Outcome)
	return true
}

// execute installs an answer's flows in one bundle, then delivers it.
func (l *loop) execute(ctx context.Context, req *puntRequest) {
	if mods := l.onDemand(req.answer.Flows, nil); len(mods) > 0 {
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		start := time.Now()
		err := l.sw.Bundle(bctx, mods)
		cancel()
		if err != nil {
			l.log.Warn("could not install reactive flows", zap.Error(err))
			return
		}
		l.m.metrics.bundle(l.sw.DPID(), kindReactive, len(mods), time.Since(start))
	}
	l.deliver(ctx, req)
}

// onDemand are the adds of an answer's flows as a punt installs them:
// idle timeout, the bridge's round, the on-demand cookie bit. A flow the
// switch refused (quarantined) is left out, as is one already in sent
// (the adds of this loop pass, for an earlier punt to the same
// destination), which gets the new ones. (Which flows a punt may install
// at all is the pipeline's to say: apps.Pipeline.OnPunt.)
func (l *loop) onDemand(flows []of.Flow, sent map[of.FlowKey]of.Flow) []of.FlowMod {
	if len(flows) == 0 {
		return nil
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var mods []of.FlowMod
	for _, f := range flows {
		f = l.reactive(f)
		k := f.Key()
		if rej, refused := l.rejected[k]; refused && rej.flow.SameContent(f) {
			continue
		}
		if l.acceptedAt(k, f, now) {
			continue
		}
		if s, ok := sent[k]; ok && s.SameContent(f) {
			continue
		}
		if sent != nil {
			sent[k] = f
		}
		mods = append(mods, of.FlowMod{Command: of.FlowAdd, Flow: f})
	}
	return mods
}

// reactive is an app's flow as a punt installs it: the bridge's round,
// the on-demand cookie bit, the idle timeout. l.mu is held.
func (l *loop) reactive(f of.Flow) of.Flow {
	f = pipeline.OnDemand(pipeline.WithRound(f, l.round))
	f.IdleTimeout = l.m.cfg.IdleTimeout
	return f
}

// deliver acts on an answer whose flows are in: re-injects the packet
// where it left the pipeline (OVS buffers nothing), sends what the app
// built, and hands a VIP claim to the cluster.
func (l *loop) deliver(ctx context.Context, req *puntRequest) {
	for _, po := range l.appendPacketOuts(nil, req) {
		if err := l.sw.PacketOut(ctx, po); err != nil {
			l.log.Debug("sending a punt's packet-out failed", zap.Error(err))
		}
	}
	l.delivered(req)
}

// appendPacketOuts appends what an answer sends back through the switch:
// the punted packet re-injected, then the frames the app built.
func (l *loop) appendPacketOuts(out []ofctl.PacketOut, req *puntRequest) []ofctl.PacketOut {
	if req.early { // its Reply is sent (answerEarly)
		return out
	}
	a := req.answer
	if a.Reinject {
		out = append(out, ofctl.PacketOut{InPort: req.pi.InPort(), Match: req.punt.Fields, // ofctl sends its pipeline fields
			Actions: l.m.resubmit[a.Resubmit], Data: req.pi.Data})
	}
	for _, po := range a.Send {
		out = append(out, ofctl.PacketOut{InPort: of.PortController, Actions: po.Actions, Data: po.Frame})
	}
	return out
}

// delivered counts and logs an answer whose packet-outs are sent, and
// hands its VIP claim to the cluster.
func (l *loop) delivered(req *puntRequest) {
	if req.early { // counted as its Reply went (answerEarly)
		return
	}
	a := req.answer
	if !req.received.IsZero() {
		l.m.metrics.answered(req.punt.Reason, time.Since(req.received))
	}
	for range a.Send {
		l.m.stats.sent(a.Outcome)
	}
	if a.Claim != nil {
		l.m.claim(*a.Claim)
	}
	if a.Learn != nil {
		l.m.learn(*a.Learn)
	}
	if ce := l.log.Check(zap.DebugLevel, "punt answered"); ce != nil {
		ce.Write(zap.Stringer("reason", req.punt.Reason), zap.Uint32("in-port", req.punt.InPort),
			zap.Stringer("outcome", a.Outcome), zap.Int("flows", len(a.Flows)))
	}
}
