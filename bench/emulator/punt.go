package emulator

import (
	"bytes"
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

	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Kind is what a punt carries.
type Kind uint8

// Punt kinds.
const (
	// ARPRequest is a broadcast ARP request for Target, which the
	// pipeline punts from ARPResponder (ReasonARPMiss).
	ARPRequest Kind = iota + 1
	// UnknownUnicast is a UDP datagram to DstMAC, which the pipeline
	// punts from L2Lookup (ReasonL2Miss).
	UnknownUnicast
)

// Punt is one packet to punt, from one of the switch's ports.
type Punt struct {
	Kind   Kind
	From   Port
	Target netip.Addr       // ARPRequest
	DstMAC net.HardwareAddr // UnknownUnicast
	DstIP  netip.Addr       // UnknownUnicast
}

// The sequence number of a punt sits in its frame at seqOffset, behind a
// magic, where no header the controller reads is: the ARP frame's
// padding, the UDP datagram's payload. The controller sends the frame
// back in its packet-out unchanged.
const (
	seqOffset = 42
	seqMagic  = 0x5759454d // "WYEM"
	frameLen  = seqOffset + 12
)

// Frame builds the Ethernet frame of a punt carrying seq.
func (p Punt) Frame(seq uint64) []byte {
	b := make([]byte, 0, 64)
	switch p.Kind {
	case ARPRequest:
		b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		b = append(b, p.From.MAC...)
		b = be16(b, of.EthTypeARP)
		b = be16(b, 1)
		b = be16(b, of.EthTypeIPv4)
		b = append(b, 6, 4)
		b = be16(b, of.ARPRequest)
		b = append(b, p.From.MAC...)
		b = append(b, p.From.IP.AsSlice()...)
		b = append(b, 0, 0, 0, 0, 0, 0)
		b = append(b, p.Target.AsSlice()...)
	default:
		b = append(b, p.DstMAC...)
		b = append(b, p.From.MAC...)
		b = be16(b, of.EthTypeIPv4)
		ip := len(b)
		b = append(b, 0x45, 0)
		b = be16(b, 20+8+12)
		b = append(b, 0, 0, 0x40, 0, 64, of.IPProtoUDP, 0, 0)
		b = append(b, p.From.IP.AsSlice()...)
		b = append(b, p.DstIP.AsSlice()...)
		var sum uint32
		for i := ip; i < ip+20; i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(b[ip+10:], ^uint16(sum))
		b = be16(b, 40000)
		b = be16(b, 7) // echo
		b = be16(b, 8+12)
		b = be16(b, 0) // no checksum
	}
	b = be32(b, seqMagic)
	b = be64(b, seq)
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}

// seqOf finds the sequence number in a frame sent back.
func seqOf(frame []byte) (uint64, bool) {
	if len(frame) < frameLen || binary.BigEndian.Uint32(frame[seqOffset:]) != seqMagic {
		return 0, false
	}
	return binary.BigEndian.Uint64(frame[seqOffset+4:]), true
}

// ErrNotReady is a punt asked of a switch whose handshake is not done.
var ErrNotReady = errors.New("emulator: switch not connected yet")

// puntTemplate is a punt's message, encoded once for its kind, port
// and target: a punt is a copy with its xid, sequence number (and, for
// unknown unicast, destination MAC) patched in. It also holds what an
// answer must carry: the frame sent back unchanged (a re-injection or a
// flood), or for an ARP request for a port of this switch, the reply.
type puntTemplate struct {
	kind    Kind
	from    Port
	msg     []byte
	frameAt int    // where the frame starts in msg
	frame   []byte // the frame, sequence number 0, broadcast/zero destination
	reply   []byte // ARP: the reply frame, sequence number 0; nil when nobody answers for the target
}

type templateKey struct {
	kind   Kind
	port   uint32
	target netip.Addr
	in2    bool
}

// pendingPunt is a punt sent and not answered yet.
type pendingPunt struct {
	sent time.Time
	t    *puntTemplate
	dst  [6]byte // the frame's destination MAC
}

// template returns the encoded message of punts like p (under pmu).
func (s *Switch) template(p Punt, in2 bool) *puntTemplate {
	target := p.Target
	if p.Kind != ARPRequest {
		target = p.DstIP
	}
	k := templateKey{kind: p.Kind, port: p.From.OFPort, target: target, in2: in2}
	if t, ok := s.templates[k]; ok {
		return t
	}
	q := p
	if q.Kind != ARPRequest {
		q.DstMAC = make(net.HardwareAddr, 6)
	}
	frame := q.Frame(0)
	stage, reason := pipeline.L2Lookup, pipeline.ReasonL2Miss
	if p.Kind == ARPRequest {
		stage, reason = pipeline.ARPResponder, pipeline.ReasonARPMiss
	}
	var msg []byte
	if in2 {
		m := of.Match{}.InPort(p.From.OFPort).Reg(pipeline.NetworkKey, p.From.NetworkKey).
			Reg(pipeline.SrcPortKey, uint64(p.From.Key))
		msg = packetIn2(0, pipeline.Table(stage), 0, m, []byte(pipeline.Punt(reason, 0).UserData), frame)
	} else {
		msg = packetIn(0, pipeline.Table(stage), 0, of.Match{}.InPort(p.From.OFPort), frame)
	}
	t := &puntTemplate{kind: p.Kind, from: p.From, msg: msg, frameAt: bytes.Index(msg, frame), frame: frame}
	if p.Kind == ARPRequest {
		for _, owner := range s.cfg.Ports {
			if owner.IP == p.Target && owner.NetworkKey == p.From.NetworkKey {
				t.reply = arpReply(frame, owner)
				break
			}
		}
	}
	if len(s.templates) >= 1<<16 {
		clear(s.templates)
	}
	s.templates[k] = t
	return t
}

// arpReply is the reply a correct controller makes of an ARP request
// frame for owner's address: to the requester, from owner's MAC, the
// request's padding (and sequence number) kept.
func arpReply(req []byte, owner Port) []byte {
	b := append([]byte(nil), req...)
	copy(b[0:6], req[6:12])
	copy(b[6:12], owner.MAC)
	binary.BigEndian.PutUint16(b[20:], of.ARPReply)
	copy(b[22:28], owner.MAC)
	copy(b[28:32], owner.IP.AsSlice())
	copy(b[32:38], req[22:28])
	copy(b[38:42], req[28:32])
	return b
}

// appendPunt appends p's message, with a new sequence number, to b and
// records it as pending (under pmu).
func (s *Switch) appendPunt(b []byte, p Punt, in2 bool, now time.Time) ([]byte, uint64) {
	t := s.template(p, in2)
	seq := s.seq.Add(1)
	start := len(b)
	b = append(b, t.msg...)
	binary.BigEndian.PutUint32(b[start+4:], s.xid.Add(1))
	f := b[start+t.frameAt:]
	binary.BigEndian.PutUint64(f[seqOffset+4:], seq)
	pp := pendingPunt{sent: now, t: t}
	if p.Kind != ARPRequest {
		copy(f[0:6], p.DstMAC)
	}
	copy(pp.dst[:], f[0:6])
	s.pending[seq] = pp
	s.Stats.Punts.Add(1)
	return b, seq
}

// SendPunt punts a packet to the controller as the pipeline's punt flow
// would: from the stage the pipeline punts it in, with the port's
// registers (in_port, metadata = network key, reg6 = port key) and the
// punt reason as userdata, in NXT_PACKET_IN2 when the controller asked
// for it, else as a plain PACKET_IN (which has no userdata). It returns
// the punt's sequence number; its answer is recorded in Config.Answers.
func (s *Switch) SendPunt(p Punt) (uint64, error) {
	seq, msg, err := s.punt(p)
	if err != nil {
		return 0, err
	}
	s.send(msg)
	return seq, nil
}

// punt builds a punt's message and records it as sent.
func (s *Switch) punt(p Punt) (uint64, []byte, error) {
	if err := s.sendable(); err != nil {
		return 0, nil, err
	}
	s.pmu.Lock()
	msg, seq := s.appendPunt(nil, p, s.in2.Load(), time.Now())
	s.pmu.Unlock()
	return seq, msg, nil
}

// sendable is nil once the handshake is done, while the session lasts.
func (s *Switch) sendable() error {
	select {
	case <-s.ready:
	default:
		return ErrNotReady
	}
	select {
	case <-s.done:
		return fmt.Errorf("emulator: switch %016x: %w", s.cfg.DPID, s.err)
	default:
	}
	return nil
}

// Outstanding is the number of punts sent and not answered yet.
func (s *Switch) Outstanding() int {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return len(s.pending)
}

// Forget drops the record of unanswered punts older than age (the
// controller dropped them: a full queue), returning how many.
func (s *Switch) Forget(age time.Duration) int {
	cut := time.Now().Add(-age)
	n := 0
	s.pmu.Lock()
	for k, pp := range s.pending {
		if pp.sent.Before(cut) {
			delete(s.pending, k)
			n++
		}
	}
	s.pmu.Unlock()
	return n
}

// answered records a packet-out: the answer to the punt whose frame it
// carries (the first answer of each; a flood's copies do not count
// twice), if it is right for that punt (checkAnswer); a wrong one is
// counted in Stats.WrongAnswers and not as an answer.
func (s *Switch) answered(msg []byte) error {
	po, err := parsePacketOut(msg)
	if err != nil {
		return err
	}
	seq, ok := seqOf(po.frame)
	if !ok {
		return nil
	}
	s.pmu.Lock()
	pp, ok := s.pending[seq]
	if ok {
		delete(s.pending, seq)
	}
	slots := s.slots
	s.pmu.Unlock()
	if !ok {
		return nil
	}
	if why := checkAnswer(pp, po); why != "" {
		if s.Stats.WrongAnswers.Add(1) == 1 {
			s.pmu.Lock()
			s.firstWrong = fmt.Sprintf("punt %d from port %d: %s", seq, pp.t.from.OFPort, why)
			s.pmu.Unlock()
		}
	} else if s.cfg.Answers != nil {
		s.cfg.Answers.add(time.Since(pp.sent))
	}
	if slots != nil {
		select {
		case slots <- struct{}{}:
		default:
		}
	}
	return nil
}

// FirstWrongAnswer describes the first wrong answer, "" with none.
func (s *Switch) FirstWrongAnswer() string {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	return s.firstWrong
}

// checkAnswer says what is wrong with po as the answer to pp ("" when
// nothing): it must carry the punted frame unchanged (a re-injection or
// a flood), with some action; or, for an ARP request for a port of the
// switch, be the ARP reply from that port's MAC and address to the
// requester, sent out of the requester's port alone.
func checkAnswer(pp pendingPunt, po packetOut) string {
	t, f := pp.t, po.frame
	if len(f) != len(t.frame) {
		return fmt.Sprintf("frame of %d bytes, punted %d", len(f), len(t.frame))
	}
	same := func(want []byte) bool {
		return bytes.Equal(f[6:seqOffset+4], want[6:seqOffset+4]) && bytes.Equal(f[frameLen:], want[frameLen:])
	}
	if [6]byte(f[0:6]) == pp.dst && same(t.frame) {
		if po.nActions == 0 {
			return "the punted frame with no action (dropped)"
		}
		return ""
	}
	if t.reply == nil || !bytes.Equal(f[0:6], t.reply[0:6]) || !same(t.reply) {
		return fmt.Sprintf("a frame that is neither the punted one nor its reply: % x", f[:frameLen])
	}
	if po.nActions != 1 || !(po.output == t.from.OFPort || po.output == of.PortInPort && po.inPort == t.from.OFPort) {
		return fmt.Sprintf("the ARP reply with %d actions, output %#x, in_port %#x, not out of port %d alone",
			po.nActions, po.output, po.inPort, t.from.OFPort)
	}
	return ""
}

// Recorder collects answer latencies, from any number of switches.
type Recorder struct {
	n       atomic.Uint64
	mu      sync.Mutex
	samples []time.Duration
	// Keep bounds the samples kept (default 1,000,000); counting goes on.
	Keep int
}

func (r *Recorder) add(d time.Duration) {
	r.n.Add(1)
	keep := r.Keep
	if keep == 0 {
		keep = 1_000_000
	}
	r.mu.Lock()
	if len(r.samples) < keep {
		r.samples = append(r.samples, d)
	}
	r.mu.Unlock()
}

// Count is the number of answers recorded.
func (r *Recorder) Count() uint64 { return r.n.Load() }

// Reset forgets everything recorded.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.samples = r.samples[:0]
	r.n.Store(0)
	r.mu.Unlock()
}

// Quantile returns the q-quantile (0..1) of the latencies recorded.
func (r *Recorder) Quantile(q float64) time.Duration {
	r.mu.Lock()
	s := append([]time.Duration(nil), r.samples...)
	r.mu.Unlock()
	return Quantile(s, q)
}

// Quantile returns the q-quantile (0..1) of durations.
func Quantile(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	s = append([]time.Duration(nil), s...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q * float64(len(s)-1))
	return s[i]
}

// Load drives a switch's punts: closed loop (at most Window unanswered,
// cbench's throughput mode) or open loop at Rate punts per second.
type Load struct {
	Window int     // > 0: closed loop
	Rate   float64 // with Window 0: punts per second
	// Next is the i-th punt to send.
	Next func(i uint64) Punt
	// Lost is how long an unanswered punt is waited for before its slot
	// is given back (the controller dropped it; default 1 s).
	Lost time.Duration
}

// Drive sends punts until ctx ends and returns how many it sent.
func (s *Switch) Drive(ctx context.Context, l Load) (uint64, error) {
	if l.Lost <= 0 {
		l.Lost = time.Second
	}
	var sent uint64
	if l.Window > 0 {
		slots := make(chan struct{}, l.Window)
		for range l.Window {
			slots <- struct{}{}
		}
		s.pmu.Lock()
		s.slots = slots
		s.pmu.Unlock()
		defer func() {
			s.pmu.Lock()
			s.slots = nil
			s.pmu.Unlock()
		}()
		var burst []byte
		reclaim := time.NewTicker(l.Lost / 2)
		defer reclaim.Stop()
		for {
			select {
			case <-ctx.Done():
				return sent, nil
			case <-reclaim.C:
				for range s.Forget(l.Lost) {
					select {
					case slots <- struct{}{}:
					default:
					}
				}
				continue
			case <-slots:
			}
			// Every free slot at once, in one write: a controller that
			// answers a burst gets the next burst back as one.
			if err := s.sendable(); err != nil {
				return sent, err
			}
			in2, now := s.in2.Load(), time.Now()
			burst = burst[:0]
			s.pmu.Lock()
			for free := true; free; {
				burst, _ = s.appendPunt(burst, l.Next(sent), in2, now)
				sent++
				select {
				case <-slots:
				default:
					free = false
				}
			}
			s.pmu.Unlock()
			s.send(burst)
		}
	}
	if l.Rate <= 0 {
		return 0, errors.New("emulator: a load needs a window or a rate")
	}
	// Every tick, the punts due since the last, in one write: a switch's
	// handler threads send punts as they come, but one system call a
	// punt would make the emulator, not the controller, what an offered
	// load past 200k/s measures.
	const tick = 250 * time.Microsecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	var burst []byte
	for {
		select {
		case <-ctx.Done():
			return sent, nil
		case now := <-t.C:
			due := uint64(now.Sub(start).Seconds() * l.Rate)
			if sent >= due {
				continue
			}
			if err := s.sendable(); err != nil {
				return sent, err
			}
			in2 := s.in2.Load()
			burst = burst[:0]
			s.pmu.Lock()
			for ; sent < due; sent++ {
				burst, _ = s.appendPunt(burst, l.Next(sent), in2, now)
			}
			s.pmu.Unlock()
			s.send(burst)
		}
	}
}
