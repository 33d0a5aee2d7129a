package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// CommandType tags a raft log entry. The values are append only: a
// released value never changes meaning. A type with IgnoreUnknown set may
// be skipped by a node too old to know it; any other unknown type stops
// the node, because skipping it would fork the state.
type CommandType uint8

// IgnoreUnknown marks a command older nodes may skip.
const IgnoreUnknown CommandType = 128

// Commands.
const (
	CmdNetworksCreate CommandType = iota + 1
	CmdNetworkUpdate
	CmdNetworkDelete
	CmdSubnetsCreate
	CmdSubnetUpdate
	CmdSubnetDelete
	CmdPortsCreate
	CmdPortUpdate
	CmdPortDelete
	CmdRoutersCreate
	CmdRouterUpdate
	CmdRouterDelete
	CmdRouterInterfaceAdd
	CmdRouterInterfaceRemove
	CmdChassisRegister
	CmdMemberRegister
	CmdMemberRemove
	CmdChassisBindings // superseded by CmdChassisPorts; kept for logs that hold it
	CmdPortsActive     // superseded by CmdChassisPorts; kept for logs that hold it
	CmdVIPOwner
	CmdChassisPorts
	CmdFloatingIPCreate
	CmdFloatingIPUpdate
	CmdFloatingIPDelete
	CmdPortForwardingCreate
	CmdPortForwardingUpdate
	CmdPortForwardingDelete
	CmdNeighbourLearn
	CmdChassisReachable
	CmdSecurityGroupCreate
	CmdSecurityGroupUpdate
	CmdSecurityGroupDelete
	CmdSecurityGroupRuleCreate
	CmdSecurityGroupRuleDelete
	CmdRouterInterfaceAttach // add_router_interface with port_id
	CmdRouterInterfaceDetach // remove_router_interface with port_id
	CmdTags
	CmdIfRevision
	CmdSubnetPoolCreate
	CmdSubnetPoolUpdate
	CmdSubnetPoolDelete
	CmdQuotasSet
	CmdQuotasReset
	CmdMemberReachable
	// CmdBatch is several commands committed as one entry (batch.go).
	// Made by the leader's group commit, never proposed.
	CmdBatch
	// CmdChassisDelete forgets a chassis taken out of service (ByID: its
	// name).
	CmdChassisDelete
)

// Command payloads. Each is what its command's store method takes, with
// every id and timestamp chosen before it is proposed.
type (
	NetworksCreate struct{ Specs []topology.NetworkSpec }
	NetworkUpdate  struct{ Spec topology.NetworkSpec }
	SubnetsCreate  struct{ Specs []topology.SubnetSpec }
	SubnetUpdate   struct{ Spec topology.SubnetSpec }
	PortsCreate    struct{ Specs []topology.PortSpec }
	PortUpdate     struct{ Spec topology.PortSpec }
	RoutersCreate  struct{ Specs []topology.RouterSpec }
	RouterUpdate   struct{ Spec topology.RouterSpec }
	ByID           struct{ ID string }
	RouterIface    struct{ Router, Subnet, PortID string }
	ChassisReg     struct{ Spec topology.ChassisSpec }
	MemberReg      struct{ Member topology.Member }
	ChassisBinds   struct {
		Chassis  string
		Bindings []topology.Binding
	}
	PortsActive struct {
		Chassis string
		Ports   []string
	}
	VIPOwner struct{ Port, IP string }
	// ChassisPorts is a chassis' complete report of its plugged ports:
	// where each is bound and whether its bridge is programmed for it
	// (ACTIVE), in one entry.
	ChassisPorts struct {
		Chassis  string
		Bindings []topology.Binding
	}
)

// payloads makes an empty payload of each command type, to check a
// forwarded command before it is proposed: a committed entry that does
// not decode stops every node, so none may be proposed.
var payloads = mergePayloads(map[CommandType]func() any{
	CmdNetworksCreate: func() any { return new(NetworksCreate) }, CmdNetworkUpdate: func() any { return new(NetworkUpdate) },
	CmdNetworkDelete: func() any { return new(ByID) }, CmdSubnetsCreate: func() any { return new(SubnetsCreate) },
	CmdSubnetUpdate: func() any { return new(SubnetUpdate) }, CmdSubnetDelete: func() any { return new(ByID) },
	CmdPortsCreate: func() any { return new(PortsCreate) }, CmdPortUpdate: func() any { return new(PortUpdate) },
	CmdPortDelete: func() any { return new(ByID) }, CmdRoutersCreate: func() any { return new(RoutersCreate) },
	CmdRouterUpdate: func() any { return new(RouterUpdate) }, CmdRouterDelete: func() any { return new(ByID) },
	CmdRouterInterfaceAdd: func() any { return new(RouterIface) }, CmdRouterInterfaceRemove: func() any { return new(RouterIface) },
	CmdRouterInterfaceAttach: func() any { return new(RouterIface) }, CmdRouterInterfaceDetach: func() any { return new(RouterIface) },
	CmdChassisRegister: func() any { return new(ChassisReg) }, CmdMemberRegister: func() any { return new(MemberReg) },
	CmdMemberRemove: func() any { return new(ByID) }, CmdChassisBindings: func() any { return new(ChassisBinds) },
	CmdPortsActive: func() any { return new(PortsActive) }, CmdVIPOwner: func() any { return new(VIPOwner) },
	CmdChassisPorts: func() any { return new(ChassisPorts) }, CmdChassisDelete: func() any { return new(ByID) },
}, externalPayloads, securityGroupPayloads, standardPayloads, mastershipPayloads)

// checkPayload decodes a command's payload strictly, as Apply will.
func checkPayload(t CommandType, raw []byte) error {
	if t == CmdBatch {
		return errNestedBatch
	}
	mk, ok := payloads[t]
	if !ok {
		return fmt.Errorf("%w: %d", errUnknownCommand, t)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	p := mk()
	if err := dec.Decode(p); err != nil {
		return fmt.Errorf("cluster: command %d: %w", t, err)
	}
	if c, ok := p.(*IfRevision); ok { // and the command it guards
		if c.Command == CmdIfRevision {
			return fmt.Errorf("cluster: command %d guards another", t)
		}
		return checkPayload(c.Command, c.Payload)
	}
	return nil
}

// EncodeCommand frames a command for raft: one type byte, then JSON.
func EncodeCommand(t CommandType, payload any) ([]byte, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	return append([]byte{byte(t)}, b...), nil
}

// applyResult is what Apply returns through raft's future: the created or
// changed objects, or the business error that rejected the command.
type applyResult struct {
	Value any
	Err   error
}

// handler applies one decoded command to the store.
type handler func(s *topology.Store, index uint64, data []byte) (any, []topology.Change, error)

// decodeFailure is panicked by decodeInto and recovered by applyCommand.
type decodeFailure struct{ err error }

func decodeInto[T any](data []byte) T {
	var v T
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		panic(decodeFailure{fmt.Errorf("fsm: undecodable %T command: %w", v, err)})
	}
	return v
}

// errUnknownCommand is returned for a command type this node does not know
// and may not skip.
var errUnknownCommand = errors.New("fsm: unknown command type; this node is too old for the cluster")

// applyCommand decodes and applies one command. A command that does not
// decode is returned as an error (Apply turns it into a panic: a committed
// entry that does not decode is a bug, not input); a skippable unknown
// command does nothing.
func applyCommand(s *topology.Store, index uint64, data []byte) (out applied, decodeErr error) {
	if len(data) == 0 {
		return applied{}, errors.New("fsm: empty command")
	}
	t := CommandType(data[0])
	h, ok := handlers[t]
	if !ok {
		if t&IgnoreUnknown != 0 {
			return applied{}, nil
		}
		return applied{}, fmt.Errorf("%w: %d", errUnknownCommand, t)
	}
	defer func() {
		if r := recover(); r != nil {
			df, ok := r.(decodeFailure)
			if !ok {
				panic(r)
			}
			decodeErr = df.err
		}
	}()
	out.value, out.changes, out.err = h(s, index, data[1:])
	return out, nil
}

// applied is the outcome of one command: its result and changes, or the
// business error that rejected it.
type applied struct {
	value   any
	changes []topology.Change
	err     error
}

func changes[T any](index uint64, resource, op string, items []T, id func(T) string) []topology.Change {
	out := make([]topology.Change, len(items))
	for i, it := range items {
		out[i] = topology.Change{Index: index, Resource: resource, Op: op, ID: id(it)}
	}
	return out
}

func one(index uint64, resource, op, id string) []topology.Change {
	return []topology.Change{{Index: index, Resource: resource, Op: op, ID: id}}
}

// handlers is the one table of command handlers: the core's, north-south
// (fsm_external.go) and security groups' (fsm_secgroup.go).
var handlers = mergeHandlers(coreHandlers, externalHandlers, securityGroupHandlers, standardHandlers, mastershipHandlers)

func mergePayloads(tables ...map[CommandType]func() any) map[CommandType]func() any {
	out := map[CommandType]func() any{}
	for _, t := range tables {
		for k, p := range t {
			if _, dup := out[k]; dup {
				panic(fmt.Sprintf("fsm: command %d has two payloads", k))
			}
			out[k] = p
		}
	}
	return out
}

func mergeHandlers(tables ...map[CommandType]handler) map[CommandType]handler {
	out := map[CommandType]handler{}
	for _, t := range tables {
		for k, h := range t {
			if _, dup := out[k]; dup {
				panic(fmt.Sprintf("fsm: command %d handled twice", k))
			}
			out[k] = h
		}
	}
	return out
}

// coreHandlers apply the commands of networks, subnets, ports, routers,
// chassis and members.
var coreHandlers = map[CommandType]handler{
	CmdNetworksCreate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		out, err := s.CreateNetworks(i, decodeInto[NetworksCreate](d).Specs)
		return out, changes(i, topology.ResourceNetwork, "create", out, func(n topology.Network) string { return n.ID }), err
	},
	CmdNetworkUpdate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		n, err := s.UpdateNetwork(i, decodeInto[NetworkUpdate](d).Spec)
		return n, one(i, topology.ResourceNetwork, "update", n.ID), err
	},
	CmdNetworkDelete: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		id := decodeInto[ByID](d).ID
		fips := s.FloatingIPsFreedBy(id)
		subnets, err := s.DeleteNetwork(i, id)
		ch := changes(i, topology.ResourceFloatingIP, "delete", fips, func(id string) string { return id })
		ch = append(ch, changes(i, topology.ResourceSubnet, "delete", subnets, func(id string) string { return id })...)
		return nil, append(ch, one(i, topology.ResourceNetwork, "delete", id)...), err
	},
	CmdSubnetsCreate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		out, err := s.CreateSubnets(i, decodeInto[SubnetsCreate](d).Specs)
		return out, changes(i, topology.ResourceSubnet, "create", out, func(n topology.Subnet) string { return n.ID }), err
	},
	CmdSubnetUpdate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		n, err := s.UpdateSubnet(i, decodeInto[SubnetUpdate](d).Spec)
		return n, one(i, topology.ResourceSubnet, "update", n.ID), err
	},
	CmdSubnetDelete: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		id := decodeInto[ByID](d).ID
		return nil, one(i, topology.ResourceSubnet, "delete", id), s.DeleteSubnet(i, id)
	},
	CmdPortsCreate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		specs := decodeInto[PortsCreate](d).Specs
		missing := missingDefaults(s, specs, func(sp topology.PortSpec) (*string, *string) { return sp.ProjectID, sp.TenantID })
		out, err := s.CreatePorts(i, specs)
		ch := defaultsCreated(s, i, missing)
		return out, append(ch, changes(i, topology.ResourcePort, "create", out, func(p topology.Port) string { return p.ID })...), err
	},
	CmdPortUpdate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		p, err := s.UpdatePort(i, decodeInto[PortUpdate](d).Spec)
		return p, one(i, topology.ResourcePort, "update", p.ID), err
	},
	CmdPortDelete: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		id := decodeInto[ByID](d).ID
		fips := s.FloatingIPsOfPort(id)
		ch := append(one(i, topology.ResourcePort, "delete", id),
			changes(i, topology.ResourceFloatingIP, "update", fips, func(id string) string { return id })...)
		return nil, ch, s.DeletePort(i, id)
	},
	CmdRoutersCreate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		out, err := s.CreateRouters(i, decodeInto[RoutersCreate](d).Specs)
		ch := changes(i, topology.ResourceRouter, "create", out, func(r topology.Router) string { return r.ID })
		for _, r := range out {
			if r.GatewayPortID != "" {
				ch = append(ch, one(i, topology.ResourcePort, "create", r.GatewayPortID)...)
			}
		}
		return out, ch, err
	},
	CmdRouterUpdate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		sp := decodeInto[RouterUpdate](d).Spec
		before, _ := s.Router(sp.ID)
		r, err := s.UpdateRouter(i, sp)
		return r, append(one(i, topology.ResourceRouter, "update", r.ID), gatewayMoved(i, before, r)...), err
	},
	CmdRouterDelete: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		id := decodeInto[ByID](d).ID
		before, _ := s.Router(id)
		err := s.DeleteRouter(i, id)
		return nil, append(one(i, topology.ResourceRouter, "delete", id), gatewayMoved(i, before, topology.Router{})...), err
	},
	CmdRouterInterfaceAdd: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c := decodeInto[RouterIface](d)
		p, err := s.AddRouterInterface(i, c.Router, c.Subnet, c.PortID)
		return p, append(one(i, topology.ResourcePort, "create", p.ID), one(i, topology.ResourceRouter, "update", c.Router)...), err
	},
	CmdRouterInterfaceRemove: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c := decodeInto[RouterIface](d)
		p, err := s.RemoveRouterInterface(i, c.Router, c.Subnet)
		return p, append(one(i, topology.ResourcePort, "delete", p.ID), one(i, topology.ResourceRouter, "update", c.Router)...), err
	},
	CmdRouterInterfaceAttach: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c := decodeInto[RouterIface](d)
		p, err := s.AttachRouterInterface(i, c.Router, c.PortID)
		return p, append(one(i, topology.ResourcePort, "update", c.PortID), one(i, topology.ResourceRouter, "update", c.Router)...), err
	},
	CmdRouterInterfaceDetach: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c := decodeInto[RouterIface](d)
		p, err := s.DetachRouterInterface(i, c.Router, c.PortID)
		return p, append(one(i, topology.ResourcePort, "delete", c.PortID), one(i, topology.ResourceRouter, "update", c.Router)...), err
	},
	CmdChassisRegister: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c, err := s.RegisterChassis(i, decodeInto[ChassisReg](d).Spec)
		return c, one(i, topology.ResourceChassis, "update", c.Name), err
	},
	CmdMemberRegister: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		m, err := s.RegisterMember(i, decodeInto[MemberReg](d).Member)
		return m, one(i, topology.ResourceMember, "update", m.ID), err
	},
	CmdChassisBindings: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c := decodeInto[ChassisBinds](d)
		changed, err := s.SetBindings(i, c.Chassis, c.Bindings)
		return changed, changes(i, topology.ResourcePort, "update", changed, func(id string) string { return id }), err
	},
	CmdPortsActive: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c := decodeInto[PortsActive](d)
		changed := s.SetPortsActive(i, c.Chassis, c.Ports)
		return changed, changes(i, topology.ResourcePort, "update", changed, func(id string) string { return id }), nil
	},
	CmdVIPOwner: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c := decodeInto[VIPOwner](d)
		prev, err := s.SetVIPOwner(i, c.Port, c.IP)
		ch := one(i, "vip", "update", c.Port)
		if prev != "" && prev != c.Port {
			ch = append(ch, one(i, "vip", "update", prev)...)
		}
		return prev, ch, err
	},
	CmdChassisPorts: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c := decodeInto[ChassisPorts](d)
		changed, err := s.ReportPorts(i, c.Chassis, c.Bindings)
		return changed, changes(i, topology.ResourcePort, "update", changed, func(id string) string { return id }), err
	},
	CmdMemberRemove: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		id := decodeInto[ByID](d).ID
		return nil, one(i, topology.ResourceMember, "delete", id), s.RemoveMember(i, id)
	},
	CmdChassisDelete: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		name := decodeInto[ByID](d).ID
		changed, err := s.DeleteChassis(i, name)
		ch := append(one(i, topology.ResourceChassis, "delete", name),
			changes(i, topology.ResourcePort, "update", changed, func(id string) string { return id })...)
		return nil, ch, err
	},
}
