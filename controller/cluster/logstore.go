package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/migrate"
	"go.uber.org/zap"
)

// logStore is raft's log and stable store in one.
type logStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// Where a node keeps its raft log, in its data dir.
const (
	walDir   = "raft-wal" // the write-ahead log (this release)
	boltFile = "raft.db"  // boltdb (releases before it), migrated once
)

// walSegmentSize is the size of each preallocated WAL segment: ~30,000
// of our entries. A preallocated file lets an append's fdatasync flush
// the data alone, with no filesystem journal commit — one sync of a few
// hundred microseconds, where a boltdb commit makes two and, on ext4,
// waits for whatever else the host wrote (a VM's port-up waits for one
// commit on the leader and one on a follower).
const walSegmentSize = 16 << 20

// openLogStore opens the node's raft log: the WAL, filled once from the
// boltdb log of an older release if the data dir holds one (which is
// then renamed raft.db.migrated and no longer read). The copy is made in
// a directory of its own and renamed into place when complete, so a node
// killed half-way copies again on its next start.
func openLogStore(dir string, log *zap.Logger) (logStore, error) {
	path := filepath.Join(dir, walDir)
	old := filepath.Join(dir, boltFile)
	_, walErr := os.Stat(path)
	_, boltErr := os.Stat(old)
	if walErr != nil && boltErr == nil {
		if err := migrateBolt(dir, path, old, log); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, err
	}
	w, err := wal.Open(path, wal.WithSegmentSize(walSegmentSize))
	if err != nil {
		return nil, fmt.Errorf("raft log %s: %w", path, err)
	}
	if boltErr == nil { // migrated, now or by a start that stopped before this
		if err := os.Rename(old, old+".migrated"); err != nil {
			_ = w.Close()
			return nil, err
		}
	}
	return w, nil
}

// migrateBolt copies a boltdb raft log and its stable keys (term, vote)
// into a new WAL at path.
func migrateBolt(dir, path, old string, log *zap.Logger) error {
	tmp := path + ".migrating"
	if err := os.RemoveAll(tmp); err != nil { // a copy a killed start left
		return err
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	w, err := wal.Open(tmp, wal.WithSegmentSize(walSegmentSize))
	if err != nil {
		return fmt.Errorf("raft log %s: %w", tmp, err)
	}
	b, err := raftboltdb.New(raftboltdb.Options{Path: old})
	if err != nil {
		_ = w.Close()
		return fmt.Errorf("raft log %s (to migrate): %w", old, err)
	}
	err = migrate.CopyLogs(context.Background(), w, b, 4<<20, nil)
	if err == nil {
		err = copyStable(w, b)
	}
	first, _ := w.FirstIndex()
	last, _ := w.LastIndex()
	err = errors.Join(err, b.Close(), w.Close())
	if err != nil {
		return fmt.Errorf("migrating %s: %w", old, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil { // the rename survives a crash
		_ = d.Sync()
		_ = d.Close()
	}
	log.Info("raft log migrated from boltdb to the WAL", zap.String("from", old),
		zap.Uint64("first-index", first), zap.Uint64("last-index", last))
	return nil
}

// The keys raft keeps in its stable store: the term, and the vote in it
// (a node that never voted, a non-voter, has none).
var (
	stableUint64 = [][]byte{[]byte("CurrentTerm"), []byte("LastVoteTerm")}
	stableBytes  = [][]byte{[]byte("LastVoteCand")}
)

// copyStable copies raft's stable keys that src holds to dst.
func copyStable(dst raft.StableStore, src *raftboltdb.BoltStore) error {
	for _, k := range stableUint64 {
		v, err := src.GetUint64(k)
		if errors.Is(err, raftboltdb.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := dst.SetUint64(k, v); err != nil {
			return err
		}
	}
	for _, k := range stableBytes {
		v, err := src.Get(k)
		if errors.Is(err, raftboltdb.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := dst.Set(k, v); err != nil {
			return err
		}
	}
	return nil
}
