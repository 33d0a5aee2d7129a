package cluster

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
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

// mux accepts connections on the raft address and hands each to raft or
// to the internal server by its first byte.
type mux struct {
	ln       net.Listener
	raft     *chanListener
	internal *chanListener
	done     chan struct{}
	wg       sync.WaitGroup
}

func listenMux(addr string) (*mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	m := &mux{ln: ln, done: make(chan struct{})}
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

// route reads the protocol byte (a silent dialer is dropped after 5 s).
func (m *mux) route(conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil {
		_ = conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	var to *chanListener
	switch b[0] {
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

// dial connects to a member's raft address for one protocol.
func dial(network, addr string, proto byte, timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte{proto}); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("cluster: dialing %s: %w", addr, err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

// raftStream is raft's StreamLayer on the mux.
type raftStream struct {
	*chanListener
	advertise net.Addr
}

func (s raftStream) Addr() net.Addr { return s.advertise }

func (s raftStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dial("tcp", string(address), protoRaft, timeout)
}
