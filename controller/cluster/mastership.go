package cluster

import (
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
func (c *Cluster) Mastership(dpid uint64) (master string, generation uint64, ok bool) {
	c.fsm.Read(func(s *topology.Store) {
		master, ok = s.MasterOf(dpid)
		generation = s.MastershipEpoch()
	})
	return master, generation, ok
}
