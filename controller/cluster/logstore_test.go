package cluster

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.uber.org/zap"
)

// TestBoltLogIsMigratedOnce: a data dir from a release that kept its raft
// log in boltdb opens with every entry, the term and the vote intact, in
// the WAL; raft.db is set aside and never read again.
func TestBoltLogIsMigratedOnce(t *testing.T) {
	dir := t.TempDir()
	b, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, boltFile)})
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := uint64(1); i <= 500; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 3, Type: raft.LogCommand, Data: []byte{byte(i), byte(i >> 8)}})
	}
	if err := b.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := b.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	if err := b.Set([]byte("LastVoteCand"), []byte("hv2")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := openLogStore(dir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	check := func(s logStore) {
		t.Helper()
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		if first != 1 || last != 500 {
			t.Fatalf("WAL holds [%d, %d], want [1, 500]", first, last)
		}
		var l raft.Log
		if err := s.GetLog(321, &l); err != nil || l.Term != 3 || l.Data[0] != 321&0xff || l.Data[1] != 321>>8 {
			t.Fatalf("entry 321: %+v %v", l, err)
		}
		if term, err := s.GetUint64([]byte("CurrentTerm")); err != nil || term != 3 {
			t.Fatalf("term %d %v, want 3", term, err)
		}
		if cand, err := s.Get([]byte("LastVoteCand")); err != nil || string(cand) != "hv2" {
			t.Fatalf("vote %q %v, want hv2", cand, err)
		}
	}
	check(s)
	if err := s.StoreLogs([]*raft.Log{{Index: 501, Term: 4, Type: raft.LogCommand}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, boltFile)); !os.IsNotExist(err) {
		t.Fatalf("raft.db still there after the migration: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, boltFile+".migrated")); err != nil {
		t.Fatalf("raft.db not set aside: %v", err)
	}
	// Reopened: the WAL alone, with what was written after the migration.
	s, err = openLogStore(dir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if last, _ := s.LastIndex(); last != 501 {
		t.Fatalf("reopened WAL ends at %d, want 501", last)
	}
}

// TestMigrationKilledHalfWayStartsOver: a start killed while copying
// leaves raft-wal.migrating beside raft.db; the next start copies again
// from scratch, and a start killed after the copy was renamed into place
// (raft.db not yet set aside) uses the copy.
func TestMigrationKilledHalfWayStartsOver(t *testing.T) {
	dir := t.TempDir()
	b, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, boltFile)})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 50; i++ {
		if err := b.StoreLog(&raft.Log{Index: i, Term: 2, Type: raft.LogCommand, Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// What a killed copy leaves: a partial WAL under the temporary name.
	half := filepath.Join(dir, walDir+".migrating")
	if err := os.MkdirAll(half, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(half, "00000000000000000001-0000000000000001.wal"), []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := openLogStore(dir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if first, _ := s.FirstIndex(); first != 1 {
		t.Fatalf("first index %d, want 1", first)
	}
	if last, _ := s.LastIndex(); last != 50 {
		t.Fatalf("last index %d after a restarted migration, want 50", last)
	}
	_ = s.Close()
	if _, err := os.Stat(half); !os.IsNotExist(err) {
		t.Fatalf("the half copy is still there: %v", err)
	}
	// Killed after the rename, before raft.db was set aside.
	if err := os.Rename(filepath.Join(dir, boltFile+".migrated"), filepath.Join(dir, boltFile)); err != nil {
		t.Fatal(err)
	}
	s, err = openLogStore(dir, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if last, _ := s.LastIndex(); last != 50 {
		t.Fatalf("last index %d, want the copy's 50", last)
	}
	if _, err := os.Stat(filepath.Join(dir, boltFile)); !os.IsNotExist(err) {
		t.Fatalf("raft.db not set aside on the second start: %v", err)
	}
}
