package cluster

import (
	"context"
	"errors"
	"sync/atomic"

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

// LogHold stands between a member's raft and its log store: while it
// refuses, StoreLogs fails. A follower so refused keeps its leader
// (heartbeats carry no entries to store) and falls behind it.
type LogHold struct{ refusing atomic.Bool }

// WithLogHold is cfg with its log store behind h.
func WithLogHold(cfg Config, h *LogHold) Config {
	cfg.wrapLogs = func(s raft.LogStore) raft.LogStore { return &heldLogs{LogStore: s, h: h} }
	return cfg
}

// Refuse fails the stores from now on; Allow lets them through again.
func (h *LogHold) Refuse() { h.refusing.Store(true) }
func (h *LogHold) Allow()  { h.refusing.Store(false) }

type heldLogs struct {
	raft.LogStore
	h *LogHold
}

func (l *heldLogs) StoreLogs(logs []*raft.Log) error {
	if l.h.refusing.Load() {
		return errors.New("log store refused by the test")
	}
	return l.LogStore.StoreLogs(logs)
}

func (l *heldLogs) StoreLog(log *raft.Log) error { return l.StoreLogs([]*raft.Log{log}) }

// Vanish ends this member's raft as a killed process would: it stops,
// and every raft connection it had open closes.
func (c *Cluster) Vanish() {
	_ = c.raft.Shutdown().Error()
	c.transport.CloseStreams()
	_ = c.transport.Close()
}
