// Package emulator emulates OpenFlow 1.5 switches for benchmarks at a
// scale real Open vSwitch cannot reach on one machine (cbench-style): each
// emulated switch is one chassis' integration bridge with its ports. It
// connects to a controller, answers what package ofctl asks at connect
// and during a replay (features, set-config, packet-in format, table
// features, flow and meter dumps, meter-mods, role requests, barriers),
// accepts bundles and keeps a flow table, and sends punts as the
// pipeline's punt flows would (NXT_PACKET_IN2 with the punt's userdata
// and registers, or a plain PACKET_IN to a controller that did not ask
// for NXT_PACKET_IN2), timing the packet-out that answers each.
//
// Flow-mods are decoded by package of, the controller's own codec.
package emulator

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// Port is one port of an emulated chassis.
type Port struct {
	OFPort uint32
	Name   string
	MAC    net.HardwareAddr
	IP     netip.Addr
	// Key and NetworkKey are the logical port's and its network's keys:
	// the registers the pipeline sets on the port's packets (reg6,
	// metadata), which its punts carry.
	Key        uint32
	NetworkKey uint64
}

// Config is one emulated switch.
type Config struct {
	DPID    uint64
	Ports   []Port
	NTables uint8 // default 254, as OVS
	// Answers, when set, records the answer to every punt.
	Answers *Recorder
}

// Stats count what the switch received.
type Stats struct {
	FlowMods     atomic.Uint64 // applied, in bundles or alone
	Bundles      atomic.Uint64 // committed
	BundleFlows  atomic.Uint64 // flow-mods in committed bundles
	MaxBundle    atomic.Uint64 // the largest committed bundle
	PacketOuts   atomic.Uint64
	MeterMods    atomic.Uint64
	FlowDumps    atomic.Uint64
	PortDescs    atomic.Uint64 // port list requests answered
	Punts        atomic.Uint64 // sent
	RoleRequests atomic.Uint64
	Unsupported  atomic.Uint64 // messages answered with a bad-type error
	WrongAnswers atomic.Uint64 // packet-outs that answer their punt wrongly (FirstWrongAnswer)
}

// Switch is one emulated switch's OpenFlow session.
type Switch struct {
	cfg  Config
	conn net.Conn

	wmu     sync.Mutex // guards out and flushing
	out     []byte
	flushCh chan struct{}

	mu      sync.Mutex // guards the tables below
	flows   map[of.FlowKey]of.Flow
	bundles map[uint32][]of.FlowMod
	meters  map[uint32]bool
	waiters []*waiter
	roleGen uint64
	genSeen bool

	in2   atomic.Bool // the controller asked for NXT_PACKET_IN2
	ready chan struct{}
	ronce sync.Once
	seq   atomic.Uint64
	xid   atomic.Uint32

	pmu        sync.Mutex
	pending    map[uint64]pendingPunt // by punt sequence number
	templates  map[templateKey]*puntTemplate
	slots      chan struct{} // a closed-loop load's free slots
	firstWrong string

	done  chan struct{}
	once  sync.Once
	err   error
	Stats Stats
}

// Dial connects an emulated switch to a controller at target (tcp:HOST:PORT
// or HOST:PORT) and sends its HELLO; Run serves the session.
func Dial(ctx context.Context, target string, cfg Config) (*Switch, error) {
	if cfg.NTables == 0 {
		cfg.NTables = 254
	}
	addr := target
	if len(addr) > 4 && addr[:4] == "tcp:" {
		addr = addr[4:]
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: switch %016x: %w", cfg.DPID, err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	s := &Switch{cfg: cfg, conn: conn, flushCh: make(chan struct{}, 1), flows: map[of.FlowKey]of.Flow{},
		bundles: map[uint32][]of.FlowMod{}, meters: map[uint32]bool{}, ready: make(chan struct{}),
		pending: map[uint64]pendingPunt{}, templates: map[templateKey]*puntTemplate{}, done: make(chan struct{})}
	s.send(helloMsg(1))
	return s, nil
}

// DPID is the switch's datapath id.
func (s *Switch) DPID() uint64 { return s.cfg.DPID }

// Ports are the switch's ports.
func (s *Switch) Ports() []Port { return s.cfg.Ports }

// Ready is closed once the controller has asked for the switch's
// features (the handshake is done).
func (s *Switch) Ready() <-chan struct{} { return s.ready }

// Done is closed when the session ends.
func (s *Switch) Done() <-chan struct{} { return s.done }

// Err says why the session ended.
func (s *Switch) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close ends the session.
func (s *Switch) Close() { s.end(errors.New("closed")) }

func (s *Switch) end(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
		_ = s.conn.Close()
	})
}

// send queues a message; the flusher writes what is queued in one write.
func (s *Switch) send(b []byte) {
	s.wmu.Lock()
	s.out = append(s.out, b...)
	s.wmu.Unlock()
	select {
	case s.flushCh <- struct{}{}:
	default:
	}
}

func (s *Switch) flusher() {
	var buf []byte
	for {
		select {
		case <-s.done:
			return
		case <-s.flushCh:
		}
		s.wmu.Lock()
		buf, s.out = s.out, buf[:0]
		s.wmu.Unlock()
		if len(buf) == 0 {
			continue
		}
		_ = s.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := s.conn.Write(buf); err != nil {
			s.end(fmt.Errorf("write: %w", err))
			return
		}
	}
}

// Run serves the session until ctx ends or the connection does.
func (s *Switch) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.end(ctx.Err()) })
	defer stop()
	go s.flusher()
	// Buffered: a burst of the controller's answers is one read, not
	// two a message (the emulator must not be what a benchmark measures).
	r := bufio.NewReaderSize(s.conn, 64<<10)
	for {
		// A packet-out (most of what a controller under punt load
		// sends) is handled in the reader's buffer, without a copy.
		if hdr, err := r.Peek(headerLen); err == nil && hdr[1] == typePacketOut {
			if n := int(binary.BigEndian.Uint16(hdr[2:])); n >= headerLen && n <= r.Size() {
				msg, err := r.Peek(n)
				if err != nil {
					s.end(fmt.Errorf("read: %w", err))
					return s.err
				}
				s.Stats.PacketOuts.Add(1)
				err = s.answered(msg)
				_, _ = r.Discard(n)
				if err != nil {
					err = fmt.Errorf("emulator: switch %016x: packet-out: %w", s.cfg.DPID, err)
					s.end(err)
					return err
				}
				continue
			}
		}
		msg, err := readMsg(r)
		if err != nil {
			s.end(fmt.Errorf("read: %w", err))
			return s.err
		}
		if err := s.handle(msg); err != nil {
			s.end(err)
			return err
		}
	}
}

// handle answers one message, in order: a reply the controller waits for
// is always written after the replies to everything it sent before.
func (s *Switch) handle(msg []byte) error {
	xid := xidOf(msg)
	switch msg[1] {
	case typeHello, typeEchoReply, typeSetConfig:
	case typeEchoRequest:
		r := append([]byte(nil), msg...)
		r[1] = typeEchoReply
		s.send(r)
	case typeFeaturesReq:
		s.send(featuresReply(xid, s.cfg.DPID, s.cfg.NTables))
		s.ronce.Do(func() { close(s.ready) })
	case typeGetConfigReq:
		b := appendHeader(nil, typeGetConfigReq+1, xid)
		b = be16(b, 0)
		b = be16(b, 0xffff)
		s.send(finish(b, 0))
	case typeBarrierReq:
		s.send(simpleReply(typeBarrierReply, xid))
	case typeExperimenter:
		if len(msg) >= 20 && binary.BigEndian.Uint32(msg[8:]) == nxVendorID &&
			binary.BigEndian.Uint32(msg[12:]) == nxtSetPacketInFormat {
			s.in2.Store(binary.BigEndian.Uint32(msg[16:]) == nxPacketInFormatIn2)
			return nil
		}
		s.send(errorMsg(msg, errBadRequest, 3)) // OFPBRC_BAD_EXPERIMENTER
	case typeFlowMod:
		_, fm, err := of.DecodeFlowMod(msg)
		if err != nil {
			return fmt.Errorf("emulator: switch %016x: flow-mod: %w", s.cfg.DPID, err)
		}
		s.mu.Lock()
		s.apply([]of.FlowMod{fm})
		s.mu.Unlock()
	case typeBundleControl:
		s.bundleControl(msg)
	case typeBundleAdd:
		return s.bundleAdd(msg)
	case typeMeterMod:
		s.meterMod(msg)
	case typeMultipartReq:
		return s.multipart(msg)
	case typePacketOut:
		s.Stats.PacketOuts.Add(1)
		if err := s.answered(msg); err != nil {
			return fmt.Errorf("emulator: switch %016x: packet-out: %w", s.cfg.DPID, err)
		}
	case typeRoleRequest:
		s.role(msg)
	default:
		s.Stats.Unsupported.Add(1)
		s.send(errorMsg(msg, errBadRequest, errBadType))
	}
	return nil
}

func (s *Switch) bundleControl(msg []byte) {
	if len(msg) < headerLen+8 {
		s.send(errorMsg(msg, errBadRequest, 6)) // OFPBRC_BAD_LEN
		return
	}
	id := binary.BigEndian.Uint32(msg[8:])
	typ := binary.BigEndian.Uint16(msg[12:])
	reply := func(t uint16) {
		b := append([]byte(nil), msg[:16]...)
		binary.BigEndian.PutUint16(b[12:], t)
		s.send(finish(b, 0))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mods, open := s.bundles[id]
	switch typ {
	case bundleOpenRequest:
		s.bundles[id] = nil
		reply(bundleOpenReply)
	case bundleCloseRequest:
		reply(bundleCloseReply)
	case bundleCommitRequest:
		if !open {
			s.send(errorMsg(msg, errBundleFailed, errBundleBadID))
			return
		}
		delete(s.bundles, id)
		s.apply(mods)
		n := uint64(len(mods))
		s.Stats.Bundles.Add(1)
		s.Stats.BundleFlows.Add(n)
		for {
			m := s.Stats.MaxBundle.Load()
			if n <= m || s.Stats.MaxBundle.CompareAndSwap(m, n) {
				break
			}
		}
		reply(bundleCommitReply)
	case bundleDiscardRequest:
		delete(s.bundles, id)
		reply(bundleDiscardReply)
	default:
		s.send(errorMsg(msg, errBundleFailed, 4)) // OFPBFC_BAD_TYPE
	}
}

func (s *Switch) bundleAdd(msg []byte) error {
	if len(msg) < headerLen+8+headerLen {
		s.send(errorMsg(msg, errBadRequest, 6))
		return nil
	}
	id := binary.BigEndian.Uint32(msg[8:])
	inner := msg[16:]
	if inner[1] != typeFlowMod {
		s.send(errorMsg(msg, errBundleFailed, 10)) // OFPBFC_MSG_UNSUP
		return nil
	}
	_, fm, err := of.DecodeFlowMod(inner)
	if err != nil {
		return fmt.Errorf("emulator: switch %016x: bundled flow-mod: %w", s.cfg.DPID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mods, open := s.bundles[id]
	if !open {
		s.send(errorMsg(msg, errBundleFailed, errBundleBadID))
		return nil
	}
	s.bundles[id] = append(mods, fm)
	return nil
}

// apply applies flow-mods to the table, under mu, and wakes the waiters
// whose flow came.
func (s *Switch) apply(mods []of.FlowMod) {
	for _, fm := range mods {
		s.Stats.FlowMods.Add(1)
		f := fm.Flow
		switch fm.Command {
		case of.FlowAdd:
			s.flows[f.Key()] = f
			for i := 0; i < len(s.waiters); i++ {
				if w := s.waiters[i]; w.match(f) {
					w.at <- time.Now()
					s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
					i--
				}
			}
		case of.FlowModifyStrict, of.FlowDeleteStrict:
			old, ok := s.flows[f.Key()]
			if !ok || old.Cookie&fm.CookieMask != f.Cookie&fm.CookieMask {
				continue
			}
			if fm.Command == of.FlowDeleteStrict {
				delete(s.flows, f.Key())
			} else {
				old.Actions = f.Actions
				s.flows[f.Key()] = old
			}
		case of.FlowModify, of.FlowDelete:
			for k, old := range s.flows {
				if (f.Table != of.TableAll && old.Table != f.Table) ||
					old.Cookie&fm.CookieMask != f.Cookie&fm.CookieMask || !covers(f.Match, old.Match) {
					continue
				}
				if fm.Command == of.FlowDelete {
					delete(s.flows, k)
				} else {
					old.Actions = f.Actions
					s.flows[k] = old
				}
			}
		}
	}
}

// covers reports whether every packet old matches is matched by m: each
// condition of m is on a field old matches at least as precisely, with
// the same value (a non-strict flow-mod's selection).
func covers(m, old of.Match) bool {
	for _, c := range m.Conds() {
		o, ok := old.Get(c.Field)
		if !ok || o.Mask&c.Mask != c.Mask || o.Value&c.Mask != c.Value {
			return false
		}
	}
	return true
}

func (s *Switch) meterMod(msg []byte) {
	s.Stats.MeterMods.Add(1)
	if len(msg) < headerLen+8 {
		s.send(errorMsg(msg, errBadRequest, 6))
		return
	}
	cmd := binary.BigEndian.Uint16(msg[8:])
	id := binary.BigEndian.Uint32(msg[12:])
	s.mu.Lock()
	defer s.mu.Unlock()
	switch cmd {
	case 0: // add
		if s.meters[id] {
			s.send(errorMsg(msg, errMeterModFailed, errMeterExists))
			return
		}
		s.meters[id] = true
	case 1: // modify
		if !s.meters[id] {
			s.send(errorMsg(msg, errMeterModFailed, errMeterUnknown))
			return
		}
	case 2: // delete
		delete(s.meters, id)
	}
}

func (s *Switch) role(msg []byte) {
	s.Stats.RoleRequests.Add(1)
	if len(msg) < headerLen+16 {
		s.send(errorMsg(msg, errBadRequest, 6))
		return
	}
	role := binary.BigEndian.Uint32(msg[8:])
	gen := binary.BigEndian.Uint64(msg[16:])
	s.mu.Lock()
	if r := ofctl.Role(role); r == ofctl.RoleMaster || r == ofctl.RoleSlave {
		// OVS compares generations with wrap-around arithmetic.
		if s.genSeen && int64(gen-s.roleGen) < 0 {
			s.mu.Unlock()
			s.send(errorMsg(msg, errRoleRequestFailed, errRoleStale))
			return
		}
		s.roleGen, s.genSeen = gen, true
	}
	s.mu.Unlock()
	b := append([]byte(nil), msg[:24]...)
	b[1] = typeRoleReply
	s.send(finish(b, 0))
}

func (s *Switch) multipart(msg []byte) error {
	if len(msg) < headerLen+8 {
		s.send(errorMsg(msg, errBadRequest, 6))
		return nil
	}
	xid := xidOf(msg)
	typ := binary.BigEndian.Uint16(msg[8:])
	switch typ {
	case multipartFlowDesc:
		s.Stats.FlowDumps.Add(1)
		s.mu.Lock()
		flows := make([]of.Flow, 0, len(s.flows))
		for _, f := range s.flows {
			flows = append(flows, f)
		}
		s.mu.Unlock()
		entries := make([][]byte, 0, len(flows))
		for _, f := range flows {
			e, err := flowDesc(f)
			if err != nil {
				return fmt.Errorf("emulator: switch %016x: flow dump: %w", s.cfg.DPID, err)
			}
			entries = append(entries, e)
		}
		s.send(multipartReplies(xid, typ, entries))
	case multipartMeterStats:
		s.mu.Lock()
		ids := make([]uint32, 0, len(s.meters))
		for id := range s.meters {
			ids = append(ids, id)
		}
		s.mu.Unlock()
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		entries := make([][]byte, 0, len(ids))
		for _, id := range ids {
			e := be32(nil, id)
			e = be16(e, 56) // one band
			e = append(e, 0, 0, 0, 0, 0, 0)
			e = append(e, make([]byte, 40-12+16)...) // counters, durations, the band's counters: zero
			entries = append(entries, e)
		}
		s.send(multipartReplies(xid, typ, entries))
	case multipartPortDesc:
		s.Stats.PortDescs.Add(1)
		entries := make([][]byte, 0, len(s.cfg.Ports))
		for _, p := range s.cfg.Ports {
			entries = append(entries, portDesc(p.OFPort, p.MAC, p.Name))
		}
		s.send(multipartReplies(xid, typ, entries))
	case multipartTableFeatures:
		// A request with a body sets names (nothing to keep: a dump
		// prints no names); without one, it reads the features, which
		// the controller needs only max_entries of: none here, so it
		// uses OVS's default.
		s.send(multipartReplies(xid, typ, nil))
	default:
		s.send(errorMsg(msg, errBadRequest, errBadMultipart))
	}
	return nil
}
