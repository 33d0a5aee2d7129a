package cluster

import (
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// ErrResync means the changes a reader asked for are no longer in the
// feed (it fell too far behind, or a snapshot replaced the state): read the
// whole topology again and resume from the feed's current index.
var ErrResync = errors.New("change feed: changes since that index are gone; resync from a full read")

// Feed is the in-process change feed: committed changes in raft index
// order, kept in a bounded ring, with readers that block for new ones.
type Feed struct {
	mu      sync.Mutex
	ring    []topology.Change
	start   int    // ring position of the oldest change
	n       int    // changes held
	floor   uint64 // a reader at or above floor has missed nothing
	last    uint64 // index of the newest change
	changed chan struct{}
}

// NewFeed keeps up to size changes.
func NewFeed(size int) *Feed {
	return &Feed{ring: make([]topology.Change, size), changed: make(chan struct{})}
}

// Publish appends changes of one raft entry.
func (f *Feed) Publish(cs []topology.Change) {
	if len(cs) == 0 {
		return
	}
	f.mu.Lock()
	for _, c := range cs {
		if f.n == len(f.ring) {
			f.floor = f.ring[f.start].Index // its entry may be partly gone
			f.start = (f.start + 1) % len(f.ring)
			f.n--
		}
		f.ring[(f.start+f.n)%len(f.ring)] = c
		f.n++
		f.last = c.Index
	}
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// Reset forgets everything before a restored snapshot taken at index.
func (f *Feed) Reset(index uint64) {
	f.mu.Lock()
	f.start, f.n = 0, 0
	f.floor, f.last = index, index
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// Since returns the changes with index > since, in order. ErrResync when
// some of them are gone.
func (f *Feed) Since(since uint64) ([]topology.Change, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sinceLocked(since)
}

func (f *Feed) sinceLocked(since uint64) ([]topology.Change, error) {
	if since < f.floor {
		return nil, ErrResync
	}
	// The ring is in index order: find the first change after since.
	at := sort.Search(f.n, func(i int) bool { return f.ring[(f.start+i)%len(f.ring)].Index > since })
	if at == f.n {
		return nil, nil
	}
	out := make([]topology.Change, 0, f.n-at)
	for i := at; i < f.n; i++ {
		out = append(out, f.ring[(f.start+i)%len(f.ring)])
	}
	return out, nil
}

// Wait blocks until there are changes after since (or ctx ends) and
// returns them.
func (f *Feed) Wait(ctx context.Context, since uint64) ([]topology.Change, error) {
	for {
		f.mu.Lock()
		out, err := f.sinceLocked(since)
		ch := f.changed
		f.mu.Unlock()
		if err != nil || len(out) > 0 {
			return out, err
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-ch:
		}
	}
}

// Last is the index of the newest change.
func (f *Feed) Last() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}
