package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
)

// Memory is a cluster of one node, in memory and without raft: a command
// is applied as it is proposed, through the same FSM, under consecutive
// indexes. It stands in for a Cluster in the tests of what sits on top
// (the API, the bridges, the chassis).
type Memory struct {
	mu    sync.Mutex
	fsm   *FSM
	index uint64
	id    string
}

// NewMemory returns an empty in-memory cluster.
// It checks every view it patches against a whole build (a test double:
// the check is what its users want).
func NewMemory(nodeID string) *Memory { return &Memory{fsm: newFSM(true), id: nodeID} }

var errMemory = errors.New("cluster: an in-memory cluster has no members to change")

// Propose applies a command at once.
func (m *Memory) Propose(_ context.Context, t CommandType, payload any) (Result, error) {
	cmd, err := EncodeCommand(t, payload)
	if err != nil {
		return Result{}, err
	}
	if err := checkPayload(t, cmd[1:]); err != nil {
		return Result{}, err
	}
	m.mu.Lock()
	m.index++
	idx := m.index
	// AppendedAt is the proposer's clock, as a raft leader's would be.
	res, _ := m.fsm.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: cmd, AppendedAt: time.Now()}).(applyResult)
	m.mu.Unlock()
	return Result{Index: idx, value: res.Value}, res.Err
}

// Consistent is always true of a cluster of one.
func (m *Memory) Consistent(context.Context) error { return nil }

// Read runs fn with the store under the read lock.
func (m *Memory) Read(fn func(s *topology.Store)) { m.fsm.Read(fn) }

// Ready is always true.
func (m *Memory) Ready() bool { return true }

// AppliedIndex is the index of the last command applied.
func (m *Memory) AppliedIndex() uint64 { return m.fsm.Index() }

// Status is a cluster of one, led by itself.
func (m *Memory) Status() (Status, error) {
	return Status{Leader: m.id, Members: []MemberStatus{{ID: m.id, Suffrage: "voter", State: "leader"}},
		AppliedIndex: m.fsm.Index(), CommitIndex: m.fsm.Index(), Node: m.id, Ready: true}, nil
}

// RaftAddress is empty: a memory cluster has no internal channel.
func (m *Memory) RaftAddress() string { return "" }

// RemoveMember is refused.
func (m *Memory) RemoveMember(context.Context, string) error { return errMemory }

// Feed is the change feed.
func (m *Memory) Feed() *Feed { return m.fsm.Feed() }

// NodeID is the node's id.
func (m *Memory) NodeID() string { return m.id }

// WaitIndex implements the same as Cluster's.
func (m *Memory) WaitIndex(ctx context.Context, index uint64) error {
	return m.fsm.WaitIndex(ctx, index)
}

// View is the typed view as it is now.
func (m *Memory) View() *view.View { return m.fsm.View() }

// Watch is Cluster.Watch.
func (m *Memory) Watch(ctx context.Context, w Watcher) { m.fsm.watch(ctx, w) }
