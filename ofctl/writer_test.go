package ofctl

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// batchHandler adapts functions to BatchHandler.
type batchHandler struct {
	handlerFunc
	packetIns func(ctx context.Context, sw *Switch, pis []PacketIn)
}

func (h batchHandler) PacketIns(ctx context.Context, sw *Switch, pis []PacketIn) {
	h.packetIns(ctx, sw, pis)
}

// packetOutData is what a packet-out the fake switch received carries.
func packetOutData(msg []byte) []byte {
	actions := int(binary.BigEndian.Uint16(msg[headerLen+4:]))
	_, n, err := of.DecodeMatch(msg[headerLen+8:], false)
	if err != nil {
		return nil
	}
	return msg[headerLen+8+n+actions:]
}

// TestBatchHandlerGetsWaitingPuntsTogether: punts that queue while every
// worker is busy come to a BatchHandler together, each exactly once, and
// its answers (one PacketOuts a batch) all reach the switch.
func TestBatchHandlerGetsWaitingPuntsTogether(t *testing.T) {
	noLeaks(t)
	const punts = 100
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	connected := make(chan *Switch, 1)
	srv, stop := serve(t, Config{}, batchHandler{
		handlerFunc: handlerFunc{connected: func(ctx context.Context, sw *Switch) { connected <- sw; <-ctx.Done() }},
		packetIns: func(ctx context.Context, sw *Switch, pis []PacketIn) {
			mu.Lock()
			sizes = append(sizes, len(pis))
			mu.Unlock()
			select {
			case <-release:
			case <-ctx.Done():
			}
			pos := make([]PacketOut, 0, len(pis))
			for _, pi := range pis {
				pos = append(pos, PacketOut{InPort: pi.InPort(), Actions: []of.Action{of.Output{Port: 1}}, Data: pi.Data})
			}
			if err := sw.PacketOuts(ctx, pos...); err != nil {
				t.Error(err)
			}
		},
	})
	var outs sync.Map // the first byte of the frame → seen
	var nOuts atomic.Int32
	fs := &fakeSwitch{dpid: 5, onMsg: func(fs *fakeSwitch, msg []byte) bool {
		if msg[1] == typePacketOut {
			if _, dup := outs.LoadOrStore(binary.BigEndian.Uint16(packetOutData(msg)), true); dup {
				t.Errorf("punt %d answered twice", binary.BigEndian.Uint16(packetOutData(msg)))
			}
			nOuts.Add(1)
		}
		return false
	}}
	dial(t, srv, fs)
	sw := <-connected
	var burst []byte
	for i := range punts {
		frame := make([]byte, 60)
		binary.BigEndian.PutUint16(frame, uint16(i))
		burst = append(burst, packetInMsg(uint32(10+i), uint32(1+i%8), frame)...)
	}
	fs.send(burst)
	ovstest.Eventually(t, 5*time.Second, "every punt received", func() bool { return sw.Stats().PuntsReceived.Load() == punts })
	close(release)
	ovstest.Eventually(t, 5*time.Second, "every punt answered", func() bool { return nOuts.Load() == punts })
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, n := range sizes {
		total += n
	}
	if total != punts || slices.Max(sizes) < 2 {
		t.Fatalf("batches of %v: want %d punts in all, some batches of more than one", sizes, punts)
	}
	stop()
}

// TestQueuedWritesKeepTheirOrder: goroutines each send packet-outs, then
// a barrier; when a barrier returns, the switch has had every packet-out
// its sender sent before it. Writes from many callers share system
// calls, never their order.
func TestQueuedWritesKeepTheirOrder(t *testing.T) {
	noLeaks(t)
	connected := make(chan *Switch, 1)
	srv, stop := serve(t, Config{}, handlerFunc{connected: func(ctx context.Context, sw *Switch) { connected <- sw; <-ctx.Done() }})
	var seen sync.Map
	fs := &fakeSwitch{dpid: 6, onMsg: func(fs *fakeSwitch, msg []byte) bool {
		if msg[1] == typePacketOut {
			seen.Store(binary.BigEndian.Uint32(packetOutData(msg)), true)
		}
		return false
	}}
	dial(t, srv, fs)
	sw := <-connected
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				id := uint32(g)<<16 | uint32(i)
				frame := binary.BigEndian.AppendUint32(nil, id)
				frame = append(frame, make([]byte, 56)...)
				po := PacketOut{InPort: of.PortController, Actions: []of.Action{of.Output{Port: 1}}, Data: frame}
				if err := sw.PacketOuts(context.Background(), po, po); err != nil {
					t.Error(err)
					return
				}
				if err := sw.Barrier(context.Background()); err != nil {
					t.Error(err)
					return
				}
				if _, ok := seen.Load(id); !ok {
					t.Errorf("barrier of goroutine %d returned before its packet-out %d reached the switch", g, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	stop()
}

// TestWriteWaitsForRoom: a switch that stops reading fills the write
// queue; a writer then waits for room, and gives up when its context
// ends, instead of queueing without bound.
func TestWriteWaitsForRoom(t *testing.T) {
	noLeaks(t)
	connected := make(chan *Switch, 1)
	srv, stop := serve(t, Config{}, handlerFunc{connected: func(ctx context.Context, sw *Switch) { connected <- sw; <-ctx.Done() }})
	stuck := make(chan struct{})
	fs := &fakeSwitch{dpid: 7, onMsg: func(fs *fakeSwitch, msg []byte) bool {
		if msg[1] == typePacketOut {
			<-stuck // reads nothing more
			return true
		}
		return false
	}}
	dial(t, srv, fs)
	sw := <-connected
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	po := PacketOut{InPort: of.PortController, Actions: []of.Action{of.Output{Port: 1}}, Data: make([]byte, 60000)}
	var err error
	for i := 0; i < 4*maxQueued/60000 && err == nil; i++ { // well past the queue and the sockets' buffers
		err = sw.PacketOut(ctx, po)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("writing to a switch that reads nothing: got %v, want the context's deadline", err)
	}
	close(stuck)
	stop()
}
