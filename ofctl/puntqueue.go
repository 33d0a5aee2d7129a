package ofctl

import (
	"sort"
	"sync"
	"sync/atomic"
)

// PuntSource is what a punt's fairness is keyed on: by default its
// ingress port; a controller may key on the logical source port instead.
type PuntSource func(PacketIn) uint64

// SourceStats count one source's punts at the controller.
type SourceStats struct {
	Source   uint64
	Received uint64
	Dropped  uint64 // its queue was full
}

// puntQueue is a fair queue of punts: one FIFO per source, served round
// robin, so a source that punts a lot waits behind itself and not in front
// of others. Each source may hold at most perSource punts; all together at
// most total. What does not fit is dropped and counted against its source.
type puntQueue struct {
	perSource, total int
	ready            chan struct{} // signalled when a punt is queued

	mu     sync.Mutex
	queues map[uint64]*puntFIFO
	order  []uint64 // sources with queued punts, in service order
	// queued counts the punts queued: changed under mu, read by full
	// without it.
	queued atomic.Int64
	stats  map[uint64]*SourceStats
	// spare are emptied FIFOs kept for the next source that punts, so
	// that a punt costs no allocation once the queue has warmed up.
	spare []*puntFIFO
}

// maxSpareFIFOs bounds the emptied FIFOs a queue keeps.
const maxSpareFIFOs = 64

// puntFIFO is one source's punts, oldest first, in a ring that grows as
// needed (up to perSource, which push enforces).
type puntFIFO struct {
	ring    []PacketIn
	head, n int
}

func (f *puntFIFO) push(pi PacketIn) {
	if f.n == len(f.ring) {
		grown := make([]PacketIn, max(8, 2*len(f.ring)))
		for i := range f.n {
			grown[i] = f.ring[(f.head+i)%len(f.ring)]
		}
		f.ring, f.head = grown, 0
	}
	f.ring[(f.head+f.n)%len(f.ring)] = pi
	f.n++
}

func (f *puntFIFO) pop() PacketIn {
	pi := f.ring[f.head]
	f.ring[f.head] = PacketIn{} // nothing kept alive by a spare
	f.head = (f.head + 1) % len(f.ring)
	f.n--
	return pi
}

// maxTrackedSources bounds the per-source counters a session keeps.
const maxTrackedSources = 4096

func newPuntQueue(total int) *puntQueue {
	per := max(total/8, 16)
	return &puntQueue{perSource: min(per, total), total: total, ready: make(chan struct{}, 1),
		queues: map[uint64]*puntFIFO{}, stats: map[uint64]*SourceStats{}}
}

// pushAll queues punts, each from its source, under one lock and with
// one wake-up (a burst the read loop took from one read), and returns
// how many were dropped. It empties punts.
func (q *puntQueue) pushAll(punts []sourcedPunt) (dropped int) {
	q.mu.Lock()
	for i := range punts {
		if !q.pushLocked(punts[i].src, punts[i].pi) {
			dropped++
		}
		punts[i] = sourcedPunt{} // the frame is the queue's, or dropped
	}
	q.mu.Unlock()
	if dropped < len(punts) {
		q.wake()
	}
	return dropped
}

// sourcedPunt is a punt and its source (PuntSource), on its way to the
// queue.
type sourcedPunt struct {
	src uint64
	pi  PacketIn
}

// wake tells the workers a punt is queued.
func (q *puntQueue) wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pushLocked queues a punt from src under q.mu; false when it was
// dropped (its source's share or the whole queue full).
func (q *puntQueue) pushLocked(src uint64, pi PacketIn) bool {
	st := q.stats[src]
	if st == nil && len(q.stats) < maxTrackedSources {
		st = &SourceStats{Source: src}
		q.stats[src] = st
	}
	if st != nil {
		st.Received++
	}
	pending := q.queues[src]
	if pending != nil && pending.n >= q.perSource || q.queued.Load() >= int64(q.total) {
		if st != nil {
			st.Dropped++
		}
		return false
	}
	if pending == nil {
		if n := len(q.spare); n > 0 {
			pending, q.spare = q.spare[n-1], q.spare[:n-1]
		} else {
			pending = &puntFIFO{}
		}
		q.queues[src] = pending
		q.order = append(q.order, src)
	}
	pending.push(pi)
	q.queued.Add(1)
	return true
}

// full reports whether the queue, with coming punts on their way to it,
// holds as many as it may in all: the next punt would be dropped
// whatever its source, so the read loop drops it without decoding it
// (under overload, decoding punts only to drop them took the core from
// answering the queued ones). Such a punt counts in the session's
// PuntsDropped, not against its source, which is not known without
// decoding it. It reads the count without the lock, once a punt: a
// count a moment old sheds a punt more or less, and push still keeps
// the bound.
func (q *puntQueue) full(coming int) bool {
	return q.queued.Load()+int64(coming) >= int64(q.total)
}

// pop takes the next punt in round-robin order over sources.
func (q *puntQueue) pop() (PacketIn, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	pi, ok := q.popLocked()
	q.signal()
	return pi, ok
}

// popN appends to out up to n punts, in the order pop would take them.
func (q *puntQueue) popN(out []PacketIn, n int) []PacketIn {
	q.mu.Lock()
	defer q.mu.Unlock()
	for range n {
		pi, ok := q.popLocked()
		if !ok {
			break
		}
		out = append(out, pi)
	}
	q.signal()
	return out
}

func (q *puntQueue) popLocked() (PacketIn, bool) {
	if len(q.order) == 0 {
		return PacketIn{}, false
	}
	src := q.order[0]
	pending := q.queues[src]
	pi := pending.pop()
	if len(q.order) == 1 {
		q.order = q.order[:0] // its slot kept for the next source
	} else {
		q.order = q.order[1:]
	}
	if pending.n > 0 {
		q.order = append(q.order, src) // to the back of the line
	} else {
		delete(q.queues, src)
		if len(q.spare) < maxSpareFIFOs {
			q.spare = append(q.spare, pending)
		}
	}
	q.queued.Add(-1)
	return pi, true
}

// signal wakes another worker while punts are left.
func (q *puntQueue) signal() {
	if q.queued.Load() > 0 {
		q.wake()
	}
}

func (q *puntQueue) sources() []SourceStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]SourceStats, 0, len(q.stats))
	for _, st := range q.stats {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out
}
