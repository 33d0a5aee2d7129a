package cluster

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
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
// other, staggered apart: two followers that stand at once each grant
// the other's pre-vote, then each votes for itself, and the vote splits
// (a second round came 600 ms later, past a second in all). Staggered,
// the first one's pre-vote is refused by the next, which still has its
// leader; the next then stands, the first grants it, and it wins. So the
// last to stand is the one that wins, and it must be one whose log is at
// least as long as every other's: a voter refuses a candidate whose log
// is behind its own, and a refused first follower waits out its
// candidate timer (400-800 ms; raft re-arms it no shorter) before it
// tries again. When the dead leader's last entry reached one follower
// and not the other, that cost a second and more. So the followers,
// once the leader has been silent for half of fastTimeout, ask each
// other how far their logs go (/internal/log-position) and stand in
// that order, the one furthest behind first and the one furthest ahead
// last, ties in id order. A follower that does not answer in time is
// placed by id alone.
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
	// askWithin bounds asking the other followers for their log
	// positions: the answers are in before fastTimeout.
	askWithin = fastTimeout / 4
)

// peerClosed records that a peer closed a raft connection to this node.
func (c *Cluster) peerClosed() { c.lastPeerClose.Store(time.Now().UnixNano()) }

// watchLeaderLoss shortens raft's timeouts when the leader is gone (see
// above) and restores them once there is a leader again.
func (c *Cluster) watchLeaderLoss(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	fast := false
	var order chan int // this silence's place among the followers, once asked
	rank := -1         // order's answer, once in
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
		case rank = <-order:
			order = nil
		}
		state := c.raft.State()
		leader, leaderID := c.raft.LeaderWithID()
		silent := time.Since(c.raft.LastContact())
		if silent < fastTimeout/2 {
			order, rank = nil, -1 // the leader spoke: the next silence asks afresh
		}
		gone := !fast && state == raft.Follower && leader != "" &&
			time.Since(time.Unix(0, c.lastPeerClose.Load())) < closeMemory
		switch {
		case gone && silent >= fastTimeout/2 && order == nil && rank < 0:
			order = make(chan int, 1)
			go func(order chan<- int) { order <- c.standingRank(ctx, leaderID) }(order)
		case gone && rank >= 0 && silent >= fastTimeout+time.Duration(rank)*stagger:
			if err := set(fastTimeout); err != nil {
				c.log.Warn("could not shorten raft's timeouts", zap.Error(err))
				continue
			}
			fast = true
			c.metrics.leaderLost.Inc()
			c.log.Info("the leader closed its connections and went silent: electing at once",
				zap.String("leader", string(leader)), zap.Duration("silent", silent), zap.Int("rank", rank))
		case fast && (state == raft.Leader || state == raft.Follower && leader != "" && silent < fastTimeout):
			if err := set(heartbeatTimeout); err != nil {
				c.log.Warn("could not restore raft's timeouts", zap.Error(err))
				continue
			}
			fast = false
		}
	}
}

// logPosition is how far a node's log goes: its last entry's term and
// index, as raft compares them when it grants a vote.
type logPosition struct {
	Term  uint64 `json:"term"`
	Index uint64 `json:"index"`
}

func (p logPosition) before(q logPosition) bool {
	return p.Term < q.Term || p.Term == q.Term && p.Index < q.Index
}

// logPosition is this node's log position: its log store's last entry,
// read from the store itself (raft's Stats would wait on raft's loop,
// which may be busy, and this is asked within askWithin), or, with
// nothing in the log (just restored from a snapshot), raft's word.
func (c *Cluster) logPosition() logPosition {
	if idx, err := c.store.LastIndex(); err == nil && idx > 0 {
		var l raft.Log
		if err := c.store.GetLog(idx, &l); err == nil {
			return logPosition{Term: l.Term, Index: idx}
		}
	}
	st := c.raft.Stats()
	num := func(k string) uint64 { n, _ := strconv.ParseUint(st[k], 10, 64); return n }
	log := logPosition{Term: num("last_log_term"), Index: num("last_log_index")}
	snap := logPosition{Term: num("last_snapshot_term"), Index: num("last_snapshot_index")}
	if log.Index >= snap.Index {
		return log
	}
	return snap
}

// standingRank is how many staggers this follower waits once the leader
// is gone: how many of the other followers stand before it (see above),
// by how far their logs go.
func (c *Cluster) standingRank(ctx context.Context, leader raft.ServerID) int {
	others := c.askLogPositions(ctx, leader)
	mine := c.logPosition()
	rank := rankAmong(c.cfg.NodeID, mine, others)
	fields := []zap.Field{zap.Int("rank", rank), zap.Uint64("term", mine.Term), zap.Uint64("index", mine.Index)}
	for id, p := range others {
		if p == nil {
			fields = append(fields, zap.String(id, "no answer"))
		} else {
			fields = append(fields, zap.String(id, fmt.Sprintf("term %d index %d", p.Term, p.Index)))
		}
	}
	c.log.Info("the leader is silent: standing in the order of the followers' logs", fields...)
	return rank
}

// askLogPositions asks the voters but the leader and this node how far
// their logs go, within askWithin; nil for one that did not answer.
func (c *Cluster) askLogPositions(ctx context.Context, leader raft.ServerID) map[string]*logPosition {
	others := map[string]*logPosition{}
	f := c.raft.GetConfiguration()
	if f.Error() != nil {
		return others
	}
	ctx, cancel := context.WithTimeout(ctx, askWithin)
	defer cancel()
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	addrs := map[string]string{}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && s.ID != leader && string(s.ID) != c.cfg.NodeID {
			addrs[string(s.ID)] = string(s.Address)
			others[string(s.ID)] = nil // until it answers; written by the askers only below
		}
	}
	for id, addr := range addrs {
		wg.Add(1)
		go func(id, addr string) {
			defer wg.Done()
			var p logPosition
			if err := c.client.call(ctx, addr, http.MethodGet, logPositionPath, nil, &p); err != nil {
				c.log.Debug("could not ask a follower how far its log goes", zap.String("member", id), zap.Error(err))
				return
			}
			mu.Lock()
			others[id] = &p
			mu.Unlock()
		}(id, addr)
	}
	wg.Wait()
	return others
}

// rankAmong is how many of the other followers stand before self: those
// whose logs end before its own, and, of those that end where it does or
// did not say, those before it in id order.
func rankAmong(self string, mine logPosition, others map[string]*logPosition) int {
	rank := 0
	for id, p := range others {
		switch {
		case p != nil && p.before(mine):
			rank++
		case p != nil && mine.before(*p):
		case id < self:
			rank++
		}
	}
	return rank
}
