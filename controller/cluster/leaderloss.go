package cluster

import (
	"context"
	"slices"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// Raft's timeouts trade stall tolerance for failover speed: a follower
// that hears nothing from the leader for HeartbeatTimeout (randomized up
// to twice that, re-armed while contact is recent) starts an election. At
// heartbeatTimeout a loaded member's pause does not start one; but a dead
// leader then costs a second or more, most of it the two followers'
// timers (the first one's vote is refused while the other still has a
// leader). A leader that is gone, not slow, tells its followers so: its
// process' end closes every raft connection it had open to them. A
// follower that saw one close and has heard nothing for fastTimeout
// shortens its own timeouts to fastTimeout, and both followers (each saw
// the close) hold an election within a few hundred ms. Once a
// leader is known again the timeouts go back. A closed connection alone
// (raft's pool turns connections over) changes nothing while heartbeats
// keep coming; only both together do.
//
// The followers do not shorten at the same moment, but one after the
// other, in the order of their ids (the leader's left out), staggered
// apart: two followers that stand at once each grant the other's
// pre-vote, then each votes for itself, and the vote splits (a second
// round came 600 ms later, past a second in all). Staggered, the first
// one's pre-vote is refused by the next, which still has its leader; the
// next then stands, the first grants it, and it wins. Unless the dead
// leader's last entry reached only the first: then the first refuses the
// next (its log is behind) and wins itself on its second try, after its
// candidate timer (400-800 ms; raft re-arms it no shorter). Ordering the
// followers by how far their logs go would close that case; they would
// have to ask each other.
const (
	heartbeatTimeout = 500 * time.Millisecond
	fastTimeout      = 400 * time.Millisecond // also the leader lease: it may not exceed any heartbeat timeout
	// stagger is how long after the follower before it a follower
	// shortens its timeouts: more than a pre-vote's round trip on a
	// loaded machine.
	stagger = 50 * time.Millisecond
	// closeMemory is how long a closed leader connection is taken as a
	// sign of the leader's end.
	closeMemory = 2 * time.Second
)

// peerClosed records that a peer closed a raft connection to this node.
func (c *Cluster) peerClosed() { c.lastPeerClose.Store(time.Now().UnixNano()) }

// watchLeaderLoss shortens raft's timeouts when the leader is gone (see
// above) and restores them once there is a leader again.
func (c *Cluster) watchLeaderLoss(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	fast := false
	set := func(timeout time.Duration) error {
		rc := c.raft.ReloadableConfig()
		rc.HeartbeatTimeout, rc.ElectionTimeout = timeout, timeout
		return c.raft.ReloadConfig(rc)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		state := c.raft.State()
		leader, leaderID := c.raft.LeaderWithID()
		switch {
		case !fast && state == raft.Follower && leader != "" &&
			time.Since(time.Unix(0, c.lastPeerClose.Load())) < closeMemory &&
			time.Since(c.raft.LastContact()) >= fastTimeout && // first: followerRank asks raft's loop
			time.Since(c.raft.LastContact()) >= fastTimeout+time.Duration(c.followerRank(leaderID))*stagger:
			if err := set(fastTimeout); err != nil {
				c.log.Warn("could not shorten raft's timeouts", zap.Error(err))
				continue
			}
			fast = true
			c.metrics.leaderLost.Inc()
			c.log.Info("the leader closed its connections and went silent: electing at once",
				zap.String("leader", string(leader)), zap.Duration("silent", time.Since(c.raft.LastContact())))
		case fast && (state == raft.Leader || state == raft.Follower && leader != "" && time.Since(c.raft.LastContact()) < fastTimeout):
			if err := set(heartbeatTimeout); err != nil {
				c.log.Warn("could not restore raft's timeouts", zap.Error(err))
				continue
			}
			fast = false
		}
	}
}

// followerRank is this node's place among the voters other than the
// leader, in id order: how many staggers it waits (0 when unknown).
func (c *Cluster) followerRank(leader raft.ServerID) int {
	f := c.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	var ids []string
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && s.ID != leader {
			ids = append(ids, string(s.ID))
		}
	}
	slices.Sort(ids)
	return max(slices.Index(ids, c.cfg.NodeID), 0)
}
