package ofctl

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// fakeSwitch is a scripted OpenFlow 1.5 switch for unit tests: it answers
// the handshake, table features, barriers and bundle controls, and calls
// onMsg for everything else.
type fakeSwitch struct {
	t     *testing.T
	conn  net.Conn
	dpid  uint64
	onMsg func(fs *fakeSwitch, msg []byte) (stop bool)
	adds  atomic.Int32
	wmu   sync.Mutex

	mu       sync.Mutex
	controls []uint16 // bundle control requests seen, in order
}

func (fs *fakeSwitch) bundleControls() []uint16 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]uint16(nil), fs.controls...)
}

func (fs *fakeSwitch) send(b []byte) {
	fs.wmu.Lock()
	defer fs.wmu.Unlock()
	_, _ = fs.conn.Write(b)
}

func reply(typ uint8, xid uint32, body []byte) []byte {
	b := appendHeader(nil, typ, xid)
	b = append(b, body...)
	return finish(b, 0)
}

func (fs *fakeSwitch) run() {
	defer fs.conn.Close()
	fs.send(helloMsg(0))
	for {
		msg, err := readMsg(fs.conn, nil)
		if err != nil {
			return
		}
		h, _ := parseHeader(msg)
		switch h.Type {
		case typeHello, typeSetConfig, typeEchoReply:
			continue
		case typeFeaturesReq:
			body := binary.BigEndian.AppendUint64(nil, fs.dpid)
			body = append(body, 0, 0, 0, 0, 254, 0, 0, 0)
			body = append(body, make([]byte, 8)...)
			fs.send(reply(typeFeaturesReply, h.Xid, body))
			continue
		case typeEchoRequest:
			fs.send(echoReply(msg))
			continue
		case typeMultipartReq:
			typ := binary.BigEndian.Uint16(msg[8:])
			if typ == multipartTableFeatures {
				fs.send(reply(typeMultipartReply, h.Xid, []byte{0, multipartTableFeatures, 0, 0, 0, 0, 0, 0}))
				continue
			}
		case typeBarrierReq:
			fs.send(simpleMsg(typeBarrierReply, h.Xid))
			continue
		case typeBundleControl:
			bid, ctl, _ := parseBundleCtrl(msg)
			fs.mu.Lock()
			fs.controls = append(fs.controls, ctl)
			fs.mu.Unlock()
			fs.send(bundleCtrlMsg(h.Xid, bid, ctl+1, bundleAtomic|bundleOrdered))
			continue
		case typeBundleAdd:
			fs.adds.Add(1)
		}
		if fs.onMsg != nil && fs.onMsg(fs, msg) {
			return
		}
	}
}

// handlerFunc adapts functions to Handler.
type handlerFunc struct {
	connected func(ctx context.Context, sw *Switch)
	packetIn  func(ctx context.Context, sw *Switch, pi PacketIn)
}

func (h handlerFunc) Connected(ctx context.Context, sw *Switch) {
	if h.connected != nil {
		h.connected(ctx, sw)
	}
}

func (h handlerFunc) PacketIn(ctx context.Context, sw *Switch, pi PacketIn) {
	if h.packetIn != nil {
		h.packetIn(ctx, sw, pi)
	}
}

// serve runs a server on loopback and returns it with a stop function that
// waits for every session to end.
func serve(t *testing.T, cfg Config, h Handler) (*Server, func()) {
	t.Helper()
	cfg.Addr = "tcp:127.0.0.1:0"
	srv, err := Listen(cfg, h, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return srv, stop
}

// noLeaks checks, after everything else the test registered has been
// cleaned up, that no goroutine is left behind.
func noLeaks(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
}

func dial(t *testing.T, srv *Server, fs *fakeSwitch) {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fs.t, fs.conn = t, conn
	go fs.run()
}

// connectFake serves a default Config and connects fs to it: the switch's
// session, the server, and the stop that waits for the session to end.
func connectFake(t *testing.T, fs *fakeSwitch) (*Switch, *Server, func()) {
	t.Helper()
	connected := make(chan *Switch, 1)
	srv, stop := serve(t, Config{}, handlerFunc{connected: func(ctx context.Context, sw *Switch) { connected <- sw; <-ctx.Done() }})
	dial(t, srv, fs)
	return <-connected, srv, stop
}

func manyFlows(n int) []of.FlowMod {
	mods := make([]of.FlowMod, n)
	for i := range mods {
		mods[i] = of.FlowMod{Command: of.FlowAdd, Flow: of.Flow{
			Table: 40, Priority: 100, Match: of.Match{}.Reg(pipeline.DstPortKey, uint64(i)),
			Actions: []of.Action{of.Output{Port: uint32(i%100 + 1)}},
		}}
	}
	return mods
}

// TestDisconnectMidBundle: the switch drops the connection after 100 of
// 5000 bundled flow-mods. Bundle returns ErrDisconnected, the session is
// gone from the server, and no goroutine outlives the server.
func TestDisconnectMidBundle(t *testing.T) {
	noLeaks(t)
	sw, srv, stop := connectFake(t, &fakeSwitch{dpid: 0xabc, onMsg: func(fs *fakeSwitch, msg []byte) bool {
		return fs.adds.Load() >= 100 // close mid-bundle
	}})
	err := sw.Bundle(context.Background(), manyFlows(5000))
	if !errors.Is(err, ErrDisconnected) {
		t.Fatalf("Bundle on a switch that went away: got %v, want ErrDisconnected", err)
	}
	ovstest.Eventually(t, 5*time.Second, "session removed", func() bool { _, ok := srv.Switch(0xabc); return !ok })
	if err := sw.Barrier(context.Background()); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("call after disconnect: got %v, want ErrDisconnected", err)
	}
	stop()
}

// TestBundleCommits checks the happy path against the fake: every add
// arrives, then the commit.
func TestBundleCommits(t *testing.T) {
	noLeaks(t)
	fs := &fakeSwitch{dpid: 1}
	sw, _, stop := connectFake(t, fs)
	if err := sw.Bundle(context.Background(), manyFlows(3000)); err != nil {
		t.Fatal(err)
	}
	if got := fs.adds.Load(); got != 3000 {
		t.Fatalf("switch saw %d bundled adds, want 3000", got)
	}
	stop()
}

// TestBundleRejectedFlowDiscards: the switch rejects one flow of a bundle;
// the error names that flow and the bundle is discarded, not committed.
func TestBundleRejectedFlowDiscards(t *testing.T) {
	noLeaks(t)
	fs := &fakeSwitch{dpid: 2, onMsg: func(fs *fakeSwitch, msg []byte) bool {
		h, _ := parseHeader(msg)
		if h.Type == typeBundleAdd && fs.adds.Load() == 7 {
			// OFPBIC_BAD_TABLE_ID for the seventh add, echoing its start.
			body := append([]byte{0, 3, 0, 2}, msg[:64]...)
			fs.send(reply(typeError, h.Xid, body))
		}
		return false
	}}
	sw, _, stop := connectFake(t, fs)
	mods := manyFlows(20)
	err := sw.Bundle(context.Background(), mods)
	var oe *OpenFlowError
	if !errors.As(err, &oe) {
		t.Fatalf("got %v, want an *OpenFlowError", err)
	}
	if oe.Flow == nil || !oe.Flow.Equal(mods[6].Flow) {
		t.Fatalf("error names flow %v, want the seventh flow %s", oe.Flow, mods[6].Flow)
	}
	if oe.Type != 3 || oe.Code != 2 {
		t.Fatalf("error %s, want OFPBIC_BAD_TABLE_ID", ErrorName(oe.Type, oe.Code))
	}
	got := fs.bundleControls()
	if len(got) != 2 || got[0] != bundleOpenRequest || got[1] != bundleDiscardRequest {
		t.Fatalf("bundle controls %v, want [open discard] and no commit", got)
	}
	t.Logf("error: %v", err)
	stop()
}

func packetInMsg(xid uint32, inPort uint32, data []byte) []byte {
	b := appendHeader(nil, typePacketIn, xid)
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)
	b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
	b = append(b, ReasonTableMiss, 40)
	b = binary.BigEndian.AppendUint64(b, 0x42)
	b = of.AppendMatch(b, of.Match{}.InPort(inPort).Reg(pipeline.SrcPortKey, 9))
	b = append(b, 0, 0)
	b = append(b, data...)
	return finish(b, 0)
}

// packetIn2Msg builds an NXT_PACKET_IN2 as OVS sends it: properties
// padded to 8 bytes, the metadata as bare OXMs.
func packetIn2Msg(xid uint32, inPort uint32, userdata, data []byte) []byte {
	b := appendHeader(nil, typeExperimenter, xid)
	b = binary.BigEndian.AppendUint32(b, nxVendorID)
	b = binary.BigEndian.AppendUint32(b, nxtPacketIn2)
	prop := func(typ uint16, v []byte) {
		start := len(b)
		b = binary.BigEndian.AppendUint16(b, typ)
		b = binary.BigEndian.AppendUint16(b, uint16(4+len(v)))
		b = append(b, v...)
		for (len(b)-start)%8 != 0 {
			b = append(b, 0)
		}
	}
	prop(nxpintPacket, data)
	prop(nxpintFullLen, binary.BigEndian.AppendUint32(nil, uint32(len(data))))
	prop(nxpintTableID, []byte{40})
	prop(nxpintCookie, binary.BigEndian.AppendUint64([]byte{0, 0, 0, 0}, 0x42))
	prop(nxpintReason, []byte{ReasonAction})
	m := of.AppendMatch(nil, of.Match{}.InPort(inPort).Reg(pipeline.SrcPortKey, 9))
	prop(nxpintMetadata, m[4:binary.BigEndian.Uint16(m[2:])])
	if userdata != nil {
		prop(nxpintUserdata, userdata)
	}
	return finish(b, 0)
}

func TestParsePacketIn2(t *testing.T) {
	data := []byte{1, 2, 3, 4, 5}
	pi, err := ParsePacketIn2(packetIn2Msg(7, 3, []byte("\x02abc"), data))
	src, _ := pi.Match.Get(of.FieldReg6)
	if err != nil || pi.InPort() != 3 || src.Value != 9 || string(pi.UserData) != "\x02abc" || pi.Table != 40 ||
		pi.Cookie != 0x42 || pi.Reason != ReasonAction || string(pi.Data) != string(data) || pi.TotalLen != 5 {
		t.Fatalf("%+v, %v", pi, err)
	}
	msg := packetIn2Msg(7, 3, nil, data)
	for n := 0; n < len(msg); n++ {
		cut := append([]byte(nil), msg[:n]...)
		if n >= headerLen {
			binary.BigEndian.PutUint16(cut[2:], uint16(n))
		}
		if pi, err := ParsePacketIn2(cut); err == nil && len(pi.Data) == len(data) && pi.InPort() == 3 && n < len(msg)-8 {
			t.Fatalf("a packet-in2 cut to %d of %d bytes parsed whole", n, len(msg))
		}
	}
}

// TestPuntQueueIsBoundedAndPanicsRecovered: a handler that panics on
// every punt does not kill the session; a slow handler makes the bounded
// queue drop and count; malformed punts are counted.
func TestPuntQueueIsBoundedAndPanicsRecovered(t *testing.T) {
	noLeaks(t)
	release := make(chan struct{})
	var handled atomic.Int32
	connected := make(chan *Switch, 1)
	srv, stop := serve(t, Config{PuntQueue: 4}, handlerFunc{
		connected: func(ctx context.Context, sw *Switch) { connected <- sw; <-ctx.Done() },
		packetIn: func(ctx context.Context, sw *Switch, pi PacketIn) {
			handled.Add(1)
			if pi.InPort() == 1 {
				panic("handler bug")
			}
			if pi.Cookie != 0x42 {
				t.Errorf("cookie %#x, want 0x42", pi.Cookie)
			}
			if c, _ := pi.Match.Get(of.FieldReg6); c.Value != 9 {
				t.Errorf("reg6 = %d, want 9", c.Value)
			}
			select {
			case <-release:
			case <-ctx.Done():
			}
		},
	})
	fs := &fakeSwitch{dpid: 3}
	dial(t, srv, fs)
	sw := <-connected
	frame := make([]byte, 60)
	fs.send(packetInMsg(1, 1, frame)) // panics
	ovstest.Eventually(t, 5*time.Second, "panic recovered", func() bool { return sw.Stats().HandlerPanics.Load() == 1 })
	// Well framed, malformed inside: a match longer than the message,
	// and a body too short for the fixed fields.
	bad := packetInMsg(99, 2, frame)
	binary.BigEndian.PutUint16(bad[headerLen+16+2:], 0xfff0)
	fs.send(bad)
	fs.send(finish(append(appendHeader(nil, typePacketIn, 100), 1, 2, 3), 0))
	ovstest.Eventually(t, 5*time.Second, "malformed punts counted", func() bool { return sw.Stats().PuntsMalformed.Load() == 2 })
	for i := range puntWorkers { // every worker busy, one at a time
		fs.send(packetInMsg(uint32(10+i), 2, frame))
		ovstest.Eventually(t, 5*time.Second, "a worker took the punt", func() bool { return handled.Load() == int32(2+i) })
	}
	for i := range 20 { // more than the queue takes
		fs.send(packetInMsg(uint32(10+puntWorkers+i), 2, frame))
	}
	ovstest.Eventually(t, 5*time.Second, "drops counted", func() bool { return sw.Stats().PuntsDropped.Load() > 0 })
	// With the queue full (its workers wait on release), a punt is
	// dropped before it is decoded: the malformed one counts as
	// dropped, not malformed.
	fs.send(bad)
	all := uint64(1 + 2 + puntWorkers + 20 + 1)
	ovstest.Eventually(t, 5*time.Second, "every punt read", func() bool { return sw.Stats().PuntsReceived.Load() == all })
	if !sw.punts.full(0) {
		t.Fatal("the queue is not full with every worker waiting")
	}
	close(release)
	if err := sw.Barrier(context.Background()); err != nil {
		t.Fatalf("session died: %v", err)
	}
	st := sw.Stats()
	if st.PuntsMalformed.Load() != 2 {
		t.Errorf("%d punts counted malformed, want 2 (the third came while the queue was full)", st.PuntsMalformed.Load())
	}
	if st.PuntsReceived.Load() < 21 {
		t.Errorf("received %d punts, want at least 21", st.PuntsReceived.Load())
	}
	t.Logf("received=%d dropped=%d malformed=%d panics=%d handled=%d", st.PuntsReceived.Load(),
		st.PuntsDropped.Load(), st.PuntsMalformed.Load(), st.HandlerPanics.Load(), handled.Load())
	stop()
}

// TestRejectsOpenFlow13OnlySwitch: a switch that offers only 1.3 gets no
// session.
func TestRejectsOpenFlow13OnlySwitch(t *testing.T) {
	noLeaks(t)
	srv, stop := serve(t, Config{}, handlerFunc{connected: func(ctx context.Context, sw *Switch) {
		t.Error("a 1.3-only switch must not get a session")
	}})
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	hello := []byte{0x04, typeHello, 0, 16, 0, 0, 0, 1, 0, 1, 0, 8, 0, 0, 0, 0x10}
	_, _ = conn.Write(hello)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	for {
		if _, err := conn.Read(buf); err != nil {
			break // the server closed the connection
		}
	}
	conn.Close()
	stop()
}

// flakyListener fails its first Accept, as a listener out of file
// descriptors does.
type flakyListener struct {
	net.Listener
	failed atomic.Bool
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.failed.CompareAndSwap(false, true) {
		return nil, errors.New("accept: too many open files")
	}
	return l.Listener.Accept()
}

// TestAcceptErrorIsRetried: a failing Accept does not stop the server.
func TestAcceptErrorIsRetried(t *testing.T) {
	noLeaks(t)
	connected := make(chan *Switch, 1)
	srv, err := Listen(Config{Addr: "tcp:127.0.0.1:0"}, handlerFunc{connected: func(ctx context.Context, sw *Switch) { connected <- sw; <-ctx.Done() }}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	srv.ln = &flakyListener{Listener: srv.ln}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	dial(t, srv, &fakeSwitch{dpid: 9})
	select {
	case <-connected:
	case <-time.After(5 * time.Second):
		t.Fatal("no session after an accept error")
	}
}

// TestPortStatusSignalsPortChanges: a port-status message from the switch
// signals PortChanges once (several pending signals are one), and nothing
// else does.
func TestPortStatusSignalsPortChanges(t *testing.T) {
	noLeaks(t)
	fs := &fakeSwitch{dpid: 1}
	sw, _, stop := connectFake(t, fs)
	if err := sw.Barrier(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sw.PortChanges():
		t.Fatal("port changes signalled with no port status")
	default:
	}
	// OFPT_PORT_STATUS: reason OFPPR_ADD, a port description (its
	// content is not read: the controller reads the port list again).
	body := make([]byte, 8+40)
	for range 3 {
		fs.send(reply(typePortStatus, 0, body))
	}
	if err := sw.Barrier(context.Background()); err != nil { // the switch answers in order: the statuses are read
		t.Fatal(err)
	}
	select {
	case <-sw.PortChanges():
	default:
		t.Fatal("a port status did not signal a port change")
	}
	select {
	case <-sw.PortChanges():
		t.Fatal("three port statuses signalled more than once")
	default:
	}
	stop()
}

// TestPuntsAheadOfAPartialMessageAreHandled: the read loop queues a
// burst's punts together, and never holds one back while it waits on
// the connection — punts sent with the first half of another message
// behind them are handled before the rest of it comes; a burst larger
// than a batch is handled whole; and a reply read after punts is
// delivered (the punts queued first).
func TestPuntsAheadOfAPartialMessageAreHandled(t *testing.T) {
	noLeaks(t)
	var handled atomic.Int32
	connected := make(chan *Switch, 1)
	srv, _ := serve(t, Config{PuntQueue: 1024}, handlerFunc{
		connected: func(ctx context.Context, sw *Switch) { connected <- sw; <-ctx.Done() },
		packetIn:  func(ctx context.Context, sw *Switch, pi PacketIn) { handled.Add(1) },
	})
	fs := &fakeSwitch{dpid: 4}
	dial(t, srv, fs)
	sw := <-connected
	frame := make([]byte, 60)
	var burst []byte
	for i := range 3 {
		burst = append(burst, packetInMsg(uint32(10+i), 2, frame)...)
	}
	half := packetInMsg(13, 2, frame)
	fs.send(append(burst, half[:len(half)/2]...))
	ovstest.Eventually(t, 5*time.Second, "the three whole punts handled", func() bool { return handled.Load() == 3 })
	time.Sleep(50 * time.Millisecond)
	if n := handled.Load(); n != 3 {
		t.Fatalf("%d punts handled with the fourth half sent", n)
	}
	fs.send(half[len(half)/2:])
	ovstest.Eventually(t, 5*time.Second, "the fourth handled once whole", func() bool { return handled.Load() == 4 })

	burst = burst[:0]
	for i := range puntBatch + 20 {
		burst = append(burst, packetInMsg(uint32(100+i), 2, frame)...)
	}
	fs.send(burst)
	if err := sw.Barrier(context.Background()); err != nil { // its reply read behind the burst
		t.Fatal(err)
	}
	ovstest.Eventually(t, 5*time.Second, "the whole burst handled", func() bool { return handled.Load() == int32(4+puntBatch+20) })
	if st := sw.Stats(); st.PuntsDropped.Load() != 0 || st.PuntsReceived.Load() != uint64(4+puntBatch+20) {
		t.Fatalf("received %d, dropped %d", st.PuntsReceived.Load(), st.PuntsDropped.Load())
	}
}
