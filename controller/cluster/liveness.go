package cluster

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// unreachableAfter is how long the leader's heartbeats to a node must keep
// failing before its chassis is recorded unreachable. Heartbeats go out
// every HeartbeatTimeout/10 (50 ms); a node that is gone fails every one
// at once (its connections are refused or reset), while a busy one is
// only slow — and a slow heartbeat is no failure.
const unreachableAfter = 250 * time.Millisecond

// watchLiveness is the leader's eye on the chassis: raft tells it when its
// heartbeats to a node fail and when they resume; a node failing for
// unreachableAfter has its chassis recorded unreachable (so, among other
// things, routers move their SNAT to another gateway chassis), and one
// that answers again reachable. Detection is raft's own liveness, not an
// operator's word. Only the leader writes; every node runs the watch, so
// a new leader takes over at once.
func (c *Cluster) watchLiveness(ctx context.Context) {
	ch := make(chan raft.Observation, 256)
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
				c.setReachable(ctx, string(d.PeerID), true)
			case raft.LeaderObservation:
				clear(failing) // a new term: the new leader's heartbeats tell
			}
		case <-tick.C:
			if !c.IsLeader() {
				continue
			}
			for node, since := range failing {
				if time.Since(since) >= unreachableAfter {
					c.setReachable(ctx, node, false)
				}
			}
		}
	}
}

// setReachable records, as the leader, whether the chassis a node
// registered are reachable, when the topology says otherwise.
func (c *Cluster) setReachable(ctx context.Context, node string, reachable bool) {
	if !c.IsLeader() {
		return
	}
	var names []string
	c.fsm.Read(func(s *topology.Store) {
		for _, name := range s.ChassisOfNode(node) {
			if ch, ok := s.ChassisByName(name); ok && ch.Unreachable == reachable {
				names = append(names, name)
			}
		}
	})
	for _, name := range names {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.apply(pctx, CmdChassisReachable, ChassisReachable{Chassis: name, Reachable: reachable})
		cancel()
		if err != nil {
			c.log.Warn("recording a chassis' reachability failed", zap.String("chassis", name), zap.Bool("reachable", reachable), zap.Error(err))
			continue
		}
		c.log.Info("chassis reachability", zap.String("chassis", name), zap.String("node", node), zap.Bool("reachable", reachable))
	}
}
