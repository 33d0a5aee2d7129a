package cluster

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/topologytest"
)

func strp(s string) *string { return &s }

func cmd(t testing.TB, ct CommandType, payload any) []byte {
	t.Helper()
	b, err := EncodeCommand(ct, payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// seedCommands is a small history touching every command type.
func seedCommands(t testing.TB) [][]byte {
	net := "net-1"
	return [][]byte{
		cmd(t, CmdMemberRegister, MemberReg{Member: topology.Member{ID: "n1", RaftAddr: "127.0.0.1:1", APIAddr: "127.0.0.1:2"}}),
		cmd(t, CmdNetworksCreate, NetworksCreate{Specs: []topology.NetworkSpec{{ID: net, Name: strp("blue")}, {ID: "net-2", NetworkType: strp("gre")}}}),
		cmd(t, CmdNetworkUpdate, NetworkUpdate{Spec: topology.NetworkSpec{ID: net, Name: strp("bluer")}}),
		cmd(t, CmdSubnetsCreate, SubnetsCreate{Specs: []topology.SubnetSpec{{ID: "sub-1", NetworkID: &net, CIDR: strp("10.0.0.0/24")}}}),
		cmd(t, CmdSubnetUpdate, SubnetUpdate{Spec: topology.SubnetSpec{ID: "sub-1", Name: strp("s")}}),
		cmd(t, CmdPortsCreate, PortsCreate{Specs: []topology.PortSpec{{ID: "port-1", NetworkID: &net}, {ID: "port-2", NetworkID: &net}}}),
		cmd(t, CmdPortUpdate, PortUpdate{Spec: topology.PortSpec{ID: "port-2", HostID: strp("hv1")}}),
		cmd(t, CmdPortDelete, ByID{ID: "port-1"}),
		cmd(t, CmdRoutersCreate, RoutersCreate{Specs: []topology.RouterSpec{{ID: "r1"}}}),
		cmd(t, CmdRouterUpdate, RouterUpdate{Spec: topology.RouterSpec{ID: "r1", Name: strp("edge")}}),
		cmd(t, CmdRouterInterfaceAdd, RouterIface{Router: "r1", Subnet: "sub-1", PortID: "rport-1"}),
		cmd(t, CmdChassisRegister, ChassisReg{Spec: topology.ChassisSpec{Name: "hv1", EncapIP: "172.31.0.1", Encaps: []string{"vxlan", "gre"}}}),
		cmd(t, CmdChassisPorts, ChassisPorts{Chassis: "hv1", Bindings: []topology.Binding{{PortID: "port-2", OFPort: 3, Active: true}}}),
		cmd(t, CmdRouterInterfaceRemove, RouterIface{Router: "r1", Subnet: "sub-1"}),
		cmd(t, CmdRouterDelete, ByID{ID: "r1"}),
		cmd(t, CmdNetworkDelete, ByID{ID: "net-2"}),
	}
}

func applyAll(t testing.TB, f *FSM, first uint64, cmds [][]byte) []applyResult {
	t.Helper()
	var out []applyResult
	for i, c := range cmds {
		r, _ := f.Apply(&raft.Log{Index: first + uint64(i), Type: raft.LogCommand, Data: c}).(applyResult)
		out = append(out, r)
	}
	return out
}

func snapshotOf(t testing.TB, f *FSM) []byte {
	t.Helper()
	var b bytes.Buffer
	f.Read(func(s *topology.Store) {
		if err := s.WriteSnapshot(&b); err != nil {
			t.Fatal(err)
		}
	})
	return b.Bytes()
}

// TestFSMAppliesLogEntries feeds entries straight into Apply.
func TestFSMAppliesLogEntries(t *testing.T) {
	f := NewFSM()
	for i, r := range applyAll(t, f, 1, seedCommands(t)) {
		if r.Err != nil {
			t.Fatalf("entry %d: %v", i+1, r.Err)
		}
	}
	var ports []topology.Port
	f.Read(func(s *topology.Store) { ports = s.Ports() })
	if len(ports) != 1 || ports[0].ID != "port-2" || ports[0].HostID != "hv1" || ports[0].FixedIPs[0].IPAddress != "10.0.0.3" {
		t.Fatalf("ports after the history: %+v", ports)
	}
	// A business error comes back as the response and changes nothing.
	before := snapshotOf(t, f)
	r := applyAll(t, f, 100, [][]byte{cmd(t, CmdPortsCreate, PortsCreate{Specs: []topology.PortSpec{{ID: "port-2", NetworkID: strp("net-1")}}})})
	var te *topology.Error
	if !errors.As(r[0].Err, &te) || te.Type != "PortExists" {
		t.Fatalf("duplicate port: %v", r[0].Err)
	}
	if after := snapshotOf(t, f); !bytes.Equal(before[bytes.IndexByte(before, '\n'):], after[bytes.IndexByte(after, '\n'):]) {
		t.Fatal("a rejected command changed the store")
	}
	// Unknown commands: skipped with the ignore bit, fatal without.
	if got := f.Apply(&raft.Log{Index: 101, Type: raft.LogCommand, Data: []byte{byte(IgnoreUnknown | 99), '{', '}'}}); got != nil {
		t.Fatalf("ignorable unknown command returned %v", got)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("an unknown command without the ignore bit must stop the node")
			}
		}()
		f.Apply(&raft.Log{Index: 102, Type: raft.LogCommand, Data: []byte{99, '{', '}'}})
	}()
	// Deleting a network publishes its subnets' deletion too.
	applyAll(t, f, 200, [][]byte{
		cmd(t, CmdNetworksCreate, NetworksCreate{Specs: []topology.NetworkSpec{{ID: "net-9"}}}),
		cmd(t, CmdSubnetsCreate, SubnetsCreate{Specs: []topology.SubnetSpec{{ID: "sub-9", NetworkID: strp("net-9"), CIDR: strp("10.9.0.0/24")}}}),
		cmd(t, CmdNetworkDelete, ByID{ID: "net-9"}),
	})
	cascade, _ := f.Feed().Since(201)
	if len(cascade) != 2 || cascade[0].Resource != "subnet" || cascade[0].Op != "delete" || cascade[1].Resource != "network" {
		t.Fatalf("network delete published %v", cascade)
	}
	applyAll(t, f, 203, [][]byte{cmd(t, CmdMemberRemove, ByID{ID: "n1"})})
	// The feed holds the changes in index order.
	ch, err := f.Feed().Since(0)
	if err != nil || len(ch) == 0 || ch[0].Resource != "member" || ch[len(ch)-1].Resource != "member" || ch[len(ch)-1].Op != "delete" ||
		ch[len(ch)-1].Index != 203 {
		t.Fatalf("feed: %v %v", ch, err)
	}
}

type memorySink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memorySink) ID() string    { return "mem" }
func (s *memorySink) Close() error  { return nil }
func (s *memorySink) Cancel() error { s.cancelled = true; return nil }

// TestFSMSnapshotRoundTrip: Snapshot, Persist, Restore into a fresh FSM;
// both hold the same store and make the same next allocation, and the
// restored feed knows where its history starts.
func TestFSMSnapshotRoundTrip(t *testing.T) {
	a := NewFSM()
	cmds := seedCommands(t)
	applyAll(t, a, 1, cmds[:8])
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memorySink
	if err := snap.Persist(&sink); err != nil || sink.cancelled {
		t.Fatalf("persist: %v", err)
	}
	b := NewFSM()
	if err := b.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotOf(t, a), snapshotOf(t, b)) {
		t.Fatal("restored store differs")
	}
	next := cmd(t, CmdPortsCreate, PortsCreate{Specs: []topology.PortSpec{{ID: "port-9", NetworkID: strp("net-1")}}})
	ra := applyAll(t, a, 9, [][]byte{next})[0]
	rb := applyAll(t, b, 9, [][]byte{next})[0]
	pa, pb := ra.Value.([]topology.Port), rb.Value.([]topology.Port)
	if pa[0].MACAddress != pb[0].MACAddress || pa[0].FixedIPs[0] != pb[0].FixedIPs[0] || pa[0].Key != pb[0].Key {
		t.Fatalf("allocations differ after restore: %+v vs %+v", pa[0], pb[0])
	}
	if _, err := b.Feed().Since(7); !errors.Is(err, ErrResync) {
		t.Fatalf("feed before the snapshot must ask for a resync, got %v", err)
	}
	if ch, err := b.Feed().Since(8); err != nil || len(ch) != 1 || ch[0].ID != "port-9" {
		t.Fatalf("feed from the snapshot on: %v %v", ch, err)
	}
}

// FuzzApplyCommand: whatever bytes a log entry holds, applying them either
// works, is rejected with a business error, or fails to decode — the store
// never panics, and stays snapshot-consistent.
func FuzzApplyCommand(f *testing.F) {
	for _, c := range seedCommands(f) {
		f.Add(c)
	}
	f.Add([]byte{byte(CmdPortsCreate), '{', '}'})
	f.Add([]byte{byte(CmdPortsCreate), 'n', 'u', 'l', 'l'})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := topology.New()
		for i, c := range seedCommands(t)[:7] {
			if _, err := applyCommand(s, uint64(i+1), c); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := applyCommand(s, 50, data); err != nil {
			return
		}
		var a, b bytes.Buffer
		if err := s.WriteSnapshot(&a); err != nil {
			t.Fatal(err)
		}
		r, err := topology.ReadSnapshot(bytes.NewReader(a.Bytes()))
		if err != nil {
			t.Fatalf("the store wrote a snapshot it cannot read: %v", err)
		}
		_ = r.WriteSnapshot(&b)
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Fatal("snapshot does not round-trip")
		}
	})
}

// TestEveryCommandHasAPayload: a forwarded command is checked against
// its payload type before it is proposed; every handler has one, and a
// payload with a field its type lacks is refused.
func TestEveryCommandHasAPayload(t *testing.T) {
	for ct := range handlers {
		if _, ok := payloads[ct]; !ok && ct != CmdBatch { // framed, and never proposed
			t.Errorf("command %d has a handler and no payload type", ct)
		}
	}
	if err := checkPayload(CmdPortDelete, []byte(`{"ID":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if err := checkPayload(CmdPortDelete, []byte(`{"ID":"x","Evil":1}`)); err == nil {
		t.Fatal("an unknown field passed")
	}
	if err := checkPayload(200, []byte(`{}`)); err == nil {
		t.Fatal("an unknown command passed")
	}
}

// BenchmarkFSMSnapshot is how long raft's snapshot holds up the FSM (and
// so every write) at 60,000 ports: its buffer grown as it fills (as it
// was before) and made at once as large as the store's records say.
func BenchmarkFSMSnapshot(b *testing.B) {
	f := newFSM(false)
	f.store = topologytest.Large(b, 1000, 60_000).Store
	for _, tc := range []struct {
		name string
		size int
	}{{"grown-as-it-fills", 0}, {"sized-by-the-records", f.store.SnapshotSizeHint()}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				snap, err := f.snapshot(tc.size)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(snap.data)))
			}
		})
	}
}

// TestSnapshotBufferIsSizedAtOnce: the store's records say enough room
// for the whole snapshot of a topology like the scale benchmark's (the
// buffer never grew), not several times more; and what it holds restores
// to the same store.
func TestSnapshotBufferIsSizedAtOnce(t *testing.T) {
	f := newFSM(false)
	f.store = topologytest.Large(t, 10, 200).Store
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	data := snap.(*fsmSnapshot).data
	hint := f.store.SnapshotSizeHint()
	if cap(data) != hint || len(data) < hint/2 {
		t.Errorf("snapshot of %d bytes in a buffer of %d; the records said %d", len(data), cap(data), hint)
	}
	g := newFSM(false)
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	again, err := g.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.(*fsmSnapshot).data, data) {
		t.Error("the restored store's snapshot differs from the one it was restored from")
	}
}
