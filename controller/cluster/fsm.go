package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
)

// FSM is the raft state machine: a topology store plus the change feed.
// Apply is thin: decode, call one store method with the raft index, return
// the business error as the response.
type FSM struct {
	mu    sync.RWMutex
	store *topology.Store
	feed  *Feed
	// index is the raft index of the last command applied (or of the
	// snapshot restored): what this node has, as opposed to raft's
	// AppliedIndex, which counts entries merely handed to the FSM.
	index   atomic.Uint64
	applied chan struct{} // closed and replaced on every apply
	views   atomic.Pointer[view.View]
	// builder types only what changed since the last view; buildMu
	// serializes readers that build one under the read lock.
	buildMu sync.Mutex
	builder view.Builder
	// verify checks patched views against ones built whole and panics on
	// a difference (Config.VerifyViews); builds counts patched views.
	verify bool
	builds uint64
}

// verifyWhole is the topology size, in ports, up to which VerifyViews
// checks every view.
const verifyWhole = 2000

// NewFSM returns an empty state machine.
func NewFSM() *FSM { return newFSM(false) }

func newFSM(verify bool) *FSM {
	return &FSM{store: topology.New(), feed: NewFeed(100_000), applied: make(chan struct{}), verify: verify}
}

// Index is the raft index of the last command the FSM applied.
func (f *FSM) Index() uint64 { return f.index.Load() }

// WaitIndex blocks until the FSM has applied index (or ctx ends).
func (f *FSM) WaitIndex(ctx context.Context, index uint64) error {
	for {
		f.mu.RLock()
		ch := f.applied
		f.mu.RUnlock()
		if f.index.Load() >= index {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// advance records a new index; call it under the write lock.
func (f *FSM) advance(index uint64) {
	f.store.SetIndex(index)
	f.index.Store(index)
	close(f.applied)
	f.applied = make(chan struct{})
}

// View is the typed view of the store as it is now, built once per
// applied index and shared by every reader of that index.
func (f *FSM) View() *view.View {
	var v *view.View
	f.Read(func(s *topology.Store) { v = f.viewOf(s) })
	return v
}

// viewOf is View under the read lock.
func (f *FSM) viewOf(s *topology.Store) *view.View {
	if v := f.views.Load(); v != nil && v.Index() == s.Index() {
		return v
	}
	f.buildMu.Lock()
	defer f.buildMu.Unlock()
	if v := f.views.Load(); v != nil && v.Index() == s.Index() {
		return v
	}
	// The builder's last view and the feed's changes since it make the
	// next view by patching; without them, a walk of the whole store.
	var v *view.View
	if last := f.views.Load(); last != nil {
		if changes, err := f.feed.Since(last.Index()); err == nil {
			v = f.builder.Next(s, changes)
			f.builds++
			// A whole build per view is affordable on a small topology;
			// past verifyWhole ports, every 64th view is checked.
			if f.verify && (v.PortCount() <= verifyWhole || f.builds%64 == 0) {
				if d := view.Diff(v, view.Build(s)); d != nil {
					panic(fmt.Sprintf("view at index %d, patched from %d by %v, differs from the whole build: %s",
						s.Index(), last.Index(), changes, strings.Join(d, "; ")))
				}
			}
		}
	}
	if v == nil {
		v = f.builder.Build(s)
	}
	f.views.Store(v)
	return v
}

// Head is the view as it is now and the index of the feed's newest
// change, read together: a reader that follows the feed from there has
// missed nothing the view lacks.
func (f *FSM) Head() (*view.View, uint64) {
	var v *view.View
	var last uint64
	f.Read(func(s *topology.Store) { v, last = f.viewOf(s), f.feed.Last() })
	return v, last
}

// Changes reads, under one read lock, the view as it is now and the
// committed changes after since that led to it (ErrResync when the feed
// no longer holds them all): a view and changes that agree exactly.
func (f *FSM) Changes(since uint64) (*view.View, []topology.Change, error) {
	var v *view.View
	var out []topology.Change
	var err error
	f.Read(func(s *topology.Store) {
		v = f.viewOf(s)
		out, err = f.feed.Since(since)
	})
	return v, out, err
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
	f.store.SetTime(l.AppendedAt) // the leader's, the same on every replica
	out, decodeErr := applyCommand(f.store, l.Index, l.Data)
	f.advance(l.Index)
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
// read lock), so Persist runs without holding anything. Every write waits
// meanwhile, so the buffer is made at once as large as the store's
// records say: grown by doubling from nothing, a 36 MB snapshot (60,000
// ports) took 2-4x as long (BenchmarkFSMSnapshot), each larger copy
// allocated, zeroed and faulted in.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.snapshot(f.store.SnapshotSizeHint())
}

// snapshot serializes the store into a buffer of size bytes to start
// with; the caller holds the read lock.
func (f *FSM) snapshot(size int) (*fsmSnapshot, error) {
	b := bytesBuffer{b: make([]byte, 0, size)}
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
	// The views were of the store replaced: the next is built whole.
	f.views.Store(nil)
	f.builder = view.Builder{}
	f.advance(s.Index())
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

// Watcher is a follower of the committed changes and the views they
// make.
type Watcher struct {
	// Fn takes each batch: the view after it and its changes, or, with
	// resync, a view to take whole.
	Fn func(v *view.View, changes []topology.Change, resync bool)
	// Want, when set, says whether anyone needs views now. A view costs
	// the whole topology to build, under the FSM's read lock, which
	// holds up Apply; while Want says no, batches pass unbuilt, and the
	// first batch it says yes to is a resync.
	Want func() bool
	// Resync, when set, asks for a resync at once, changes or not (a
	// consumer that wanted nothing now does).
	Resync <-chan struct{}
}

// watch is Cluster.Watch.
func (f *FSM) watch(ctx context.Context, w Watcher) {
	want := func() bool { return w.Want == nil || w.Want() }
	var since uint64
	missed := true // the first call is a resync
	for ctx.Err() == nil {
		if missed && want() {
			var v *view.View
			v, since = f.Head()
			w.Fn(v, nil, true)
			missed = false
		}
		wctx, cancel := context.WithCancel(ctx)
		resynced := make(chan struct{})
		go func() {
			select {
			case <-w.Resync:
				close(resynced)
				cancel()
			case <-wctx.Done():
			}
		}()
		_, err := f.feed.Wait(wctx, since)
		cancel()
		select {
		case <-resynced:
			missed = true
			continue
		default:
		}
		if err != nil && !errors.Is(err, ErrResync) {
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !want() {
			// Nobody needs this batch's view: pass it unbuilt (past a
			// lost stretch of the feed too: the next view is a resync).
			since = max(since, f.feed.Last())
			missed = true
			continue
		}
		v, changes, err := f.Changes(since)
		switch {
		case errors.Is(err, ErrResync):
			v, since = f.Head()
			w.Fn(v, nil, true)
		case len(changes) > 0:
			since = changes[len(changes)-1].Index
			w.Fn(v, changes, false)
		}
	}
}
