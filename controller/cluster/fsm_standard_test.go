package cluster

import (
	"bytes"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// TestStampsComeFromTheLogEntry: two FSMs fed the same entries, at
// different wall-clock moments, hold the same created_at and updated_at:
// the leader's AppendedAt, never the replica's clock. A snapshot keeps
// them, and a snapshot older than them still loads.
func TestStampsComeFromTheLogEntry(t *testing.T) {
	at := time.Date(2026, 12, 1, 5, 0, 0, 999, time.FixedZone("CET", 3600))
	entries := []*raft.Log{
		{Index: 1, Type: raft.LogCommand, AppendedAt: at, Data: cmd(t, CmdNetworksCreate, NetworksCreate{Specs: []topology.NetworkSpec{{ID: "net-1"}}})},
		{Index: 2, Type: raft.LogCommand, AppendedAt: at.Add(90 * time.Second), Data: cmd(t, CmdNetworkUpdate, NetworkUpdate{Spec: topology.NetworkSpec{ID: "net-1", Name: strp("n")}})},
	}
	a, b := NewFSM(), NewFSM()
	for _, e := range entries {
		a.Apply(e)
	}
	time.Sleep(1100 * time.Millisecond) // b applies on another second
	for _, e := range entries {
		b.Apply(e)
	}
	var na, nb topology.Network
	a.Read(func(s *topology.Store) { na, _ = s.Network("net-1") })
	b.Read(func(s *topology.Store) { nb, _ = s.Network("net-1") })
	if na.CreatedAt != "2026-12-01T04:00:00Z" || na.UpdatedAt != "2026-12-01T04:01:30Z" {
		t.Fatalf("stamps %+v, want created 2026-12-01T04:00:00Z (UTC) and updated 04:01:30", na.Stamps)
	}
	if na.Stamps != nb.Stamps {
		t.Fatalf("replicas disagree: %+v and %+v", na.Stamps, nb.Stamps)
	}
	snap := snapshotOf(t, a)
	c := NewFSM()
	if err := c.Restore(nopCloser{bytes.NewReader(snap)}); err != nil {
		t.Fatal(err)
	}
	var nc topology.Network
	c.Read(func(s *topology.Store) { nc, _ = s.Network("net-1") })
	if nc.Stamps != na.Stamps {
		t.Fatalf("restored stamps %+v, want %+v", nc.Stamps, na.Stamps)
	}
	// An older release's snapshot has no stamps: it loads, without them.
	old := regexp.MustCompile(`,"created_at":"[^"]*","updated_at":"[^"]*"`).ReplaceAll(snap, nil)
	if bytes.Equal(old, snap) {
		t.Fatal("the snapshot holds no stamps to strip")
	}
	d := NewFSM()
	if err := d.Restore(nopCloser{bytes.NewReader(old)}); err != nil {
		t.Fatal(err)
	}
	var nd topology.Network
	d.Read(func(s *topology.Store) { nd, _ = s.Network("net-1") })
	if nd.ID != "net-1" || nd.Name != "n" || nd.CreatedAt != "" {
		t.Fatalf("from an older snapshot: %+v", nd)
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// TestIfRevisionIsCheckedAsApplied: the precondition and the change are
// one entry; a stale one is refused with KindPrecondition and changes
// nothing, a current one applies the command it guards.
func TestIfRevisionIsCheckedAsApplied(t *testing.T) {
	f := NewFSM()
	applyAll(t, f, 1, [][]byte{cmd(t, CmdNetworksCreate, NetworksCreate{Specs: []topology.NetworkSpec{{ID: "net-1"}}})})
	guarded := func(revs ...uint64) []byte {
		inner, _ := EncodeCommand(CmdNetworkUpdate, NetworkUpdate{Spec: topology.NetworkSpec{ID: "net-1", Name: strp("mine")}})
		return cmd(t, CmdIfRevision, IfRevision{Resource: topology.ResourceNetwork, ID: "net-1", Revisions: revs, Command: CmdNetworkUpdate, Payload: inner[1:]})
	}
	before := snapshotOf(t, f)
	r := applyAll(t, f, 2, [][]byte{guarded(7)})
	var te *topology.Error
	if !errors.As(r[0].Err, &te) || te.Kind != topology.KindPrecondition || te.Type != "RevisionNumberConstraintFailed" {
		t.Fatalf("a stale revision: %v", r[0].Err)
	}
	if after := snapshotOf(t, f); !bytes.Equal(before[bytes.IndexByte(before, '\n'):], after[bytes.IndexByte(after, '\n'):]) {
		t.Fatal("a refused precondition changed the store")
	}
	r = applyAll(t, f, 3, [][]byte{guarded(7, 1)})
	if n, ok := r[0].Value.(topology.Network); r[0].Err != nil || !ok || n.Name != "mine" || n.RevisionNumber != 3 {
		t.Fatalf("a current revision: %+v %v", r[0].Value, r[0].Err)
	}
	// Tags, guarded or not, bump the revision.
	r = applyAll(t, f, 4, [][]byte{cmd(t, CmdTags, Tags{Resource: topology.ResourceNetwork, ID: "net-1", Op: topology.TagAdd, Tags: []string{"t"}})})
	var n topology.Network
	f.Read(func(s *topology.Store) { n, _ = s.Network("net-1") })
	if r[0].Err != nil || n.RevisionNumber != 4 || len(n.Tags) != 1 {
		t.Fatalf("a tag: %v %+v", r[0].Err, n)
	}
	// A forwarded guard is checked before it is proposed: its command
	// must decode, and may not be another guard.
	if err := checkPayload(CmdIfRevision, guarded(1)[1:]); err != nil {
		t.Fatalf("a good guard: %v", err)
	}
	bad := cmd(t, CmdIfRevision, IfRevision{Resource: topology.ResourceNetwork, ID: "net-1", Revisions: []uint64{1}, Command: CmdNetworkUpdate, Payload: []byte(`{"Spec":{"Colour":1}}`)})
	if err := checkPayload(CmdIfRevision, bad[1:]); err == nil {
		t.Fatal("a guard of an undecodable command passed the check")
	}
	nested := cmd(t, CmdIfRevision, IfRevision{Resource: topology.ResourceNetwork, ID: "net-1", Revisions: []uint64{1}, Command: CmdIfRevision, Payload: guarded(1)[1:]})
	if err := checkPayload(CmdIfRevision, nested[1:]); err == nil {
		t.Fatal("a guard of a guard passed the check")
	}
}

// TestSubnetPoolsSurviveSnapshots: a stored subnet pool, tags included,
// comes back from a snapshot as it was.
func TestSubnetPoolsSurviveSnapshots(t *testing.T) {
	f := NewFSM()
	prefixes := []string{"10.10.0.0/16"}
	for i, r := range applyAll(t, f, 1, [][]byte{
		cmd(t, CmdSubnetPoolCreate, SubnetPoolCreate{Spec: topology.SubnetPoolSpec{ID: "pool-1", Name: strp("p"), Prefixes: &prefixes}}),
		cmd(t, CmdTags, Tags{Resource: topology.ResourceSubnetPool, ID: "pool-1", Op: topology.TagsReplace, Tags: []string{"a", "b"}}),
	}) {
		if r.Err != nil {
			t.Fatalf("entry %d: %v", i+1, r.Err)
		}
	}
	g := NewFSM()
	if err := g.Restore(nopCloser{bytes.NewReader(snapshotOf(t, f))}); err != nil {
		t.Fatal(err)
	}
	var a, b topology.SubnetPool
	f.Read(func(s *topology.Store) { a, _ = s.SubnetPool("pool-1") })
	g.Read(func(s *topology.Store) { b, _ = s.SubnetPool("pool-1") })
	if b.Name != "p" || len(b.Tags) != 2 || b.RevisionNumber != 2 || b.Stamps != a.Stamps || b.Prefixes[0] != "10.10.0.0/16" {
		t.Fatalf("restored %+v, had %+v", b, a)
	}
}

// TestQuotasHoldAsApplied: a limit set by one entry refuses the create
// of a later one, and comes back from a snapshot.
func TestQuotasHoldAsApplied(t *testing.T) {
	f := NewFSM()
	r := applyAll(t, f, 1, [][]byte{
		cmd(t, CmdQuotasSet, QuotasSet{Project: "p", Limits: map[string]int{topology.QuotaNetwork: 1}}),
		cmd(t, CmdNetworksCreate, NetworksCreate{Specs: []topology.NetworkSpec{{ID: "n1", ProjectID: strp("p")}}}),
		cmd(t, CmdNetworksCreate, NetworksCreate{Specs: []topology.NetworkSpec{{ID: "n2", ProjectID: strp("p")}}}),
	})
	var te *topology.Error
	if r[0].Err != nil || r[1].Err != nil || !errors.As(r[2].Err, &te) || te.Type != "OverQuota" {
		t.Fatalf("results %+v", r)
	}
	g := NewFSM()
	if err := g.Restore(nopCloser{bytes.NewReader(snapshotOf(t, f))}); err != nil {
		t.Fatal(err)
	}
	r = applyAll(t, g, 4, [][]byte{cmd(t, CmdNetworksCreate, NetworksCreate{Specs: []topology.NetworkSpec{{ID: "n3", ProjectID: strp("p")}}})})
	if !errors.As(r[0].Err, &te) || te.Type != "OverQuota" {
		t.Fatalf("after a restore: %v", r[0].Err)
	}
}
