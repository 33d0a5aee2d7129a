package cluster

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// TestBatchAppliesEachCommandAlone: a batch entry leaves the store as
// its commands applied alone, in order, at its index, on every replica; each
// command gets its own result, a refused one (a duplicate port, a
// missing network) its own error, and changes nothing while its
// neighbours are committed.
func TestBatchAppliesEachCommandAlone(t *testing.T) {
	seed := seedCommands(t)[:6] // members, networks, a subnet, two ports
	items := [][]byte{
		cmd(t, CmdPortsCreate, PortsCreate{Specs: []topology.PortSpec{{ID: "port-a", NetworkID: strp("net-1")}}}),
		cmd(t, CmdPortsCreate, PortsCreate{Specs: []topology.PortSpec{{ID: "port-2", NetworkID: strp("net-1")}}}), // exists
		cmd(t, CmdPortsCreate, PortsCreate{Specs: []topology.PortSpec{{ID: "port-b", NetworkID: strp("net-1")}}}),
		cmd(t, CmdPortsCreate, PortsCreate{Specs: []topology.PortSpec{{ID: "port-a", NetworkID: strp("net-1")}}}), // made just before
		cmd(t, CmdPortsCreate, PortsCreate{Specs: []topology.PortSpec{{ID: "port-c", NetworkID: strp("nope")}}}),
		cmd(t, CmdPortUpdate, PortUpdate{Spec: topology.PortSpec{ID: "port-b", Name: strp("named")}}),
		{byte(IgnoreUnknown | 99), '{', '}'}, // a newer node's, skipped as alone
	}
	batched, alone := NewFSM(), NewFSM()
	applyAll(t, batched, 1, seed)
	applyAll(t, alone, 1, seed)
	first := uint64(len(seed) + 1)
	r := applyAll(t, batched, first, [][]byte{encodeBatch(items)})[0]
	if r.Err != nil {
		t.Fatalf("the batch itself was refused: %v", r.Err)
	}
	results, ok := r.Value.([]applyResult)
	if !ok || len(results) != len(items) {
		t.Fatalf("batch answered %#v", r.Value)
	}
	for i, want := range []string{"", "PortExists", "", "PortExists", "NetworkNotFound", "", ""} {
		var te *topology.Error
		switch {
		case want == "" && results[i].Err != nil:
			t.Errorf("command %d: %v", i, results[i].Err)
		case want != "" && (!errors.As(results[i].Err, &te) || te.Type != want):
			t.Errorf("command %d: %v, want %s", i, results[i].Err, want)
		}
	}
	if p, _ := results[0].Value.([]topology.Port); len(p) != 1 || p[0].ID != "port-a" || p[0].MACAddress == "" {
		t.Fatalf("command 0's result: %#v", results[0].Value)
	}
	if p, _ := results[5].Value.(topology.Port); p.Name != "named" {
		t.Fatalf("command 5's result: %#v", results[5].Value)
	}
	// The same commands applied alone, one after the other at the same
	// index: the same store.
	for _, c := range items {
		alone.Apply(&raft.Log{Index: first, Type: raft.LogCommand, Data: c})
	}
	if !bytes.Equal(snapshotOf(t, batched), snapshotOf(t, alone)) {
		t.Fatal("a batch left another store than its commands applied alone")
	}
	// A second replica applying the same entry holds the same store.
	replica := NewFSM()
	applyAll(t, replica, 1, seed)
	applyAll(t, replica, first, [][]byte{encodeBatch(items)})
	if !bytes.Equal(snapshotOf(t, replica), snapshotOf(t, batched)) {
		t.Fatal("two replicas applied one batch differently")
	}
	// The feed holds the committed commands' changes, all at the batch's
	// index, and none of the refused ones'.
	ch, err := replica.Feed().Since(first - 1)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range ch {
		if c.Index != first {
			t.Fatalf("a change at %d, not the batch's %d: %v", c.Index, first, c)
		}
		if c.Resource == topology.ResourcePort {
			ids = append(ids, c.Op+" "+c.ID)
		}
	}
	if want := []string{"create port-a", "create port-b", "update port-b"}; len(ids) != len(want) || ids[0] != want[0] || ids[1] != want[1] || ids[2] != want[2] {
		t.Fatalf("feed after the batch: %v, want %v", ids, want)
	}
}

// TestBatchSurvivesSnapshots: a store a batch made round-trips through a
// snapshot, and the restored replica allocates as the original does.
func TestBatchSurvivesSnapshots(t *testing.T) {
	a := NewFSM()
	applyAll(t, a, 1, seedCommands(t)[:6])
	applyAll(t, a, 7, [][]byte{encodeBatch([][]byte{
		cmd(t, CmdPortsCreate, PortsCreate{Specs: []topology.PortSpec{{ID: "port-a", NetworkID: strp("net-1")}}}),
		cmd(t, CmdPortsCreate, PortsCreate{Specs: []topology.PortSpec{{ID: "port-b", NetworkID: strp("net-1")}}}),
	})})
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memorySink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	b := NewFSM()
	if err := b.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotOf(t, a), snapshotOf(t, b)) {
		t.Fatal("restored store differs")
	}
	next := encodeBatch([][]byte{
		cmd(t, CmdPortsCreate, PortsCreate{Specs: []topology.PortSpec{{ID: "port-c", NetworkID: strp("net-1")}}}),
		cmd(t, CmdPortsCreate, PortsCreate{Specs: []topology.PortSpec{{ID: "port-a", NetworkID: strp("net-1")}}}),
	})
	ra := applyAll(t, a, 8, [][]byte{next})[0].Value.([]applyResult)
	rb := applyAll(t, b, 8, [][]byte{next})[0].Value.([]applyResult)
	pa, pb := ra[0].Value.([]topology.Port), rb[0].Value.([]topology.Port)
	if pa[0].MACAddress != pb[0].MACAddress || pa[0].FixedIPs[0] != pb[0].FixedIPs[0] {
		t.Fatalf("allocations differ after restore: %+v vs %+v", pa[0], pb[0])
	}
	if ra[1].Err == nil || rb[1].Err == nil || ra[1].Err.Error() != rb[1].Err.Error() {
		t.Fatalf("the duplicate's errors: %v, %v", ra[1].Err, rb[1].Err)
	}
	if !bytes.Equal(snapshotOf(t, a), snapshotOf(t, b)) {
		t.Fatal("the replicas differ after the next batch")
	}
}

// TestMalformedBatchStopsTheNode: a batch that does not frame, or holds
// a batch or an undecodable command, is a bug, not input: Apply panics,
// as it does for any entry that does not decode; and no batch may be
// proposed from outside.
func TestMalformedBatchStopsTheNode(t *testing.T) {
	good := cmd(t, CmdPortDelete, ByID{ID: "x"})
	for name, entry := range map[string][]byte{
		"overrun":      {byte(CmdBatch), 10, 'x'},
		"empty":        {byte(CmdBatch)},
		"nested":       encodeBatch([][]byte{good, encodeBatch([][]byte{good})}),
		"undecodable":  encodeBatch([][]byte{good, {byte(CmdPortDelete), '{', 'x'}}),
		"unknown type": encodeBatch([][]byte{good, {99, '{', '}'}}),
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: applied", name)
				}
			}()
			NewFSM().Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: entry})
		}()
	}
	if err := checkPayload(CmdBatch, encodeBatch([][]byte{good})[1:]); err == nil {
		t.Fatal("a proposed batch passed the check")
	}
}

// fakeFuture is a raft.ApplyFuture answered at once.
type fakeFuture struct {
	raft.IndexFuture
	index uint64
	resp  any
	err   error
}

func (f fakeFuture) Error() error     { return f.err }
func (f fakeFuture) Index() uint64    { return f.index }
func (f fakeFuture) Response() any    { return f.resp }
func (f fakeFuture) Opaque() any      { return nil }
func (f fakeFuture) Unblock(any) bool { return false }

// TestGroupCommitAnswersEachCommand: commands submitted while a batch is
// out go together in the next entry, each answered with its own result
// or error; a lost leadership answers every command of the entry
// ErrNoLeader; a caller gone before its batch leaves is never proposed.
func TestGroupCommitAnswersEachCommand(t *testing.T) {
	f := NewFSM()
	applyAll(t, f, 1, seedCommands(t)[:6])
	index := uint64(6)
	release := make(chan struct{})
	var entries [][]byte
	var failNext bool
	apply := func(c []byte, _ time.Duration) raft.ApplyFuture {
		<-release
		entries = append(entries, c)
		if failNext {
			return fakeFuture{err: raft.ErrLeadershipLost}
		}
		index++
		return fakeFuture{index: index, resp: f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: c})}
	}
	g := newBatcher(func(b []*pending) { commitBatch(apply, b) }, 1)
	defer g.close()
	ctx := context.Background()
	port := func(id string) []byte {
		return cmd(t, CmdPortsCreate, PortsCreate{Specs: []topology.PortSpec{{ID: id, NetworkID: strp("net-1")}}})
	}
	first := g.submit(newPending(ctx, port("p0"))) // out alone, blocked in apply
	time.Sleep(20 * time.Millisecond)
	gone, cancel := context.WithCancel(ctx)
	ps := []*pending{
		g.submit(newPending(ctx, port("p1"))),
		g.submit(newPending(ctx, port("p0"))), // a duplicate of the one out
		g.submit(newPending(gone, port("p9"))),
		g.submit(newPending(ctx, port("p2"))),
	}
	cancel()
	close(release)
	if res, err := g.wait(first); err != nil || res.Index != 7 {
		t.Fatalf("the first: %+v %v", res, err)
	}
	want := []string{"", "PortExists", "canceled", ""}
	for i, p := range ps {
		res, err := g.wait(p)
		var te *topology.Error
		switch want[i] {
		case "":
			var ports []topology.Port
			if err != nil || res.Decode(&ports) != nil || len(ports) != 1 || res.Index != 8 {
				t.Errorf("command %d: %+v %v", i, res, err)
			}
		case "canceled":
			if !errors.Is(err, context.Canceled) {
				t.Errorf("command %d: %v, want the caller's cancel", i, err)
			}
		default:
			if !errors.As(err, &te) || te.Type != want[i] || res.Index != 8 {
				t.Errorf("command %d: %v at %d, want %s at 8", i, err, res.Index, want[i])
			}
		}
	}
	if len(entries) != 2 || CommandType(entries[1][0]) != CmdBatch {
		t.Fatalf("%d entries; the second a %d", len(entries), entries[len(entries)-1][0])
	}
	if cmds, _ := splitBatch(entries[1][1:]); len(cmds) != 3 {
		t.Fatalf("the batch holds %d commands, want the 3 whose callers waited", len(cmds))
	}
	failNext = true
	a, b := g.submit(newPending(ctx, port("p3"))), g.submit(newPending(ctx, port("p4")))
	for _, p := range []*pending{a, b} {
		if _, err := g.wait(p); !errors.Is(err, ErrNoLeader) {
			t.Fatalf("a lost leadership answered %v", err)
		}
	}
}

// TestOnlyCreatesAreGrouped: an object's revision is the index of its
// last change, so only commands that change no existing object share an
// entry.
func TestOnlyCreatesAreGrouped(t *testing.T) {
	for _, ct := range []CommandType{CmdPortsCreate, CmdNetworksCreate, CmdSubnetsCreate} {
		if !groupable(ct) {
			t.Errorf("command %d is not grouped", ct)
		}
	}
	for _, ct := range []CommandType{CmdPortUpdate, CmdPortDelete, CmdNetworkUpdate, CmdIfRevision, CmdTags, CmdSecurityGroupRuleCreate,
		CmdRouterInterfaceAdd, CmdChassisPorts, CmdFloatingIPCreate, CmdBatch} {
		if groupable(ct) {
			t.Errorf("command %d is grouped", ct)
		}
	}
}
