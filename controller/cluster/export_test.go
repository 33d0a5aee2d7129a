package cluster

import (
	"context"

	"github.com/hashicorp/raft"
)

// LogPosition is how far this node's log goes (term, index).
func (c *Cluster) LogPosition() (term, index uint64) {
	p := c.logPosition()
	return p.Term, p.Index
}

// AskLogPositions asks the other followers, over the internal channel,
// how far their logs go: [term, index] by id, nil for no answer.
func (c *Cluster) AskLogPositions(ctx context.Context) map[string][]uint64 {
	_, leader := c.raft.LeaderWithID()
	out := map[string][]uint64{}
	for id, p := range c.askLogPositions(ctx, leader) {
		if p != nil {
			out[id] = []uint64{p.Term, p.Index}
		} else {
			out[id] = nil
		}
	}
	return out
}

// StandingRank is how many staggers this follower would wait were the
// leader gone now.
func (c *Cluster) StandingRank(ctx context.Context) int {
	_, leader := c.raft.LeaderWithID()
	return c.standingRank(ctx, raft.ServerID(leader))
}
