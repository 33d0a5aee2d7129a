package controller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"

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
	cmdNetworksCreate CommandType = iota + 1
	cmdNetworkUpdate
	cmdNetworkDelete
	cmdSubnetsCreate
	cmdSubnetUpdate
	cmdSubnetDelete
	cmdPortsCreate
	cmdPortUpdate
	cmdPortDelete
	cmdRoutersCreate
	cmdRouterUpdate
	cmdRouterDelete
	cmdRouterInterfaceAdd
	cmdRouterInterfaceRemove
	cmdChassisRegister
	cmdMemberRegister
	cmdMemberRemove
	cmdChassisBindings
	cmdPortsActive
	cmdVIPOwner
)

// Command payloads.
type (
	networksCreate struct{ Specs []topology.NetworkSpec }
	networkUpdate  struct{ Spec topology.NetworkSpec }
	subnetsCreate  struct{ Specs []topology.SubnetSpec }
	subnetUpdate   struct{ Spec topology.SubnetSpec }
	portsCreate    struct{ Specs []topology.PortSpec }
	portUpdate     struct{ Spec topology.PortSpec }
	routersCreate  struct{ Specs []topology.RouterSpec }
	routerUpdate   struct{ Spec topology.RouterSpec }
	byID           struct{ ID string }
	routerIface    struct{ Router, Subnet, PortID string }
	chassisReg     struct{ Spec topology.ChassisSpec }
	memberReg      struct{ Member topology.Member }
	chassisBinds   struct {
		Chassis  string
		Bindings []topology.Binding
	}
	portsActive struct {
		Chassis string
		Ports   []string
	}
	vipOwner struct{ Port, IP string }
)

// encodeCommand frames a command for raft: one type byte, then JSON.
func encodeCommand(t CommandType, payload any) ([]byte, error) {
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

// handlers is the one table of command handlers.
var handlers = map[CommandType]handler{
	cmdNetworksCreate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		out, err := s.CreateNetworks(i, decodeInto[networksCreate](d).Specs)
		return out, changes(i, "network", "create", out, func(n topology.Network) string { return n.ID }), err
	},
	cmdNetworkUpdate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		n, err := s.UpdateNetwork(i, decodeInto[networkUpdate](d).Spec)
		return n, one(i, "network", "update", n.ID), err
	},
	cmdNetworkDelete: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		id := decodeInto[byID](d).ID
		subnets, err := s.DeleteNetwork(i, id)
		ch := changes(i, "subnet", "delete", subnets, func(id string) string { return id })
		return nil, append(ch, one(i, "network", "delete", id)...), err
	},
	cmdSubnetsCreate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		out, err := s.CreateSubnets(i, decodeInto[subnetsCreate](d).Specs)
		return out, changes(i, "subnet", "create", out, func(n topology.Subnet) string { return n.ID }), err
	},
	cmdSubnetUpdate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		n, err := s.UpdateSubnet(i, decodeInto[subnetUpdate](d).Spec)
		return n, one(i, "subnet", "update", n.ID), err
	},
	cmdSubnetDelete: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		id := decodeInto[byID](d).ID
		return nil, one(i, "subnet", "delete", id), s.DeleteSubnet(i, id)
	},
	cmdPortsCreate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		out, err := s.CreatePorts(i, decodeInto[portsCreate](d).Specs)
		return out, changes(i, "port", "create", out, func(p topology.Port) string { return p.ID }), err
	},
	cmdPortUpdate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		p, err := s.UpdatePort(i, decodeInto[portUpdate](d).Spec)
		return p, one(i, "port", "update", p.ID), err
	},
	cmdPortDelete: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		id := decodeInto[byID](d).ID
		return nil, one(i, "port", "delete", id), s.DeletePort(i, id)
	},
	cmdRoutersCreate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		out, err := s.CreateRouters(i, decodeInto[routersCreate](d).Specs)
		return out, changes(i, "router", "create", out, func(r topology.Router) string { return r.ID }), err
	},
	cmdRouterUpdate: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		r, err := s.UpdateRouter(i, decodeInto[routerUpdate](d).Spec)
		return r, one(i, "router", "update", r.ID), err
	},
	cmdRouterDelete: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		id := decodeInto[byID](d).ID
		return nil, one(i, "router", "delete", id), s.DeleteRouter(i, id)
	},
	cmdRouterInterfaceAdd: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c := decodeInto[routerIface](d)
		p, err := s.AddRouterInterface(i, c.Router, c.Subnet, c.PortID)
		return p, append(one(i, "port", "create", p.ID), one(i, "router", "update", c.Router)...), err
	},
	cmdRouterInterfaceRemove: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c := decodeInto[routerIface](d)
		p, err := s.RemoveRouterInterface(i, c.Router, c.Subnet)
		return p, append(one(i, "port", "delete", p.ID), one(i, "router", "update", c.Router)...), err
	},
	cmdChassisRegister: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c, err := s.RegisterChassis(i, decodeInto[chassisReg](d).Spec)
		return c, one(i, "chassis", "update", c.Name), err
	},
	cmdMemberRegister: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		m, err := s.RegisterMember(i, decodeInto[memberReg](d).Member)
		return m, one(i, "member", "update", m.ID), err
	},
	cmdChassisBindings: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c := decodeInto[chassisBinds](d)
		changed, err := s.SetBindings(i, c.Chassis, c.Bindings)
		return changed, changes(i, "port", "update", changed, func(id string) string { return id }), err
	},
	cmdPortsActive: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c := decodeInto[portsActive](d)
		changed := s.SetPortsActive(i, c.Chassis, c.Ports)
		return changed, changes(i, "port", "update", changed, func(id string) string { return id }), nil
	},
	cmdVIPOwner: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		c := decodeInto[vipOwner](d)
		prev, err := s.SetVIPOwner(i, c.Port, c.IP)
		ch := one(i, "vip", "update", c.Port)
		if prev != "" && prev != c.Port {
			ch = append(ch, one(i, "vip", "update", prev)...)
		}
		return prev, ch, err
	},
	cmdMemberRemove: func(s *topology.Store, i uint64, d []byte) (any, []topology.Change, error) {
		id := decodeInto[byID](d).ID
		return nil, one(i, "member", "delete", id), s.RemoveMember(i, id)
	},
}

// FSM is the raft state machine: a topology store plus the change feed.
// Apply is thin: decode, call one store method with the raft index, return
// the business error as the response.
type FSM struct {
	mu    sync.RWMutex
	store *topology.Store
	feed  *Feed
}

// NewFSM returns an empty state machine.
func NewFSM() *FSM {
	return &FSM{store: topology.New(), feed: NewFeed(100_000)}
}

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	if len(l.Data) > 0 && handlers[CommandType(l.Data[0])] == nil && CommandType(l.Data[0])&IgnoreUnknown != 0 {
		return nil // a newer node's command this node may skip
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out, decodeErr := applyCommand(f.store, l.Index, l.Data)
	f.store.SetIndex(l.Index)
	if decodeErr != nil {
		panic(fmt.Sprintf("%v (raft index %d)", decodeErr, l.Index))
	}
	if out.err != nil {
		return applyResult{Err: out.err}
	}
	// Published under the lock: a reader holding the read lock sees a
	// store and a feed that agree.
	f.feed.Publish(out.changes)
	return applyResult{Value: out.value}
}

// Read runs fn with the store under the read lock; fn must not keep it.
func (f *FSM) Read(fn func(s *topology.Store)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.store)
}

// Feed is the FSM's change feed.
func (f *FSM) Feed() *Feed { return f.feed }

// Snapshot implements raft.FSM: the store is serialized up front (under the
// read lock), so Persist runs without holding anything.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var b bytesBuffer
	if err := f.store.WriteSnapshot(&b); err != nil {
		return nil, err
	}
	return &fsmSnapshot{data: b.b}, nil
}

// Restore implements raft.FSM: a fresh store is built and swapped in.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s, err := topology.ReadSnapshot(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.store = s
	f.mu.Unlock()
	// Nothing before the snapshot can be replayed; a reader already at
	// its index has missed nothing.
	f.feed.Reset(s.Index())
	return nil
}

type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

type fsmSnapshot struct{ data []byte }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
