package cluster

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// acceptOn runs the guard's accept on the server end of a pipe and
// returns its outcome.
func acceptOn(g *guard, server net.Conn) chan error {
	done := make(chan error, 1)
	go func() {
		_, proto, err := g.accept(server)
		if err == nil && proto != protoInternal {
			err = io.ErrUnexpectedEOF
		}
		done <- err
	}()
	return done
}

func TestGuardAdmitsOnlyHoldersOfTheSecret(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	for _, tc := range []struct {
		name   string
		client []byte
		ok     bool
	}{
		{"same secret", secret, true},
		{"other secret", []byte("fedcba9876543210fedcba9876543210"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := net.Pipe()
			defer c.Close()
			done := acceptOn(newGuard(secret, nil, nil), s)
			_, err := newGuard(tc.client, nil, nil).handshake(c, protoInternal, time.Second)
			if tc.ok != (err == nil) {
				t.Fatalf("client handshake: %v", err)
			}
			if !tc.ok {
				s.Close() // the client gave up on the server's proof
			}
			if serr := <-done; tc.ok != (serr == nil) {
				t.Fatalf("server accept: %v", serr)
			}
		})
	}
}

// TestStrangersCannotHoldTheGuard: past maxHandshakes connections still
// proving themselves, a new one is closed at once.
func TestStrangersCannotHoldTheGuard(t *testing.T) {
	g := newGuard([]byte("0123456789abcdef0123456789abcdef"), nil, nil)
	var silent []net.Conn
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	for range maxHandshakes {
		c, s := net.Pipe()
		silent = append(silent, c, s)
		go func() { _, _, _ = g.accept(s) }()
	}
	for len(g.handshakes) < maxHandshakes {
		time.Sleep(time.Millisecond)
	}
	c, s := net.Pipe()
	defer c.Close()
	start := time.Now()
	if _, _, err := g.accept(s); err != errBusy || time.Since(start) > time.Second {
		t.Fatalf("a connection past the bound: %v after %v", err, time.Since(start))
	}
}

// FuzzGuardAccept feeds the guard whatever a stranger might send: it never
// panics and never admits a connection without the secret's proof.
func FuzzGuardAccept(f *testing.F) {
	f.Add([]byte{protoInternal})
	f.Add(append([]byte{protoRaft}, bytes.Repeat([]byte{0}, nonceLen+macLen)...))
	f.Add([]byte("POST /internal/propose HTTP/1.1\r\nHost: x\r\n\r\n{}"))
	secret := []byte("0123456789abcdef0123456789abcdef")
	f.Fuzz(func(t *testing.T, in []byte) {
		c, s := net.Pipe()
		defer c.Close()
		done := make(chan error, 1)
		go func() {
			_, _, err := newGuard(secret, nil, nil).accept(s)
			s.Close()
			done <- err
		}()
		go func() { _, _ = io.Copy(io.Discard, c) }() // drain the challenge
		go func() {
			_, _ = c.Write(in)
			c.Close() // and hang up: a stranger has nothing more to say
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("the guard admitted %q", in)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the guard hung")
		}
	})
}
