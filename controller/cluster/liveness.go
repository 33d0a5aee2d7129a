package cluster

import (
	"context"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// unreachableAfter is how long the leader's heartbeats to a node must keep
// failing before its chassis is recorded unreachable. Heartbeats go out
// every HeartbeatTimeout/10 (20 ms); a node that is gone fails every one
// (its connections are refused or reset, or a connect or RPC times out:
// raftConnectTimeout, raftRPCTimeout), while a busy one is only slow —
// and a slow heartbeat is no failure.
const unreachableAfter = 250 * time.Millisecond

// reachableAfter is how long a leader must have led, without its
// heartbeats to a node failing, before it records the node's chassis
// reachable again: the evidence a new leader has of a node it never saw
// fail. It is also how long a node's heartbeats must have succeeded again
// since they last failed, so that a node going in and out of failing
// is marked once, not at every turn.
const reachableAfter = time.Second

// busyUnreachableAfter is how long the heartbeats to a node must keep
// failing while its raft address still accepts connections before its
// chassis are recorded unreachable anyway. A process that is gone leaves
// nothing to accept a connection (its kernel refuses, or its host does not
// answer within probeTimeout), and is marked after unreachableAfter; one
// whose kernel still accepts is alive and busy — collecting, or starved of
// CPU on a saturated machine — or hung. Marking a busy node costs the
// others what it would relieve: a raft write a chassis, a view change
// every bridge takes up, a new mastership epoch that asks every bridge
// its role again, and the bridges of a node whose switches list other
// controllers moved onto them. On a saturated machine that made more
// nodes miss heartbeats: at 1,000 chassis on two cores it cascaded (some
// 18,000 marks and hundreds of elections in eight minutes). So a busy
// node keeps its place this long.
const busyUnreachableAfter = 5 * time.Second

// probeTimeout bounds the connection attempt that tells a gone node from
// a busy one.
const probeTimeout = 100 * time.Millisecond

// accepts reports whether something accepts a TCP connection at addr
// within probeTimeout; the connection is closed at once (the member's
// guard drops it without a word).
func accepts(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// watchLiveness is the leader's eye on the chassis: raft tells it when its
// heartbeats to a node fail and when they resume. A node failing for
// unreachableAfter has its chassis recorded unreachable (so, among other
// things, routers move their SNAT to another gateway chassis); one whose
// heartbeats succeed again (resumed, or never failing under this leader
// for reachableAfter) reachable. Only the leader's word counts — never a
// chassis' own report, which a half-broken node could still make while
// the leader cannot reach it — so a mark does not flap. Detection is
// raft's own liveness, not an operator's word. Every node runs the watch,
// so a new leader takes over at once.
func (c *Cluster) watchLiveness(ctx context.Context) {
	ch := make(chan raft.Observation, 1024)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation, raft.LeaderObservation:
			return true
		}
		return false
	})
	c.raft.RegisterObserver(obs)
	defer c.raft.DeregisterObserver(obs)
	failing := map[string]time.Time{}
	resumed := map[string]time.Time{} // when a node's heartbeats last succeeded again
	var leading time.Time             // when this node last became leader; zero: not leading
	if c.IsLeader() {
		leading = time.Now() // it was before the observer was there to say so
	}
	if addr, _ := c.raft.LeaderWithID(); addr != "" {
		c.metrics.leaderChanges.Inc() // elected before the observer was there
	}
	var writes sync.Map // chassis → a write in flight
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-ch:
			switch d := o.Data.(type) {
			case raft.FailedHeartbeatObservation:
				if _, ok := failing[string(d.PeerID)]; !ok {
					failing[string(d.PeerID)] = time.Now()
				}
			case raft.ResumedHeartbeatObservation:
				delete(failing, string(d.PeerID))
				resumed[string(d.PeerID)] = time.Now()
			case raft.LeaderObservation:
				if d.LeaderID != "" {
					c.metrics.leaderChanges.Inc()
				}
				clear(failing) // a new term: the new leader's heartbeats tell
				clear(resumed)
				leading = time.Time{}
				if d.LeaderID == raft.ServerID(c.cfg.NodeID) {
					leading = time.Now()
				}
			}
		case <-tick.C:
			if leading.IsZero() || !c.IsLeader() {
				continue
			}
			c.reconcileReachability(ctx, health{failing, resumed, time.Since(leading) >= reachableAfter}, &writes)
		}
	}
}

// health is what the leader has seen of the other nodes' heartbeats.
type health struct {
	failing, resumed map[string]time.Time // since when; when last
	settled          bool                 // this node has led for reachableAfter
}

// failedFor is how long the heartbeats to a node have been failing; false
// if they are not.
func (h health) failedFor(node string) (time.Duration, bool) {
	since, ok := h.failing[node]
	return time.Since(since), ok
}

// recovered reports whether a node's heartbeats have been succeeding for
// reachableAfter under a leader that has led as long (or never failed
// under it).
func (h health) recovered(node string) bool {
	if _, failing := h.failing[node]; failing || !h.settled {
		return false
	}
	at, ok := h.resumed[node]
	return !ok || time.Since(at) >= reachableAfter
}

// reconcileReachability records, as the leader, each chassis unreachable
// whose node has failed heartbeats for unreachableAfter and is gone (or
// for busyUnreachableAfter, gone or not), and (once settled as leader)
// reachable each one marked so whose node is a member and has recovered.
// Writes go in the background, one at a time per chassis, so
// observations keep being read.
func (c *Cluster) reconcileReachability(ctx context.Context, h health, writes *sync.Map) {
	members := map[string]string{} // id → raft address
	if f := c.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			members[string(s.ID)] = string(s.Address)
		}
	}
	lost := func(node string) bool {
		d, failing := h.failedFor(node)
		return failing && d >= unreachableAfter
	}
	recovered := func(node string) bool {
		_, member := members[node]
		return member && h.recovered(node)
	}
	type mark struct {
		chassis, node string
		reachable     bool
	}
	var marks []mark
	var memberMarks []MemberReachable
	c.fsm.Read(func(s *topology.Store) {
		for _, m := range s.Members() {
			switch {
			case lost(m.ID) && !m.Unreachable:
				memberMarks = append(memberMarks, MemberReachable{Member: m.ID, Reachable: false})
			case m.Unreachable && recovered(m.ID):
				memberMarks = append(memberMarks, MemberReachable{Member: m.ID, Reachable: true})
			}
		}
		s.EachChassis(func(ch topology.Chassis) {
			switch {
			case lost(ch.NodeID) && !ch.Unreachable:
				marks = append(marks, mark{ch.Name, ch.NodeID, false})
			case ch.Unreachable && recovered(ch.NodeID):
				marks = append(marks, mark{ch.Name, ch.NodeID, true})
			}
		})
	})
	// A lost node is marked only once it is gone, or has been failing
	// for busyUnreachableAfter: probed outside the store's lock, once a
	// node, and only when there is a mark to make.
	gone := map[string]bool{}
	isGone := func(node string) bool {
		g, probed := gone[node]
		if !probed {
			d, _ := h.failedFor(node)
			addr, member := members[node]
			g = d >= busyUnreachableAfter || !member || !accepts(addr)
			gone[node] = g
		}
		return g
	}
	memberMarks = slices.DeleteFunc(memberMarks, func(m MemberReachable) bool { return !m.Reachable && !isGone(m.Member) })
	marks = slices.DeleteFunc(marks, func(m mark) bool { return !m.reachable && !isGone(m.node) })
	for _, m := range memberMarks {
		key := "member/" + m.Member
		if _, busy := writes.LoadOrStore(key, true); busy {
			continue
		}
		go func() {
			defer writes.Delete(key)
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := c.apply(pctx, CmdMemberReachable, m)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				c.log.Warn("recording a member's reachability failed", zap.String("member", m.Member), zap.Bool("reachable", m.Reachable), zap.Error(err))
				return
			}
			c.log.Info("member reachability", zap.String("member", m.Member), zap.Bool("reachable", m.Reachable))
		}()
	}
	for _, m := range marks {
		if _, busy := writes.LoadOrStore(m.chassis, true); busy {
			continue
		}
		go func() {
			defer writes.Delete(m.chassis)
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := c.apply(pctx, CmdChassisReachable, ChassisReachable{Chassis: m.chassis, Reachable: m.reachable})
			if ctx.Err() != nil {
				return // shutting down: nothing to say, and nobody to say it to
			}
			if err != nil {
				c.log.Warn("recording a chassis' reachability failed", zap.String("chassis", m.chassis), zap.Bool("reachable", m.reachable), zap.Error(err))
				return
			}
			c.log.Info("chassis reachability", zap.String("chassis", m.chassis), zap.String("node", m.node), zap.Bool("reachable", m.reachable))
		}()
	}
}
