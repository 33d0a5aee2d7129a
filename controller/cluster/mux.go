package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// The raft address carries two protocols, told apart by the first byte a
// dialer sends (as Consul's RPC port does): raft's own, and the internal
// channel nodes use to forward writes to the leader, join, and ask the
// leader how far the log is committed. Nothing internal rides the public
// API.
const (
	protoRaft     byte = 0x01
	protoInternal byte = 0x02
)

// guard is how both ends of a connection on the raft address prove they
// are members, before a byte of raft or of the internal channel passes:
// mutual TLS with the cluster CA (tlsServer/tlsClient), then, with a
// cluster secret, a challenge-response that proves each side holds it
// without sending it. Either, both or (in a lab) neither may be set.
//
// The secret's exchange, after the protocol byte:
//
//	dialer → member: its nonce
//	member → dialer: the member's nonce
//	dialer → member: HMAC(secret, "client"|proto|dialer's nonce|member's nonce)
//	member → dialer: HMAC(secret, "server"|proto|dialer's nonce|member's nonce)
//
// Fresh nonces on both sides bind each proof to one connection (no
// replay), the role in each proof keeps a member's answer from serving as
// a dialer's (no reflection), and the member proves nothing until the
// dialer has: a stranger learns no MAC to guess the secret from. The
// secret authenticates the connection, not what follows on it: on an
// underlay others share, use TLS as well.
type guard struct {
	tlsServer, tlsClient *tls.Config
	secret               []byte
	// handshakes bounds the connections still proving themselves; past
	// it a new one is closed at once, so strangers cannot hold a
	// member's file descriptors and goroutines.
	handshakes chan struct{}
}

const (
	nonceLen = 16
	macLen   = sha256.Size
	// handshakeTimeout bounds a dialer's TLS handshake, protocol byte and
	// proof: a silent or slow dialer is dropped.
	handshakeTimeout = 5 * time.Second
	// maxHandshakes bounds the connections proving themselves at once.
	maxHandshakes = 256
)

func newGuard(secret []byte, tlsServer, tlsClient *tls.Config) *guard {
	return &guard{secret: secret, tlsServer: tlsServer, tlsClient: tlsClient, handshakes: make(chan struct{}, maxHandshakes)}
}

// proof is HMAC-SHA256(secret, role|proto|dialer nonce|member nonce).
func (g *guard) proof(role string, proto byte, nc, ns []byte) []byte {
	h := hmac.New(sha256.New, g.secret)
	h.Write([]byte(role))
	h.Write([]byte{proto})
	h.Write(nc)
	h.Write(ns)
	return h.Sum(nil)
}

// errBusy: too many connections are proving themselves already.
var errBusy = errors.New("too many connections in their handshake")

// accept runs the member's side: TLS, the protocol byte, the secret.
func (g *guard) accept(conn net.Conn) (net.Conn, byte, error) {
	select {
	case g.handshakes <- struct{}{}:
		defer func() { <-g.handshakes }()
	default:
		return conn, 0, errBusy
	}
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	if g.tlsServer != nil {
		tc := tls.Server(conn, g.tlsServer)
		if err := tc.Handshake(); err != nil {
			return conn, 0, fmt.Errorf("TLS: %w", err)
		}
		conn = tc
	}
	var b [1 + nonceLen]byte
	n := 1
	if g.secret != nil {
		n += nonceLen
	}
	if _, err := io.ReadFull(conn, b[:n]); err != nil {
		return conn, 0, err
	}
	proto := b[0]
	if g.secret != nil {
		nc := b[1:n]
		ns := make([]byte, nonceLen)
		_, _ = rand.Read(ns)
		if _, err := conn.Write(ns); err != nil {
			return conn, 0, err
		}
		got := make([]byte, macLen)
		if _, err := io.ReadFull(conn, got); err != nil {
			return conn, 0, err
		}
		if !hmac.Equal(got, g.proof("client", proto, nc, ns)) {
			return conn, 0, errors.New("wrong cluster secret")
		}
		if _, err := conn.Write(g.proof("server", proto, nc, ns)); err != nil {
			return conn, 0, err
		}
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, proto, nil
}

// dial connects to a member's raft address for one protocol.
func (g *guard) dial(addr string, proto byte, timeout time.Duration) (net.Conn, error) {
	return g.dialWithin(addr, proto, timeout, timeout)
}

// dialWithin is dial with the TCP connect bounded by connect and the
// handshake by timeout.
func (g *guard) dialWithin(addr string, proto byte, connect, timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, min(connect, timeout))
	if err != nil {
		return nil, err
	}
	c, err := g.handshake(conn, proto, timeout)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("cluster: dialing %s: %w", addr, err)
	}
	return c, nil
}

func (g *guard) handshake(conn net.Conn, proto byte, timeout time.Duration) (net.Conn, error) {
	_ = conn.SetDeadline(time.Now().Add(min(timeout, handshakeTimeout)))
	if g.tlsClient != nil {
		tc := tls.Client(conn, g.tlsClient)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		conn = tc
	}
	hello := []byte{proto}
	var nc []byte
	if g.secret != nil {
		nc = make([]byte, nonceLen)
		_, _ = rand.Read(nc)
		hello = append(hello, nc...)
	}
	if _, err := conn.Write(hello); err != nil {
		return nil, err
	}
	if g.secret != nil {
		ns := make([]byte, nonceLen)
		if _, err := io.ReadFull(conn, ns); err != nil {
			return nil, fmt.Errorf("the member did not answer the cluster-secret challenge: %w", err)
		}
		if _, err := conn.Write(g.proof("client", proto, nc, ns)); err != nil {
			return nil, err
		}
		got := make([]byte, macLen)
		if _, err := io.ReadFull(conn, got); err != nil {
			return nil, errors.New("the member refused our cluster secret")
		}
		if !hmac.Equal(got, g.proof("server", proto, nc, ns)) {
			return nil, errors.New("the member does not hold our cluster secret")
		}
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// mux accepts connections on the raft address and hands each, once its
// guard lets it through, to raft or to the internal server by its first
// byte.
type mux struct {
	ln       net.Listener
	guard    *guard
	log      *zap.Logger
	raft     *chanListener
	internal *chanListener
	busy     atomic.Uint64 // connections closed because too many were in their handshake
	done     chan struct{}
	wg       sync.WaitGroup
}

func listenMux(addr string, g *guard, log *zap.Logger) (*mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	m := &mux{ln: ln, guard: g, log: log, done: make(chan struct{})}
	m.raft = newChanListener(ln.Addr(), m.done)
	m.internal = newChanListener(ln.Addr(), m.done)
	m.wg.Add(1)
	go m.serve()
	return m, nil
}

func (m *mux) serve() {
	defer m.wg.Done()
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-m.done:
				return
			case <-time.After(10 * time.Millisecond): // out of fds, say
			}
			continue
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.route(conn)
		}()
	}
}

// route lets the guard check the dialer (a silent one is dropped after
// 5 s), then reads the protocol byte.
func (m *mux) route(raw net.Conn) {
	conn, proto, err := m.guard.accept(raw)
	if err != nil {
		if errors.Is(err, errBusy) {
			// Counted, not logged: a flood would fill the log.
			m.busy.Add(1)
		} else if !errors.Is(err, io.EOF) {
			m.log.Warn("refused a connection on the raft address", zap.Stringer("from", raw.RemoteAddr()), zap.Error(err))
		}
		_ = conn.Close()
		return
	}
	var to *chanListener
	switch proto {
	case protoRaft:
		to = m.raft
	case protoInternal:
		to = m.internal
	default:
		_ = conn.Close()
		return
	}
	select {
	case to.conns <- conn:
	case <-m.done:
		_ = conn.Close()
	case <-to.closed:
		_ = conn.Close()
	}
}

// Close stops accepting; the listeners handed out return errors.
func (m *mux) Close() error {
	select {
	case <-m.done:
		return nil
	default:
	}
	close(m.done)
	err := m.ln.Close()
	m.wg.Wait()
	return err
}

// chanListener is a net.Listener fed by the mux.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{} // the mux's
	closed chan struct{} // this listener's
	once   sync.Once
}

func newChanListener(addr net.Addr, done chan struct{}) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: done, closed: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close stops this listener's Accept; the mux keeps routing to the other.
func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// raftStream is raft's StreamLayer on the mux.
type raftStream struct {
	*chanListener
	advertise net.Addr
	guard     *guard
	// peerClosed, if set, hears when a peer closes a raft connection it
	// opened to this node (leaderloss.go).
	peerClosed func()
}

// Accept hands raft the next inbound connection, watched for the peer's
// end (a leader's process gone closes every connection it had open).
func (s raftStream) Accept() (net.Conn, error) {
	c, err := s.chanListener.Accept()
	if err != nil || s.peerClosed == nil {
		return c, err
	}
	return &closeWatch{Conn: c, closed: s.peerClosed}, nil
}

// closeWatch reports a read that found the peer's end of the connection.
type closeWatch struct {
	net.Conn
	closed func()
	once   sync.Once
}

func (c *closeWatch) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
		c.once.Do(c.closed)
	}
	return n, err
}

func (s raftStream) Addr() net.Addr { return s.advertise }

func (s raftStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.guard.dialWithin(string(address), protoRaft, raftConnectTimeout, timeout)
}

// raftConnectTimeout bounds raft's TCP connect to a member: members are
// on one network, where a connect takes well under a millisecond, and a
// member whose host is gone answers nothing at all (no reset, no ARP):
// the leader must learn that from a failed heartbeat in a fraction of a
// second, not in raft's whole RPC timeout, for what depends on the
// member's liveness (a gateway chassis' SNAT) to move on in time.
const raftConnectTimeout = 300 * time.Millisecond

// InternalDialer dials a member's internal channel as a member does, with
// the cluster secret and TLS client configuration given (either may be
// nil), over connections base opens (nil: a plain net.Dialer): for tools
// that speak the channel, and for tests that knock on it.
func InternalDialer(base func(ctx context.Context, network, addr string) (net.Conn, error), secret []byte, tlsClient *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	g := newGuard(secret, nil, tlsClient)
	if base == nil {
		var d net.Dialer
		base = d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		timeout := handshakeTimeout
		if d, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(d))
		}
		conn, err := base(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c, err := g.handshake(conn, protoInternal, timeout)
		if err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("cluster: dialing %s: %w", addr, err)
		}
		return c, nil
	}
}
