package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
)

// TestWatcherBuildsViewsOnlyWhenWanted: while Want says no, batches pass
// without a view being built (and Fn is not called); a Resync asks for
// the whole view at once, at the newest index, and batches after it come
// as changes again.
func TestWatcherBuildsViewsOnlyWhenWanted(t *testing.T) {
	m := NewMemory("n1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var want atomic.Bool
	resync := make(chan struct{}, 1)
	type call struct {
		index   uint64
		changes int
		resync  bool
	}
	var mu sync.Mutex
	var calls []call
	go m.Watch(ctx, Watcher{
		Fn: func(v *view.View, changes []topology.Change, rs bool) {
			mu.Lock()
			calls = append(calls, call{v.Index(), len(changes), rs})
			mu.Unlock()
		},
		Want:   want.Load,
		Resync: resync,
	})
	create := func(name string) uint64 {
		res, err := m.Propose(ctx, CmdNetworksCreate, NetworksCreate{Specs: []topology.NetworkSpec{{ID: name}}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Index
	}
	for i := range 5 {
		create(fmt.Sprint("unwanted", i))
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	if len(calls) != 0 {
		t.Fatalf("views built while nobody wanted them: %+v", calls)
	}
	mu.Unlock()
	if v := m.fsm.views.Load(); v != nil {
		t.Fatalf("a view was built (index %d) while nobody wanted one", v.Index())
	}

	want.Store(true)
	resync <- struct{}{}
	last := m.fsm.Index()
	ovstest.Eventually(t, 5*time.Second, "the resync", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) == 1
	})
	mu.Lock()
	if c := calls[0]; !c.resync || c.index != last {
		t.Fatalf("after a resync request: %+v, want the whole view at index %d", c, last)
	}
	mu.Unlock()
	idx := create("wanted")
	ovstest.Eventually(t, 5*time.Second, "the next batch", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) == 2
	})
	mu.Lock()
	defer mu.Unlock()
	if c := calls[1]; c.resync || c.index != idx || c.changes != 1 {
		t.Fatalf("a batch after the resync: %+v, want one change at index %d", c, idx)
	}
}
