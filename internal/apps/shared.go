package apps

import (
	"runtime"
	"sync"
	"unsafe"
	"weak"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// sharedFlows holds each distinct cookie object's flows once per node (a
// Pipeline has one, and a node one Pipeline): the
// bridges of the chassis hosting a network compute the same flows for
// its ports (a remote port's l2pop and ARP flows differ between them only
// if the tunnel or the chassis address does), and a node mastering
// hundreds of bridges would otherwise hold each of them hundreds of times,
// with their matches and actions. A bridge's Desired keeps the shared
// slice; the table keeps only weak pointers, so a variant no bridge holds
// any more is collected, and its entry goes with it.
//
// A shared slice is never written: its length is its capacity (an append
// copies), and the flows in it are values (Desired hands out copies).
type sharedFlows struct {
	mu sync.Mutex
	m  map[uint64][]variant // cookie object → the variants its bridges hold
}

func newSharedFlows() *sharedFlows { return &sharedFlows{m: map[uint64][]variant{}} }

// variant is one content of an object's flows: a weak pointer to its
// slice's first flow (the start of its own allocation) and its length.
type variant struct {
	first weak.Pointer[of.Flow]
	n     int
}

// maxVariants bounds the variants compared for one object: past it a
// bridge's flows stay its own (a local port's flows are one of a kind).
const maxVariants = 8

// share returns the node's copy of an object's flows equal to fs, or
// makes fs's content that copy. fs is not kept.
func (s *sharedFlows) share(obj uint64, fs []of.Flow) []of.Flow {
	if len(fs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.m[obj]
	live := vs[:0]
	var found []of.Flow
	for _, v := range vs {
		p := v.first.Value()
		if p == nil {
			continue // collected: the cleanup may not have run yet
		}
		live = append(live, v)
		if found == nil && v.n == len(fs) {
			if c := unsafe.Slice(p, v.n); flowsEqual(c, fs) {
				found = c
			}
		}
	}
	clear(vs[len(live):])
	vs = live
	if found == nil {
		found = make([]of.Flow, len(fs)) // its own allocation: &found[0] is its start
		copy(found, fs)
		if len(vs) < maxVariants {
			vs = append(vs, variant{weak.Make(&found[0]), len(found)})
			runtime.AddCleanup(&found[0], s.prune, obj)
		}
	}
	if len(vs) == 0 {
		delete(s.m, obj)
	} else {
		s.m[obj] = vs
	}
	return found
}

// prune drops an object's collected variants.
func (s *sharedFlows) prune(obj uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.m[obj]
	live := vs[:0]
	for _, v := range vs {
		if v.first.Value() != nil {
			live = append(live, v)
		}
	}
	clear(vs[len(live):])
	if len(live) == 0 {
		delete(s.m, obj)
	} else {
		s.m[obj] = live
	}
}

func flowsEqual(a, b []of.Flow) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}
