package ovstest

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Do runs f with the calling goroutine inside the namespace, so that
// sockets f opens (a controller's listener on the namespace's 127.0.0.1)
// live there. Goroutines f starts run in the caller's namespace.
func (n *NetNS) Do(f func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + n.Name)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := setns(target.Fd()); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", n.Name, err)
	}
	ferr := f()
	if err := setns(orig.Fd()); err != nil {
		// Leave the thread locked: Go ends a locked thread with its
		// goroutine, so no other goroutine runs in the wrong namespace.
		return fmt.Errorf("restoring namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

func setns(fd uintptr) error {
	return unix.Setns(int(fd), unix.CLONE_NEWNET)
}

// DialContext opens a connection from inside the namespace, for clients
// (an http.Transport) that must reach addresses only the namespace sees.
func (n *NetNS) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := n.Do(func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// Forward makes a service of the test's own namespace (a Keystone on the
// host's loopback, say) reachable from inside the namespace: it listens
// on the namespace's loopback and relays each connection to target, and
// returns the address to use inside (listen, e.g. 127.0.0.1:0). It
// stops when the test ends.
func (n *NetNS) Forward(t testing.TB, listen, target string) string {
	t.Helper()
	return n.Serve(t, listen, func(in net.Conn) {
		out, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer out.Close()
		go func() { _, _ = io.Copy(out, in); out.(*net.TCPConn).CloseWrite() }()
		_, _ = io.Copy(in, out)
	})
}

// Serve listens on addr (TCP, IPv4) inside the namespace and hands each
// connection to handle, in a goroutine of its own, closing it after; it
// returns the address it listens on, and stops when the test ends.
func (n *NetNS) Serve(t testing.TB, addr string, handle func(net.Conn)) string {
	t.Helper()
	var ln net.Listener
	if err := n.Do(func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatalf("listening on %s in %s: %v", addr, n.Name, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return ln.Addr().String()
}
