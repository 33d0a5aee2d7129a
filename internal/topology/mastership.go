package topology

import (
	"encoding/binary"
	"hash/fnv"
	"net"
	"strconv"
	"strings"
)

// Which controller node is master of a bridge is decided from replicated
// facts only — the members, their OpenFlow addresses, the leader's word
// on who is unreachable, the chassis and the node that runs each — so
// every node that has applied the same entries decides the same. The
// decision's generation is the mastership epoch: the log index of the
// last entry that changed any of those facts. A node asks the switch for
// its role with it, so a deposed master, which has not applied the entry
// that deposed it, is refused by the switch as stale.

// SetMemberReachable records the leader's word on whether a member
// answers raft's heartbeats; changed is false when it already said so.
func (s *Store) SetMemberReachable(i uint64, id string, reachable bool) (bool, error) {
	m, ok := s.members[id]
	if !ok {
		return false, notFound("MemberNotFound", "Member %s could not be found", id)
	}
	if m.Unreachable == !reachable {
		return false, nil
	}
	m.Unreachable = !reachable
	s.touchMastership(i)
	return true, nil
}

// MastershipEpoch is the log index of the last change to what decides
// bridges' masters.
func (s *Store) MastershipEpoch() uint64 { return s.seq.Mastership }

func (s *Store) touchMastership(i uint64) {
	if i > s.seq.Mastership {
		s.seq.Mastership = i
	}
}

// MasterOf says which member should be master of the bridge with this
// datapath id: the node of the bridge's own chassis while it is a live
// member with an OpenFlow address; otherwise the live member that ranks
// highest for the bridge (rendezvous hashing: a member's loss moves only
// its own bridges, spread over the others). ok is false when no member
// is live.
func (s *Store) MasterOf(dpid uint64) (node string, ok bool) {
	live := func(id string) bool {
		m, ok := s.members[id]
		return ok && !m.Unreachable && m.OpenFlowAddr != "" && !localOnly(m.OpenFlowAddr)
	}
	for _, c := range s.chassis {
		if d, err := strconv.ParseUint(c.DatapathID, 16, 64); err == nil && d == dpid && c.DatapathID != "" {
			if m, ok := s.members[c.NodeID]; ok && localOnly(m.OpenFlowAddr) {
				return c.NodeID, true // no other node can reach its bridge: it is the bridge's only controller
			}
			if live(c.NodeID) && !c.Unreachable {
				return c.NodeID, true
			}
			break
		}
	}
	var best uint64
	for _, id := range sortedKeys(s.members) {
		if !live(id) {
			continue
		}
		if score := rendezvous(dpid, id); !ok || score > best {
			node, best, ok = id, score, true
		}
	}
	return node, ok
}

func rendezvous(dpid uint64, member string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], dpid)
	h.Write(b[:])
	h.Write([]byte(member))
	return h.Sum64()
}

// PortsOfHost are the ports whose binding:host_id names the chassis, by
// id: those a chassis no node manages may have plugged.
func (s *Store) PortsOfHost(chassis string) []Port {
	var out []Port
	for _, id := range sortedKeys(s.hostPorts[chassis]) {
		out = append(out, s.portOut(s.ports[id]))
	}
	return out
}

// localOnly reports whether an OpenFlow address can be reached only from
// the node's own host (a unix socket, a loopback address): such a node
// serves its own chassis' bridge alone, and is that bridge's only
// controller.
func localOnly(addr string) bool {
	network, rest, _ := strings.Cut(addr, ":")
	if network == "unix" {
		return true
	}
	host, _, err := net.SplitHostPort(rest)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}
