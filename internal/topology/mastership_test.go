package topology

import (
	"bytes"
	"testing"
)

// TestMasterOf: a bridge's master is its chassis' own node while that is a
// live member; past it, a live member by rendezvous, the same on a store
// restored from a snapshot; every change to the facts moves the epoch on,
// and nothing else does.
func TestMasterOf(t *testing.T) {
	s := New()
	i := uint64(0)
	next := func() uint64 { i++; return i }
	for _, id := range []string{"n1", "n2", "n3"} {
		if _, err := s.RegisterMember(next(), Member{ID: id, RaftAddr: id + ":7946", APIAddr: id + ":9696", OpenFlowAddr: "tcp:" + id + ":6653"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RegisterMember(next(), Member{ID: "api-only", RaftAddr: "x:1", APIAddr: "x:2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RegisterChassis(next(), ChassisSpec{Name: "hv2", EncapIP: "172.31.0.2", DatapathID: "00000000000000b2", NodeID: "n2"}); err != nil {
		t.Fatal(err)
	}
	if node, ok := s.MasterOf(0xb2); !ok || node != "n2" {
		t.Fatalf("hv2's bridge: master %q %v, want its own node n2", node, ok)
	}
	epoch := s.MastershipEpoch()
	if epoch != i {
		t.Fatalf("epoch %d after %d changes", epoch, i)
	}
	// The same chassis registered again, unchanged: the epoch stays.
	if _, err := s.RegisterChassis(next(), ChassisSpec{Name: "hv2", EncapIP: "172.31.0.2", DatapathID: "00000000000000b2", NodeID: "n2"}); err != nil {
		t.Fatal(err)
	}
	if s.MastershipEpoch() != epoch {
		t.Fatalf("an unchanged registration moved the epoch: %d -> %d", epoch, s.MastershipEpoch())
	}
	// n2 lost: another live member with an OpenFlow address takes it.
	if changed, err := s.SetMemberReachable(next(), "n2", false); !changed || err != nil {
		t.Fatal(changed, err)
	}
	node, ok := s.MasterOf(0xb2)
	if !ok || node == "n2" || node == "api-only" {
		t.Fatalf("hv2's bridge with n2 lost: %q %v", node, ok)
	}
	if s.MastershipEpoch() != i {
		t.Fatalf("epoch %d, want %d", s.MastershipEpoch(), i)
	}
	// A re-registration of n2 (it restarted) keeps the leader's word.
	if _, err := s.RegisterMember(next(), Member{ID: "n2", RaftAddr: "n2:7946", APIAddr: "n2:9696", OpenFlowAddr: "tcp:n2:6653"}); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.MasterOf(0xb2); again != node {
		t.Fatalf("n2 re-registered while unreachable: master %q, want %q still", again, node)
	}
	// A restored store decides the same, at the same epoch.
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	r, err := ReadSnapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := r.MasterOf(0xb2); again != node || r.MastershipEpoch() != s.MastershipEpoch() {
		t.Fatalf("restored: master %q epoch %d, want %q %d", again, r.MastershipEpoch(), node, s.MastershipEpoch())
	}
	// Bridges no chassis claims spread over the live members.
	seen := map[string]int{}
	for dpid := uint64(1); dpid <= 300; dpid++ {
		n, _ := s.MasterOf(dpid)
		seen[n]++
	}
	if len(seen) != 2 || seen["api-only"] > 0 || seen["n2"] > 0 {
		t.Fatalf("300 unclaimed bridges' masters: %v, want n1 and n3 only", seen)
	}
	// n2 back: its own bridge again.
	if changed, _ := s.SetMemberReachable(next(), "n2", true); !changed {
		t.Fatal("n2 back: nothing changed")
	}
	if n, _ := s.MasterOf(0xb2); n != "n2" {
		t.Fatalf("n2 back: master %q", n)
	}
	if _, err := s.SetMemberReachable(next(), "nobody", false); err == nil {
		t.Fatal("an unknown member marked unreachable")
	}

	// A node whose OpenFlow address is loopback is its bridge's only
	// controller: master of it even while the leader has it unreachable
	// (it restarted), and master of no other bridge.
	if _, err := s.RegisterMember(next(), Member{ID: "n4", RaftAddr: "n4:7946", APIAddr: "n4:9696", OpenFlowAddr: "tcp:127.0.0.1:6653"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RegisterChassis(next(), ChassisSpec{Name: "hv4", EncapIP: "172.31.0.4", DatapathID: "00000000000000b4", NodeID: "n4"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetMemberReachable(next(), "n4", false); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.MasterOf(0xb4); n != "n4" {
		t.Fatalf("hv4's bridge, its node on loopback and unreachable: master %q, want n4", n)
	}
	for dpid := uint64(1000); dpid < 1300; dpid++ {
		if n, _ := s.MasterOf(dpid); n == "n4" {
			t.Fatalf("bridge %d given to n4, which only its own bridge can reach", dpid)
		}
	}
}
