package bridge

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// puntRequest is a punt and the answer computed for it, handed to the
// bridge's loop, which alone writes to the bridge.
type puntRequest struct {
	pi     ofctl.PacketIn
	punt   app.Punt
	view   *view.View // the view the answer was computed from
	answer app.Answer
	done   chan struct{}
}

// heldPunt waits for its destination's binding.
type heldPunt struct {
	req   *puntRequest
	until time.Time
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
	pkt, err := of.ParsePacket(pi.Data)
	if err != nil {
		return app.Punt{}, app.Malformed, false
	}
	return app.Punt{Reason: reason, Data: data, Table: pi.Table, Cookie: pi.Cookie, InPort: pi.InPort(),
		Fields: pipelineFields(pi.Match), Packet: pkt, Frame: pi.Data}, 0, true
}

// punt answers a punt from the bridge's current view and hands the answer
// to the loop; it returns once the loop has acted on it.
func (l *loop) punt(ctx context.Context, pi ofctl.PacketIn) {
	p, outcome, ok := decode(pi)
	if !ok {
		l.m.stats.count(outcome)
		return
	}
	v, local := l.view()
	if v == nil || local == nil {
		l.m.stats.count(app.Unanswered) // not the local chassis' bridge, or not yet replayed
		return
	}
	l.submit(ctx, &puntRequest{pi: pi, punt: p, view: v, answer: l.m.pipeline.OnPunt(v, local.Bridge, p)})
}

// submit hands a computed answer to the loop and waits for it to act.
func (l *loop) submit(ctx context.Context, req *puntRequest) {
	req.done = make(chan struct{})
	select {
	case l.punts <- req:
	case <-ctx.Done():
		return
	}
	select {
	case <-req.done:
	case <-ctx.Done():
	}
}

// answer acts on a punt's answer, in the loop. An answer computed from a
// view older than the bridge's — one the loop has since invalidated
// flows for — is computed again from the bridge's: a stale answer is
// never installed.
func (l *loop) answer(ctx context.Context, req *puntRequest) {
	defer close(req.done)
	if l.local == nil || l.eff == nil {
		l.m.stats.count(app.Unanswered)
		return
	}
	if req.view != l.eff {
		l.m.stats.Stale.Add(1)
		req.view, req.answer = l.eff, l.m.pipeline.OnPunt(l.eff, l.local.Bridge, req.punt)
	}
	if req.answer.Outcome == app.Held {
		l.m.stats.count(app.Held)
		if len(l.held) >= l.m.cfg.HoldMax {
			l.m.stats.HeldLost.Add(1)
			return
		}
		l.held = append(l.held, heldPunt{req: req, until: time.Now().Add(l.m.cfg.HoldFor)})
		return
	}
	l.m.stats.count(req.answer.Outcome)
	l.execute(ctx, req)
}

// execute installs an answer's flows (idle timeout, the bridge's round)
// in one bundle, re-injects the packet where it left the pipeline (OVS
// buffers nothing), sends what the app built, and hands a VIP claim to
// the cluster.
func (l *loop) execute(ctx context.Context, req *puntRequest) {
	a := req.answer
	if len(a.Flows) > 0 {
		l.mu.Lock()
		round := l.round
		l.mu.Unlock()
		mods := make([]of.FlowMod, len(a.Flows))
		for i, f := range a.Flows {
			f = pipeline.WithRound(f, round)
			f.IdleTimeout = l.m.cfg.IdleTimeout
			mods[i] = of.FlowMod{Command: of.FlowAdd, Flow: f}
		}
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := l.sw.Bundle(bctx, mods)
		cancel()
		if err != nil {
			l.log.Warn("could not install reactive flows", zap.Error(err))
			return
		}
	}
	if a.Reinject {
		err := l.sw.PacketOut(ctx, ofctl.PacketOut{InPort: req.pi.InPort(), Match: req.punt.Fields,
			Actions: []of.Action{of.Resubmit{Table: a.Resubmit}}, Data: req.pi.Data})
		if err != nil {
			l.log.Debug("re-injecting a punted packet failed", zap.Error(err))
		}
	}
	for _, po := range a.Send {
		if err := l.sw.PacketOut(ctx, ofctl.PacketOut{InPort: of.PortController, Actions: po.Actions, Data: po.Frame}); err != nil {
			l.log.Debug("sending an answer failed", zap.Error(err))
			continue
		}
		l.m.stats.sent(a.Outcome)
	}
	if a.Claim != nil {
		l.m.claim(*a.Claim)
	}
	if ce := l.log.Check(zap.DebugLevel, "punt answered"); ce != nil {
		ce.Write(zap.Stringer("reason", req.punt.Reason), zap.Uint32("in-port", req.punt.InPort),
			zap.Stringer("outcome", a.Outcome), zap.Int("flows", len(a.Flows)))
	}
}

// claim records a VIP holder through the cluster, once at a time per
// port and address.
func (m *Manager) claim(c app.VIPClaim) {
	if m.hooks.Claim == nil {
		return
	}
	key := c.PortID + " " + c.IP.String()
	if _, busy := m.claiming.LoadOrStore(key, true); busy {
		return
	}
	go func() {
		defer m.claiming.Delete(key)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.hooks.Claim(ctx, c); err != nil {
			m.log.Warn("recording a VIP holder failed", zap.String("port", c.PortID), zap.Stringer("vip", c.IP), zap.Error(err))
			return
		}
		m.stats.Learned.Add(1)
		m.log.Info("VIP moved", zap.String("port", c.PortID), zap.Stringer("vip", c.IP))
	}()
}

// retryHeld asks again, from the bridge's new view, about every punt
// waiting for a binding; those answered now are acted on.
func (l *loop) retryHeld(ctx context.Context) {
	if len(l.held) == 0 || l.local == nil {
		return
	}
	keep := l.held[:0]
	for _, h := range l.held {
		h.req.view, h.req.answer = l.eff, l.m.pipeline.OnPunt(l.eff, l.local.Bridge, h.req.punt)
		if h.req.answer.Outcome == app.Held {
			keep = append(keep, h)
			continue
		}
		l.m.stats.HeldDone.Add(1)
		l.m.stats.count(h.req.answer.Outcome)
		l.execute(ctx, h.req)
	}
	l.held = keep
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

// reportProgrammed tells the chassis which of the local bridge's plugged
// ports it holds every desired flow of (ACTIVE ports, to the cluster).
func (l *loop) reportProgrammed() {
	if l.local == nil || l.m.hooks.Programmed == nil {
		return
	}
	out := map[string]uint32{}
	l.mu.Lock()
	for _, b := range l.local.Bindings {
		p, ok := l.eff.LocatedPort(b.PortID)
		if !ok || p.Chassis != l.local.Bridge.Chassis {
			continue
		}
		flows := l.desired.ObjectFlows(pipeline.PortObject(p.Key))
		done := len(flows) > 0
		for _, f := range flows {
			have, ok := l.installed.Get(f.Key())
			if !ok || !have.SameContent(pipeline.WithRound(f, l.round)) {
				done = false
				break
			}
		}
		if done {
			out[p.ID] = p.OFPort
		}
	}
	l.mu.Unlock()
	l.m.hooks.Programmed(out)
}
