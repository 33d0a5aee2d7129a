package ofctl

import "testing"

// TestPuntQueueIsFair: a source that floods fills only its own share and
// waits behind itself; another source's punts are served within one round.
func TestPuntQueueIsFair(t *testing.T) {
	q := newPuntQueue(64) // an eighth is 8; the floor is 16
	if q.perSource != 16 {
		t.Fatalf("per-source bound %d, want 16", q.perSource)
	}
	for i := range 100 {
		pushOne(q, 1, PacketIn{TotalLen: uint32(i)})
	}
	for i := range 3 {
		if !pushOne(q, 2, PacketIn{TotalLen: uint32(1000 + i)}) {
			t.Fatalf("source 2's punt %d dropped behind source 1's flood", i)
		}
	}
	var order []uint64
	for {
		pi, ok := q.pop()
		if !ok {
			break
		}
		src := uint64(1)
		if pi.TotalLen >= 1000 {
			src = 2
		}
		order = append(order, src)
	}
	if len(order) != 19 {
		t.Fatalf("served %d punts, want 16 of source 1 and 3 of source 2", len(order))
	}
	for i, want := range []uint64{1, 2, 1, 2, 1, 2, 1, 1} {
		if order[i] != want {
			t.Fatalf("service order %v: position %d is source %d, want %d", order, i, order[i], want)
		}
	}
	st := q.sources()
	if len(st) != 2 || st[0] != (SourceStats{Source: 1, Received: 100, Dropped: 84}) || st[1] != (SourceStats{Source: 2, Received: 3}) {
		t.Fatalf("source stats %+v", st)
	}
}

// TestPuntQueueTotalBound: many sources together cannot exceed the total.
func TestPuntQueueTotalBound(t *testing.T) {
	q := newPuntQueue(32)
	dropped := 0
	for src := range uint64(10) {
		for range 10 {
			if !pushOne(q, src, PacketIn{}) {
				dropped++
			}
		}
	}
	if q.queued.Load() != 32 || dropped != 68 {
		t.Fatalf("queued %d, dropped %d; want 32 and 68", q.queued.Load(), dropped)
	}
}

// TestPuntQueueKeepsEachSourcesOrder: a source's punts come out in the
// order they went in while its ring wraps and grows under interleaved
// pushes and pops, and once the queue has warmed up a punt queued and
// taken costs no allocation (an emptied source's ring is reused).
func TestPuntQueueKeepsEachSourcesOrder(t *testing.T) {
	q := newPuntQueue(1024) // 128 a source
	next, want := uint32(0), uint32(0)
	for round := range 200 {
		for range round%13 + 1 {
			if pushOne(q, 7, PacketIn{TotalLen: next}) {
				next++
			}
		}
		for range round % 11 {
			pi, ok := q.pop()
			if !ok {
				break
			}
			if pi.TotalLen != want {
				t.Fatalf("round %d: got punt %d, want %d", round, pi.TotalLen, want)
			}
			want++
		}
	}
	for pi, ok := q.pop(); ok; pi, ok = q.pop() {
		if pi.TotalLen != want {
			t.Fatalf("draining: got punt %d, want %d", pi.TotalLen, want)
		}
		want++
	}
	if want != next {
		t.Fatalf("took %d punts of %d queued", want, next)
	}
	if n := testing.AllocsPerRun(1000, func() {
		pushOne(q, 7, PacketIn{})
		q.pop()
	}); n != 0 {
		t.Fatalf("a warm queue allocates %v a punt", n)
	}
}

// pushOne queues one punt as the read loop queues a burst; false when it
// was dropped.
func pushOne(q *puntQueue, src uint64, pi PacketIn) bool {
	return q.pushAll([]sourcedPunt{{src, pi}}) == 0
}
