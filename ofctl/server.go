package ofctl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Handler receives a server's switches and their punts.
type Handler interface {
	// Connected runs once per session, in its own goroutine, after the
	// handshake and table naming. ctx ends when the switch disconnects;
	// the session is not torn down until Connected returns, so it may
	// run the bridge's whole lifetime.
	Connected(ctx context.Context, sw *Switch)
	// PacketIn handles one punt. Punts of a switch are handled one at a
	// time, in order; a panic is recovered and counted.
	PacketIn(ctx context.Context, sw *Switch, pi PacketIn)
}

// BatchHandler is a Handler that takes a switch's punts several at a
// time: PacketIns gets those waiting, up to puntBatch, in the order the
// fair queue serves them. A handler answering a batch together (one
// bundle, one write) saves a round trip or a system call a punt.
type BatchHandler interface {
	Handler
	PacketIns(ctx context.Context, sw *Switch, pis []PacketIn)
}

// Config configures the OpenFlow listener.
type Config struct {
	// Addr is tcp:HOST:PORT, ssl:HOST:PORT or unix:PATH.
	Addr string
	// TLS secures an ssl: listener. It must require and verify a client
	// certificate (tlsconfig.Files.Mutual): a switch is admitted by its
	// certificate, as OVS admits its controller by ours.
	TLS *tls.Config
	// TableNames are set on every switch when it connects.
	TableNames map[uint8]string
	// EchoInterval is how often an idle switch is probed (default 5s);
	// a switch silent for EchoTimeout (default 3 intervals) is dropped.
	EchoInterval time.Duration
	EchoTimeout  time.Duration
	// HandshakeTimeout bounds HELLO..FEATURES (default 10s).
	HandshakeTimeout time.Duration
	// PuntQueue is the per-switch bound on queued punts (default 1024).
	// Punts wait in one queue per source, served round robin; a source
	// may fill an eighth of it (at least 16). Punts beyond either bound
	// are dropped and counted.
	PuntQueue int
	// PuntSource keys a punt's fairness (default: its ingress port).
	PuntSource PuntSource
}

func (c *Config) defaults() {
	if c.EchoInterval <= 0 {
		c.EchoInterval = 5 * time.Second
	}
	if c.EchoTimeout <= 0 {
		c.EchoTimeout = 3 * c.EchoInterval
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.PuntQueue <= 0 {
		c.PuntQueue = 1024
	}
	if c.PuntSource == nil {
		c.PuntSource = func(pi PacketIn) uint64 { return uint64(pi.InPort()) }
	}
}

// ParseAddr splits tcp:HOST:PORT, ssl:HOST:PORT or unix:PATH into a
// network and address, as OVS names its controller targets.
func ParseAddr(addr string) (network, address string, err error) {
	network, address, ok := strings.Cut(addr, ":")
	if !ok || address == "" || (network != "tcp" && network != "ssl" && network != "unix") {
		return "", "", fmt.Errorf("openflow address %q: want tcp:HOST:PORT, ssl:HOST:PORT or unix:PATH", addr)
	}
	return network, address, nil
}

// Server accepts switch connections and runs one session per bridge.
type Server struct {
	cfg     Config
	handler Handler
	log     *zap.Logger
	ln      net.Listener
	network string // tcp, ssl or unix
	refused atomic.Uint64

	mu       sync.Mutex
	switches map[uint64]*Switch
	wg       sync.WaitGroup
	gen      atomic.Uint64 // session generations
}

// Listen opens the listener. A stale unix socket file is replaced.
func Listen(cfg Config, h Handler, log *zap.Logger) (*Server, error) {
	cfg.defaults()
	network, address, err := ParseAddr(cfg.Addr)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		if fi, err := os.Lstat(address); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(address)
		}
	}
	ln, err := listen(network, address, cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("ofctl: listen on %s: %w", cfg.Addr, err)
	}
	return &Server{cfg: cfg, handler: h, log: log.Named("ofctl"), ln: ln, network: network, switches: map[uint64]*Switch{}}, nil
}

// Close stops accepting connections; Serve returns once its sessions end.
func (s *Server) Close() error { return s.ln.Close() }

// Addr is the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Target is the controller target a bridge connects to, in OVS's form:
// tcp:IP:PORT, ssl:IP:PORT (with the port the kernel chose for port 0)
// or unix:PATH.
func (s *Server) Target() string { return s.network + ":" + s.ln.Addr().String() }

// Serve accepts connections until ctx ends, then closes every session and
// waits for them.
//
// A failing Accept (out of file descriptors, say) is retried with backoff;
// Close or the end of ctx stops the loop and ends every session.
func (s *Server) Serve(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = s.ln.Close() })
	defer stop()
	delay := 5 * time.Millisecond
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			s.log.Warn("accept failed; retrying", zap.Error(err), zap.Duration("in", delay))
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
			delay = min(2*delay, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if s.admit(sctx, conn) {
				s.session(sctx, conn)
			}
		}()
	}
	cancel()
	s.wg.Wait()
	return nil
}

// Switch returns the live session of a datapath.
func (s *Server) Switch(dpid uint64) (*Switch, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sw, ok := s.switches[dpid]
	return sw, ok
}

// Switches returns every live session.
func (s *Server) Switches() []*Switch {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Switch, 0, len(s.switches))
	for _, sw := range s.switches {
		out = append(out, sw)
	}
	return out
}

// handshake exchanges HELLO, reads FEATURES and sets the config.
func (s *Server) handshake(conn net.Conn) (features, error) {
	_ = conn.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	defer func() { _ = conn.SetDeadline(time.Time{}) }()
	if _, err := conn.Write(helloMsg(1)); err != nil {
		return features{}, err
	}
	hello, err := readMsg(conn, nil)
	if err != nil {
		return features{}, fmt.Errorf("reading hello: %w", err)
	}
	if hello[1] != typeHello {
		return features{}, fmt.Errorf("expected hello, got message type %d", hello[1])
	}
	if !helloSupports15(hello) {
		return features{}, ErrVersion
	}
	if _, err := conn.Write(simpleMsg(typeFeaturesReq, 2)); err != nil {
		return features{}, err
	}
	for {
		msg, err := readMsg(conn, nil)
		if err != nil {
			return features{}, fmt.Errorf("reading features: %w", err)
		}
		switch msg[1] {
		case typeFeaturesReply:
			f, err := parseFeatures(msg)
			if err != nil {
				return features{}, err
			}
			if _, err := conn.Write(setConfigMsg(3)); err != nil {
				return features{}, err
			}
			// A switch that cannot send NXT_PACKET_IN2 answers with an
			// error the reader logs; its punts arrive without reasons.
			_, err = conn.Write(packetInFormatMsg(4))
			return f, err
		case typeEchoRequest:
			if _, err := conn.Write(echoReply(msg)); err != nil {
				return features{}, err
			}
		case typeError:
			e, _ := parseError(msg)
			return features{}, fmt.Errorf("switch refused the handshake: %s", ErrorName(e.Type, e.Code))
		}
	}
}

// session runs one connection from handshake to teardown.
func (s *Server) session(ctx context.Context, conn net.Conn) {
	log := s.log.With(zap.String("remote", conn.RemoteAddr().String()))
	stopClose := context.AfterFunc(ctx, func() { _ = conn.Close() })
	feat, err := s.handshake(conn)
	stopClose()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		log.Warn("OpenFlow handshake failed", zap.Error(err))
		_ = conn.Close()
		return
	}
	sw := &Switch{
		dpid:    feat.DatapathID,
		nTables: feat.NTables,
		conn:    conn,
		log:     log.With(zap.String("dpid", fmt.Sprintf("%016x", feat.DatapathID))),
		gen:     s.gen.Add(1),
		pending: map[uint32]*pending{},
		done:    make(chan struct{}),
		punts:   newPuntQueue(s.cfg.PuntQueue),
		source:  s.cfg.PuntSource,
		echoes:  make(chan []byte, 8),
		flushCh: make(chan struct{}, 1),

		portChanged: make(chan struct{}, 1),
	}
	sw.xid.Store(100)
	sw.lastRecv.Store(time.Now().UnixNano())

	s.mu.Lock()
	if old, ok := s.switches[sw.dpid]; ok {
		old.end(errors.New("replaced by a new connection from the same datapath"))
	}
	s.switches[sw.dpid] = sw
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.switches[sw.dpid] == sw {
			delete(s.switches, sw.dpid)
		}
		s.mu.Unlock()
	}()

	stopEnd := context.AfterFunc(ctx, func() { sw.end(errors.New("controller shutting down")) })
	defer stopEnd()
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(3 + puntWorkers)
	go func() { defer wg.Done(); sw.readLoop() }()
	go func() { defer wg.Done(); sw.flusher() }()
	go func() { defer wg.Done(); sw.keepalive(s.cfg.EchoInterval, s.cfg.EchoTimeout) }()
	for range puntWorkers {
		go func() { defer wg.Done(); s.puntWorker(sctx, sw) }()
	}
	go func() {
		<-sw.done
		cancel()
	}()

	sw.log.Info("switch connected", zap.Uint8("tables", sw.nTables))
	if err := sw.SetTableNames(sctx, s.cfg.TableNames); err != nil {
		sw.log.Warn("could not name tables", zap.Error(err))
	}
	select {
	case <-sw.done: // replaced or gone already: no handler for a dead session
	default:
		s.connected(sctx, sw)
	}
	<-sw.done
	cancel()
	wg.Wait()
	sw.log.Info("switch disconnected", zap.NamedError("reason", sw.endErr))
}

// connected runs the handler's Connected, recovering a panic.
func (s *Server) connected(ctx context.Context, sw *Switch) {
	func() {
		defer func() {
			if r := recover(); r != nil {
				sw.log.Error("connect handler panicked", zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
				sw.end(fmt.Errorf("connect handler panicked: %v", r))
			}
		}()
		s.handler.Connected(ctx, sw)
	}()
}

// puntWorkers is how many punts (or batches of punts) of one switch the
// handler may work on at once: a handler that waits on the switch (a
// bundle's round trips) then has several to answer together, not one
// per round trip.
const puntWorkers = 16

// puntBatch bounds the punts a BatchHandler gets at once.
const puntBatch = 64

// puntWorker hands punts to the handler, fairly over their sources,
// surviving panics; puntWorkers of them serve each switch.
func (s *Server) puntWorker(ctx context.Context, sw *Switch) {
	bh, batched := s.handler.(BatchHandler)
	var batch []PacketIn
	for {
		select {
		case <-ctx.Done():
			return
		case <-sw.punts.ready:
		}
		for ctx.Err() == nil {
			if batched {
				batch = sw.punts.popN(batch[:0], puntBatch)
				if len(batch) == 0 {
					break
				}
				s.handle(sw, func() { bh.PacketIns(ctx, sw, batch) })
				clear(batch) // the frames are the handler's to keep or drop
				continue
			}
			pi, ok := sw.punts.pop()
			if !ok {
				break
			}
			s.handle(sw, func() { s.handler.PacketIn(ctx, sw, pi) })
		}
	}
}

// handle runs a punt handler, recovering and counting a panic.
func (s *Server) handle(sw *Switch, f func()) {
	defer func() {
		if r := recover(); r != nil {
			sw.stats.HandlerPanics.Add(1)
			sw.log.Error("packet-in handler panicked", zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
		}
	}()
	f()
}
