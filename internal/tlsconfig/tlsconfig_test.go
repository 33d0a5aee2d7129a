package tlsconfig_test

import (
	"crypto/tls"
	"io"
	"strings"
	"testing"

	"github.com/wyvern-sdn/wyvern/internal/tlsconfig"
	"github.com/wyvern-sdn/wyvern/internal/tlsconfig/tlstest"
)

// handshake runs one mutual-TLS exchange and returns each side's error.
func handshake(t *testing.T, server, client tlsconfig.Files) (serverErr, clientErr error) {
	t.Helper()
	sc, err := server.Mutual()
	if err != nil {
		t.Fatal(err)
	}
	cc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	return exchange(t, sc, cc)
}

// exchange runs one TLS handshake between the two configurations and
// returns each side's error.
func exchange(t *testing.T, sc, cc *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", sc)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		err = c.(*tls.Conn).Handshake()
		if err == nil {
			_, err = c.Write([]byte("ok"))
		}
		done <- err
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), cc)
	if err == nil {
		_, err = io.ReadAll(c)
		c.Close()
	}
	return <-done, err
}

// handshakeForcing is handshake with a client that presents its
// certificate whatever CAs the server asks for (Go's client would
// otherwise keep back one the server cannot accept), or none when
// client is empty, and verifies the server as a member does.
func handshakeForcing(t *testing.T, server, client tlsconfig.Files) (serverErr, clientErr error) {
	t.Helper()
	sc, err := server.Mutual()
	if err != nil {
		t.Fatal(err)
	}
	verify, err := server.Client() // trusts the server's CA
	if err != nil {
		t.Fatal(err)
	}
	cc := verify.Clone()
	cc.Certificates = nil
	var cert *tls.Certificate
	if client.Cert != "" {
		c, err := tls.LoadX509KeyPair(client.Cert, client.Key)
		if err != nil {
			t.Fatal(err)
		}
		cert = &c
	}
	cc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if cert == nil {
			return &tls.Certificate{}, nil
		}
		return cert, nil
	}
	return exchange(t, sc, cc)
}

func TestMembersOfOneCAShakeHands(t *testing.T) {
	ca := tlstest.NewCA(t, t.TempDir(), "cluster")
	if s, c := handshake(t, ca.Issue(t, "n1"), ca.Issue(t, "n2")); s != nil || c != nil {
		t.Fatalf("server %v, client %v", s, c)
	}
}

func TestForeignCAIsRefusedBothWays(t *testing.T) {
	dir := t.TempDir()
	ours, theirs := tlstest.NewCA(t, dir, "cluster"), tlstest.NewCA(t, dir, "foreign")
	// A node with a foreign certificate, which trusts our CA (so it
	// gets as far as presenting it), dials us: we refuse it.
	evil := theirs.Issue(t, "evil")
	evil.CA = ours.File
	if s, _ := handshakeForcing(t, ours.Issue(t, "n1"), evil); s == nil || !strings.Contains(s.Error(), "certificate") {
		t.Fatalf("server accepted a client certificate from a foreign CA: %v", s)
	}
	// And one with no certificate at all.
	if s, _ := handshakeForcing(t, ours.Issue(t, "n1"), tlsconfig.Files{}); s == nil {
		t.Fatal("server accepted a client without a certificate")
	}
	// We dial a server with a foreign certificate: we refuse it.
	if _, c := handshake(t, theirs.Issue(t, "evil"), ours.Issue(t, "n1")); c == nil || !strings.Contains(c.Error(), "cluster CA") {
		t.Fatalf("client accepted a foreign server: %v", c)
	}
}

func TestFilesGoTogether(t *testing.T) {
	if err := (tlsconfig.Files{Cert: "a"}).Check(); err == nil {
		t.Fatal("a cert without key and CA passed")
	}
	if err := (tlsconfig.Files{}).Check(); err != nil {
		t.Fatal(err)
	}
}
