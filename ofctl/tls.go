package ofctl

import (
	"context"
	"crypto/tls"
	"errors"
	"net"

	"go.uber.org/zap"
)

// listen opens the listener of a network; ssl is tcp wrapped in TLS, so
// that a session reads and writes a net.Conn whatever the transport.
func listen(network, address string, cfg *tls.Config) (net.Listener, error) {
	if network != "ssl" {
		return net.Listen(network, address)
	}
	if cfg == nil {
		return nil, errors.New("ssl: needs a TLS configuration (--tls-cert, --tls-key, --tls-ca)")
	}
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil {
		return nil, errors.New("ssl: the TLS configuration must require a switch certificate signed by the CA")
	}
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(ln, cfg), nil
}

// admit completes a TLS connection's handshake, within the handshake
// timeout, before the OpenFlow one: a switch whose certificate our CA did
// not sign is refused here, logged and counted, and never gets a
// session. Other connections pass as they are.
func (s *Server) admit(ctx context.Context, conn net.Conn) bool {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return true
	}
	hctx, cancel := context.WithTimeout(ctx, s.cfg.HandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		s.refused.Add(1)
		s.log.Warn("switch refused: TLS handshake failed", zap.String("remote", conn.RemoteAddr().String()), zap.Error(err))
		_ = conn.Close()
		return false
	}
	if peer := tc.ConnectionState().PeerCertificates; len(peer) > 0 {
		s.log.Debug("switch certificate accepted", zap.String("remote", conn.RemoteAddr().String()),
			zap.String("subject", peer[0].Subject.String()))
	}
	return true
}

// Refused counts connections refused before a session: TLS handshakes
// that failed, a peer certificate not signed by the CA above all.
func (s *Server) Refused() uint64 { return s.refused.Load() }
