package bridge

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// What a bridge tells the cluster: VIP holders and neighbours its punts
// taught it, and which plugged ports it holds every flow of.

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

// learn records a neighbour's MAC through the cluster, once at a time per
// address.
func (m *Manager) learn(nb topology.Neighbour) {
	if m.hooks.Learn == nil {
		return
	}
	key := nb.NetworkID + " " + nb.IP
	if _, busy := m.learning.LoadOrStore(key, true); busy {
		return
	}
	go func() {
		defer m.learning.Delete(key)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.hooks.Learn(ctx, nb); err != nil {
			m.log.Warn("recording a neighbour failed", zap.String("network", nb.NetworkID), zap.String("ip", nb.IP), zap.Error(err))
			return
		}
		m.log.Info("neighbour learned", zap.String("network", nb.NetworkID), zap.String("ip", nb.IP), zap.String("mac", nb.MAC))
	}()
}

// reportProgrammed tells the chassis which of the local bridge's plugged
// ports it holds every desired flow of (ACTIVE ports, to the cluster) —
// or, given the changes of a bundle about to go out, will hold once it
// commits. The chassis proposes a port ACTIVE as the bundle that
// programs it is sent, not after the switch confirms it: the raft commit
// (an RTT and two log writes) takes longer than the switch takes to
// apply a bundle it has already received on the same connection, so the
// VM's first packets do not wait for both one after the other. Should the
// bundle fail, the loop reports again what the bridge really holds and
// the chassis sets the port back to DOWN.
func (l *loop) reportProgrammed(pending *of.Changes) {
	if l.local == nil || l.local.Remote || l.m.hooks.Programmed == nil {
		return
	}
	after := map[of.FlowKey]of.Flow{}
	gone := map[of.FlowKey]bool{}
	if pending != nil {
		for _, f := range append(append([]of.Flow{}, pending.Adds...), pending.Modifies...) {
			after[f.Key()] = f
		}
		for _, f := range pending.Deletes {
			gone[f.Key()] = true
		}
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
			f = pipeline.WithRound(f, l.round)
			k := f.Key()
			have, ok := after[k]
			if !ok && !gone[k] {
				have, ok = l.installed.Get(k)
			}
			if !ok || !have.SameContent(f) {
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
