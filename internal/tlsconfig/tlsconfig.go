// Package tlsconfig turns the node's one cert/key/CA set (--tls-cert,
// --tls-key, --tls-ca) into the TLS configurations of each channel: the
// API (server, client certificates optional), raft and the internal
// channel (mutual: both ends present a certificate the cluster CA
// signed), and the dialing side of each.
//
// Members are recognised by their CA, not by host name: any certificate
// the cluster CA signed is a member (as OVS treats its controllers, and
// as Consul does unless told to check server names). Keep the CA for the
// cluster alone.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Files names the PEM files of one certificate, its key and the CA that
// signs every member's certificate.
type Files struct {
	Cert, Key, CA string
}

// Enabled says whether TLS is configured at all.
func (f Files) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// Check says what is missing or unreadable.
func (f Files) Check() error {
	if !f.Enabled() {
		return nil
	}
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return errors.New("--tls-cert, --tls-key and --tls-ca go together")
	}
	_, _, err := f.load()
	return err
}

func (f Files) load() (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("tls: %w", err)
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, fmt.Errorf("tls: %s holds no PEM certificate", f.CA)
	}
	return cert, pool, nil
}

// Server is the API's configuration: it serves the certificate and
// verifies a client certificate against the CA when one is presented (a
// member or agent proving who it is); clients without one authenticate
// by token.
func (f Files) Server() (*tls.Config, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
		ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}, nil
}

// Mutual is the configuration of a member-only listener (raft, the
// internal channel, OpenFlow): the peer must present a certificate the
// CA signed.
func (f Files) Mutual() (*tls.Config, error) {
	c, err := f.Server()
	if err != nil {
		return nil, err
	}
	c.ClientAuth = tls.RequireAndVerifyClientCert
	return c, nil
}

// Client is the dialing side towards a member: it presents the node's
// certificate and accepts a server whose chain leads to the CA, whatever
// name or address it was dialed by.
func (f Files) Client() (*tls.Config, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// The chain is checked below, against the CA alone.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyChain(cs.PeerCertificates, pool)
		},
	}, nil
}

func verifyChain(certs []*x509.Certificate, roots *x509.CertPool) error {
	if len(certs) == 0 {
		return errors.New("tls: the peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("tls: the peer's certificate is not signed by the cluster CA: %w", err)
	}
	return nil
}
