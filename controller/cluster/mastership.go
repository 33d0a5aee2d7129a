package cluster

import (
	"sync"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// MemberReachable is the leader's word on a member (CmdMemberReachable).
type MemberReachable struct {
	Member    string
	Reachable bool
}

var mastershipPayloads = map[CommandType]func() any{
	CmdMemberReachable: func() any { return new(MemberReachable) },
}

var mastershipHandlers = map[CommandType]handler{
	CmdMemberReachable: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		m := decodeInto[MemberReachable](d)
		changed, err := s.SetMemberReachable(i, m.Member, m.Reachable)
		if !changed {
			return changed, nil, err
		}
		return changed, one(i, topology.ResourceMember, "update", m.Member), err
	},
}

// Mastership says which member should be master of the bridge with this
// datapath id, and the generation to ask the switch for the role with:
// the mastership epoch of this node's applied topology (see
// topology.Store.MasterOf). ok is false when no member is live.
//
// Every fact MasterOf reads moves the epoch, so a decision holds until
// the epoch moves: each bridge's step asks, and a node with hundreds of
// bridges would otherwise look through every chassis for each.
func (c *Cluster) Mastership(dpid uint64) (master string, generation uint64, ok bool) {
	c.fsm.Read(func(s *topology.Store) {
		generation = s.MastershipEpoch()
		master, ok = c.masters.decide(generation, dpid, s.MasterOf)
	})
	return master, generation, ok
}

// masterCache holds MasterOf's decisions at one mastership epoch.
type masterCache struct {
	mu     sync.Mutex
	epoch  uint64
	byDPID map[uint64]masterDecision
}

type masterDecision struct {
	node string
	ok   bool
}

// decide is masterOf's decision for dpid at epoch, remembered.
func (m *masterCache) decide(epoch, dpid uint64, masterOf func(uint64) (string, bool)) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byDPID == nil || m.epoch != epoch {
		m.epoch, m.byDPID = epoch, map[uint64]masterDecision{}
	}
	d, ok := m.byDPID[dpid]
	if !ok {
		d.node, d.ok = masterOf(dpid)
		m.byDPID[dpid] = d
	}
	return d.node, d.ok
}
