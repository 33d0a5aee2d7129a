package cluster

import (
	"context"
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
// fail.
const reachableAfter = time.Second

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
	var leading time.Time // when this node last became leader; zero: not leading
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
			case raft.LeaderObservation:
				if d.LeaderID != "" {
					c.metrics.leaderChanges.Inc()
				}
				clear(failing) // a new term: the new leader's heartbeats tell
				leading = time.Time{}
				if d.LeaderID == raft.ServerID(c.cfg.NodeID) {
					leading = time.Now()
				}
			}
		case <-tick.C:
			if leading.IsZero() || !c.IsLeader() {
				continue
			}
			c.reconcileReachability(ctx, failing, time.Since(leading) >= reachableAfter, &writes)
		}
	}
}

// reconcileReachability records, as the leader, each chassis unreachable
// whose node has failed heartbeats for unreachableAfter, and (once settled
// as leader) reachable each one marked so whose node is a member and is
// not failing. Writes go in the background, one at a time per chassis, so
// observations keep being read.
func (c *Cluster) reconcileReachability(ctx context.Context, failing map[string]time.Time, settled bool, writes *sync.Map) {
	members := map[string]bool{}
	if f := c.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			members[string(s.ID)] = true
		}
	}
	type mark struct {
		chassis, node string
		reachable     bool
	}
	var marks []mark
	var memberMarks []MemberReachable
	c.fsm.Read(func(s *topology.Store) {
		for _, m := range s.Members() {
			since, isFailing := failing[m.ID]
			switch {
			case isFailing && time.Since(since) >= unreachableAfter && !m.Unreachable:
				memberMarks = append(memberMarks, MemberReachable{Member: m.ID, Reachable: false})
			case !isFailing && m.Unreachable && settled && members[m.ID]:
				memberMarks = append(memberMarks, MemberReachable{Member: m.ID, Reachable: true})
			}
		}
		s.EachChassis(func(ch topology.Chassis) {
			since, isFailing := failing[ch.NodeID]
			switch {
			case isFailing && time.Since(since) >= unreachableAfter && !ch.Unreachable:
				marks = append(marks, mark{ch.Name, ch.NodeID, false})
			case !isFailing && ch.Unreachable && settled && members[ch.NodeID]:
				marks = append(marks, mark{ch.Name, ch.NodeID, true})
			}
		})
	})
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
