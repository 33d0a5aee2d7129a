package ofctl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// Switch is one OpenFlow session with a bridge, keyed by datapath id. Its
// methods are safe for concurrent use; each takes a context and returns
// ErrDisconnected once the session has ended.
type Switch struct {
	dpid    uint64
	gen     uint64 // increases with every session the server accepts
	nTables uint8
	conn    net.Conn
	log     *zap.Logger

	// out is what is queued for conn; the flusher writes all of it in
	// one system call, so the messages of many callers (a batch of
	// punts' answers, a bundle's parts, an echo reply) share one, in the
	// order they were queued.
	omu     sync.Mutex
	out     []byte
	drained chan struct{} // closed when the flusher takes out (made by a writer waiting for room)
	flushCh chan struct{}

	xid      atomic.Uint32
	bundleID atomic.Uint32
	lastRecv atomic.Int64 // unix nanoseconds: when bytes last came (receiving)

	mu      sync.Mutex
	pending map[uint32]*pending
	ranges  []*errorSink

	done    chan struct{} // closed when the session ends
	endOnce sync.Once
	endErr  error

	punts   *puntQueue
	source  PuntSource
	echoes  chan []byte  // echo replies, written by the keepalive goroutine
	bundles atomic.Int32 // bundles in flight
	stats   Stats
	// roleStatus is the last role status the switch sent (role in the
	// top byte, generation id below); zero: none.
	roleStatus atomic.Uint64
	// portChanged is signalled when the switch reports a port added,
	// removed or changed (OFPT_PORT_STATUS).
	portChanged chan struct{}
}

// PortChanges is signalled (at most one signal waits) when the switch
// reports that a port came, went or changed: a controller that keeps the
// switch's port list reads it again then, instead of polling for it.
func (s *Switch) PortChanges() <-chan struct{} { return s.portChanged }

// Stats are a session's punt counters.
type Stats struct {
	PuntsReceived  atomic.Uint64
	PuntsDropped   atomic.Uint64 // the source's queue, or the whole queue, was full
	PuntsMalformed atomic.Uint64 // could not be decoded
	HandlerPanics  atomic.Uint64
}

// pending collects the replies to one request xid.
type pending struct {
	ch   chan []byte
	gone chan struct{}
}

// errorSink collects errors for a block of xids (the messages of a bundle).
type errorSink struct {
	lo, hi uint32
	errs   chan []byte
}

// DPID is the switch's datapath id.
func (s *Switch) DPID() uint64 { return s.dpid }

// Generation orders the sessions of one server: a reconnect from the same
// datapath gets a higher generation than the session it replaces.
func (s *Switch) Generation() uint64 { return s.gen }

// NTables is the number of tables the switch reported.
func (s *Switch) NTables() uint8 { return s.nTables }

// RemoteAddr is the switch's end of the connection.
func (s *Switch) RemoteAddr() string { return s.conn.RemoteAddr().String() }

// Done is closed when the session ends.
func (s *Switch) Done() <-chan struct{} { return s.done }

// Err says why the session ended (nil while it runs).
func (s *Switch) Err() error {
	select {
	case <-s.done:
		return s.endErr
	default:
		return nil
	}
}

// Stats returns the session's counters.
func (s *Switch) Stats() *Stats { return &s.stats }

// PuntSources are the session's punt counters per source (see
// Config.PuntSource), for the first sources seen.
func (s *Switch) PuntSources() []SourceStats { return s.punts.sources() }

func (s *Switch) String() string { return fmt.Sprintf("%016x", s.dpid) }

// end closes the session once, recording why.
func (s *Switch) end(err error) {
	s.endOnce.Do(func() {
		s.endErr = err
		close(s.done)
		_ = s.conn.Close()
	})
}

// nextXids reserves n consecutive xids and returns the first. A block never
// wraps past 2^32 (error ranges compare lo <= xid <= hi) and never holds 0.
func (s *Switch) nextXids(n uint32) uint32 {
	for {
		cur := s.xid.Load()
		next := cur + n
		if next < cur { // would wrap: restart low
			s.xid.CompareAndSwap(cur, 100)
			continue
		}
		if s.xid.CompareAndSwap(cur, next) {
			return cur + 1
		}
	}
}

func (s *Switch) register(xid uint32) *pending {
	p := &pending{ch: make(chan []byte, 16), gone: make(chan struct{})}
	s.mu.Lock()
	s.pending[xid] = p
	s.mu.Unlock()
	return p
}

func (s *Switch) unregister(xid uint32, p *pending) {
	s.mu.Lock()
	delete(s.pending, xid)
	s.mu.Unlock()
	close(p.gone)
}

func (s *Switch) addSink(lo, hi uint32) *errorSink {
	// One error per request of the range at most, up to 64 (bundle adds
	// beyond those are the bundle's problem, not each its own).
	k := &errorSink{lo: lo, hi: hi, errs: make(chan []byte, min(max(int(hi-lo)+1, 1), 64))}
	s.mu.Lock()
	s.ranges = append(s.ranges, k)
	s.mu.Unlock()
	return k
}

// addSinkAll is addSink with room for an error from every request of the
// range (meter-mods: each one's error matters).
func (s *Switch) addSinkAll(lo, hi uint32) *errorSink {
	k := &errorSink{lo: lo, hi: hi, errs: make(chan []byte, int(hi-lo)+1)}
	s.mu.Lock()
	s.ranges = append(s.ranges, k)
	s.mu.Unlock()
	return k
}

func (s *Switch) removeSink(k *errorSink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.ranges {
		if r == k {
			s.ranges = append(s.ranges[:i], s.ranges[i+1:]...)
			return
		}
	}
}

// deliver hands a reply to whoever waits for its xid.
func (s *Switch) deliver(xid uint32, msg []byte) bool {
	s.mu.Lock()
	p := s.pending[xid]
	var sink *errorSink
	if p == nil {
		for _, r := range s.ranges {
			if xid >= r.lo && xid <= r.hi {
				sink = r
				break
			}
		}
	}
	s.mu.Unlock()
	switch {
	case p != nil:
		select {
		case p.ch <- msg:
		case <-p.gone:
		case <-s.done:
		}
		return true
	case sink != nil:
		select {
		case sink.errs <- msg:
		default: // the first 64 errors of a bundle say enough
		}
		return true
	}
	return false
}

// roundTrip writes b, which holds the request xid (alone, or among
// other messages whose replies, if any, go elsewhere), and collects the
// request's replies until last says one is the last.
func (s *Switch) roundTrip(ctx context.Context, xid uint32, b []byte, what string, last func([]byte) bool) ([][]byte, error) {
	p := s.register(xid)
	defer s.unregister(xid, p)
	if err := s.write(ctx, b); err != nil {
		return nil, err
	}
	var replies [][]byte
	size := 0
	for {
		select {
		case msg := <-p.ch:
			if size += len(msg); size > maxReplyBytes {
				return nil, fmt.Errorf("ofctl: %s: reply exceeds %d bytes", what, maxReplyBytes)
			}
			if msg[1] == typeError {
				e, err := parseError(msg)
				if err != nil {
					return nil, fmt.Errorf("ofctl: %s: malformed error reply: %w", what, err)
				}
				return replies, &OpenFlowError{DPID: s.dpid, Type: e.Type, Code: e.Code, Request: what}
			}
			replies = append(replies, msg)
			if last(msg) {
				return replies, nil
			}
		case <-s.done:
			return nil, ErrDisconnected
		case <-ctx.Done():
			return nil, fmt.Errorf("ofctl: %s: %w", what, ctx.Err())
		}
	}
}

// maxReplyBytes bounds a multi-part reply (a flow dump of a million flows
// is about 150 MB).
const maxReplyBytes = 512 << 20

func isType(t uint8) func([]byte) bool { return func(m []byte) bool { return m[1] == t } }

func multipartDone(m []byte) bool {
	if m[1] != typeMultipartReply {
		return false
	}
	_, flags, _, err := parseMultipart(m)
	return err != nil || flags&multipartReplyMore == 0
}

// Barrier waits until the switch has processed everything sent before it.
func (s *Switch) Barrier(ctx context.Context) error {
	xid := s.nextXids(1)
	_, err := s.roundTrip(ctx, xid, simpleMsg(typeBarrierReq, xid), "barrier", isType(typeBarrierReply))
	return err
}

// Dump is the content of a switch's flow tables.
type Dump struct {
	Flows []of.Flow
	// Undecodable are flows the model cannot represent (installed by
	// someone else); they still carry table, priority and cookie.
	Undecodable []Undecodable
}

// Undecodable is a dumped flow the model could not read.
type Undecodable struct {
	Flow of.Flow
	Err  error
}

// Cookies returns the cookie of every dumped flow, decodable or not.
func (d Dump) Cookies() []uint64 {
	out := make([]uint64, 0, len(d.Flows)+len(d.Undecodable))
	for _, f := range d.Flows {
		out = append(out, f.Cookie)
	}
	for _, u := range d.Undecodable {
		out = append(out, u.Flow.Cookie)
	}
	return out
}

// DumpFlows reads every flow of every table back into of.Flow.
func (s *Switch) DumpFlows(ctx context.Context) (Dump, error) {
	xid := s.nextXids(1)
	replies, err := s.roundTrip(ctx, xid, flowDescRequest(xid), "flow dump", multipartDone)
	if err != nil {
		return Dump{}, err
	}
	var d Dump
	for _, msg := range replies {
		typ, _, body, err := parseMultipart(msg)
		if err != nil || typ != multipartFlowDesc {
			return Dump{}, fmt.Errorf("ofctl: switch %s: malformed flow dump reply", s)
		}
		for len(body) > 0 {
			f, n, err := of.DecodeFlowDesc(body)
			if n == 0 {
				return Dump{}, fmt.Errorf("ofctl: switch %s: malformed flow dump entry: %w", s, err)
			}
			if err != nil {
				d.Undecodable = append(d.Undecodable, Undecodable{Flow: f, Err: err})
			} else {
				d.Flows = append(d.Flows, f)
			}
			body = body[n:]
		}
	}
	return d, nil
}

// SetTableNames names tables on the switch, so that
// `ovs-ofctl dump-flows --names` prints them.
//
// OVS refuses a change to a table's max_entries, which follows the
// bridge's flow_limit, so the current features are read first and the
// request repeats them.
func (s *Switch) SetTableNames(ctx context.Context, names map[uint8]string) error {
	if len(names) == 0 {
		return nil
	}
	xid := s.nextXids(1)
	replies, err := s.roundTrip(ctx, xid, multipartMsg(xid, multipartTableFeatures, nil), "table features", multipartDone)
	if err != nil {
		return err
	}
	maxEntries := map[uint8]uint32{}
	for _, msg := range replies {
		_, _, body, err := parseMultipart(msg)
		if err != nil {
			return fmt.Errorf("ofctl: switch %s: malformed table features reply", s)
		}
		if err := parseTableMaxEntries(body, maxEntries); err != nil {
			return fmt.Errorf("ofctl: switch %s: %w", s, err)
		}
	}
	xid = s.nextXids(1)
	_, err = s.roundTrip(ctx, xid, tableNamesRequest(xid, names, maxEntries), "table names", multipartDone)
	return err
}

// PacketOut sends a packet through the switch. To re-inject a punted
// packet into the pipeline, use InPort = the packet's ingress port and
// Actions = Output{Port: of.PortTable}.
func (s *Switch) PacketOut(ctx context.Context, po PacketOut) error {
	xid := s.nextXids(1)
	msg, err := packetOutMsg(xid, po)
	if err != nil {
		return fmt.Errorf("ofctl: switch %s: %w", s, err)
	}
	return s.write(ctx, msg)
}

// PacketOuts sends packet-outs in one write: a batch of punts' answers
// costs one system call, not one each. One the model cannot encode stops
// the batch before anything is sent.
func (s *Switch) PacketOuts(ctx context.Context, pos ...PacketOut) error {
	if len(pos) == 0 {
		return nil
	}
	xid := s.nextXids(uint32(len(pos)))
	return s.queue(ctx, func(b []byte) ([]byte, error) {
		for i, po := range pos {
			var err error
			if b, err = appendPacketOut(b, xid+uint32(i), po); err != nil {
				return b, fmt.Errorf("ofctl: switch %s: %w", s, err)
			}
		}
		return b, nil
	})
}

// readMsg reads one whole message into buf's array (grown if it is too
// small) and returns it.
func readMsg(r io.Reader, buf []byte) ([]byte, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[2:]))
	if n < headerLen {
		return nil, fmt.Errorf("openflow: message length %d below header size", n)
	}
	msg := append(buf[:0], hdr[:]...)
	msg = append(msg, make([]byte, n-headerLen)...)
	if _, err := io.ReadFull(r, msg[headerLen:]); err != nil {
		return nil, err
	}
	return msg, nil
}

// wholeMessageBuffered reports whether r holds a whole message: reading
// it will not wait on the connection.
func wholeMessageBuffered(r *bufio.Reader) bool {
	n := r.Buffered()
	if n < headerLen {
		return false
	}
	hdr, _ := r.Peek(headerLen)
	return n >= int(binary.BigEndian.Uint16(hdr[2:]))
}

// readBuffer is how much the read loop takes from the connection at
// once: a burst of punts is one system call, not two a message. 16 KB
// holds a window of 64 ARP punts (about 10 KB); a burst of larger frames
// takes a read or two more. A node holds one a switch (334 at 1,000
// chassis: 5 MB, where 64 KB took 21). A longer message (a flow dump's
// reply) is read through it whole.
const readBuffer = 16 << 10

// receiving is the connection as the read loop reads it: each read that
// brings bytes marks the session alive. That is once a burst, not once a
// message (a liveness check's clock is seconds apart), and it holds while
// a long reply streams in, whatever its messages' boundaries.
type receiving struct {
	conn net.Conn
	last *atomic.Int64
}

func (r receiving) Read(b []byte) (int, error) {
	n, err := r.conn.Read(b)
	if n > 0 {
		r.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// readLoop dispatches everything the switch sends until the connection
// ends. Messages are read into one reused buffer: a punt is decoded from
// it (the decoded packet-in owns copies of what it keeps), and anything
// handed on (a reply, an echo) is copied.
func (s *Switch) readLoop() {
	r := bufio.NewReaderSize(receiving{s.conn, &s.lastRecv}, readBuffer)
	var buf []byte
	// The punts of a burst go to the queue together, once the burst is
	// read (nothing whole is left in the buffer) or before any other
	// message is acted on: one lock and one wake-up a burst, not a punt.
	var punts []sourcedPunt
	queue := func() {
		if len(punts) > 0 {
			s.stats.PuntsDropped.Add(uint64(s.punts.pushAll(punts)))
			punts = punts[:0]
		}
	}
	for {
		if !wholeMessageBuffered(r) || len(punts) == puntBatch {
			queue()
		}
		msg, err := readMsg(r, buf)
		if err != nil {
			s.end(fmt.Errorf("read: %w", err))
			return
		}
		buf = msg
		h, _ := parseHeader(msg)
		if h.Version != of.OFVersion15 {
			s.end(fmt.Errorf("switch changed OpenFlow version to %#x", h.Version))
			return
		}
		if h.Type != typePacketIn && !(h.Type == typeExperimenter && isPacketIn2(msg)) {
			queue()
		}
		switch h.Type {
		case typeEchoRequest:
			// Never write from the reader: a write may wait for room
			// behind a big bundle, and the reader must keep reading.
			select {
			case s.echoes <- echoReply(msg):
			default: // the switch asks again
			}
		case typeEchoReply:
		case typePacketIn, typeExperimenter:
			if h.Type == typeExperimenter && !isPacketIn2(msg) {
				s.deliver(h.Xid, bytes.Clone(msg))
				continue
			}
			s.stats.PuntsReceived.Add(1)
			if s.punts.full(len(punts)) { // shed before decoding (puntQueue.full)
				s.stats.PuntsDropped.Add(1)
				continue
			}
			parse := ParsePacketIn
			if h.Type == typeExperimenter {
				parse = ParsePacketIn2
			}
			pi, err := parse(msg)
			if err != nil {
				s.stats.PuntsMalformed.Add(1)
				s.log.Debug("malformed packet-in dropped", zap.Error(err))
				continue
			}
			punts = append(punts, sourcedPunt{s.source(pi), pi})
		case typePortStatus:
			select {
			case s.portChanged <- struct{}{}:
			default: // one waiting signal says it all
			}
		case typeRoleStatus: // another controller took the bridge, or our role changed
			if role, gen, err := parseRole(msg); err == nil {
				s.roleStatus.Store(uint64(role)<<56 | gen&(1<<56-1))
				s.log.Info("role changed by the switch", zap.Stringer("role", role), zap.Uint64("generation", gen))
			}
		default:
			if !s.deliver(h.Xid, bytes.Clone(msg)) && h.Type == typeError {
				e, _ := parseError(msg)
				s.log.Warn("unsolicited OpenFlow error", zap.Uint32("xid", h.Xid), zap.String("error", ErrorName(e.Type, e.Code)))
			}
		}
	}
}

// keepalive answers the switch's echo requests, sends our own, and ends a
// session that stays silent. A switch chewing on a big bundle may not
// answer for a while, so the limit stretches while a bundle is in flight.
func (s *Switch) keepalive(interval, timeout time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case reply := <-s.echoes:
			_ = s.write(context.Background(), reply)
		case <-t.C:
			limit := timeout
			if s.bundles.Load() > 0 {
				limit = 8 * timeout
			}
			if silent := time.Since(time.Unix(0, s.lastRecv.Load())); silent > limit {
				s.end(fmt.Errorf("no message for %s", silent.Round(time.Second)))
				return
			}
			x := s.nextXids(1)
			_ = s.write(context.Background(), simpleMsg(typeEchoRequest, x))
		}
	}
}
