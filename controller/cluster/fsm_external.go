package cluster

import "github.com/wyvern-sdn/wyvern/internal/topology"

// Command payloads.
type (
	FloatingIPCreate struct{ Spec topology.FloatingIPSpec }
	FloatingIPUpdate struct{ Spec topology.FloatingIPSpec }
	PortForwarding   struct{ Spec topology.PortForwardingSpec }
	PortForwardingID struct{ FloatingIPID, ID string }
	NeighbourLearn   struct{ Neighbour topology.Neighbour }
	// ChassisReachable is the leader's word on whether it reaches a
	// chassis' node (raft heartbeats failing or resumed).
	ChassisReachable struct {
		Chassis   string
		Reachable bool
	}
)

// externalPayloads are the payloads of the commands here.
var externalPayloads = map[CommandType]func() any{
	CmdFloatingIPCreate: func() any { return new(FloatingIPCreate) }, CmdFloatingIPUpdate: func() any { return new(FloatingIPUpdate) },
	CmdFloatingIPDelete: func() any { return new(ByID) }, CmdPortForwardingCreate: func() any { return new(PortForwarding) },
	CmdPortForwardingUpdate: func() any { return new(PortForwarding) }, CmdPortForwardingDelete: func() any { return new(PortForwardingID) },
	CmdNeighbourLearn: func() any { return new(NeighbourLearn) }, CmdChassisReachable: func() any { return new(ChassisReachable) },
}

// externalHandlers apply the commands of floating IPs, port forwardings,
// learned neighbours and chassis reachability.
var externalHandlers = map[CommandType]handler{
	CmdFloatingIPCreate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		f, err := s.CreateFloatingIP(i, decodeInto[FloatingIPCreate](d).Spec)
		return f, append(one(i, topology.ResourceFloatingIP, "create", f.ID), one(i, topology.ResourcePort, "create", f.HolderPortID)...), err
	},
	CmdFloatingIPUpdate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		f, err := s.UpdateFloatingIP(i, decodeInto[FloatingIPUpdate](d).Spec)
		return f, one(i, topology.ResourceFloatingIP, "update", f.ID), err
	},
	CmdFloatingIPDelete: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		f, err := s.DeleteFloatingIP(i, decodeInto[ByID](d).ID)
		return nil, append(one(i, topology.ResourceFloatingIP, "delete", f.ID), one(i, topology.ResourcePort, "delete", f.HolderPortID)...), err
	},
	CmdPortForwardingCreate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		sp := decodeInto[PortForwarding](d).Spec
		pf, err := s.CreatePortForwarding(i, sp)
		return pf, one(i, topology.ResourceFloatingIP, "update", sp.FloatingIPID), err
	},
	CmdPortForwardingUpdate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		sp := decodeInto[PortForwarding](d).Spec
		pf, err := s.UpdatePortForwarding(i, sp)
		return pf, one(i, topology.ResourceFloatingIP, "update", sp.FloatingIPID), err
	},
	CmdPortForwardingDelete: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c := decodeInto[PortForwardingID](d)
		return nil, one(i, topology.ResourceFloatingIP, "update", c.FloatingIPID), s.DeletePortForwarding(i, c.FloatingIPID, c.ID)
	},
	CmdNeighbourLearn: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		nb := decodeInto[NeighbourLearn](d).Neighbour
		changed, err := s.LearnNeighbour(i, nb)
		if !changed {
			return changed, nil, err
		}
		return changed, one(i, topology.ResourceNeighbour, "update", nb.NetworkID), err
	},
	CmdChassisReachable: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c := decodeInto[ChassisReachable](d)
		changed, err := s.SetChassisReachable(i, c.Chassis, c.Reachable)
		if !changed {
			return changed, nil, err
		}
		return changed, one(i, topology.ResourceChassis, "update", c.Chassis), err
	},
}

// gatewayMoved are the changes of a router's gateway port when it was
// replaced or removed.
func gatewayMoved(i uint64, before, after topology.Router) []topology.Change {
	if before.GatewayPortID == after.GatewayPortID {
		return nil
	}
	var ch []topology.Change
	if before.GatewayPortID != "" {
		ch = append(ch, one(i, topology.ResourcePort, "delete", before.GatewayPortID)...)
	}
	if after.GatewayPortID != "" {
		ch = append(ch, one(i, topology.ResourcePort, "create", after.GatewayPortID)...)
	}
	return ch
}
