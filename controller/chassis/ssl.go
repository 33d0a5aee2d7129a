package chassis

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/controller/chassis/vswitch"
	"github.com/wyvern-sdn/wyvern/internal/tlsconfig"
)

// absFiles makes the node's TLS files absolute: ovs-vswitchd opens them
// from its own working directory.
func absFiles(f tlsconfig.Files) tlsconfig.Files {
	for _, p := range []*string{&f.Cert, &f.Key, &f.CA} {
		if *p != "" {
			if abs, err := filepath.Abs(*p); err == nil {
				*p = abs
			}
		}
	}
	return f
}

// dialOptions are libovsdb's options for the endpoint: an ssl: endpoint
// is dialed with the node's certificate, and the server must present one
// the node's CA signed. The files are read on every connect, so a renewed
// certificate is picked up by the next session.
func (a *Agent) dialOptions() ([]client.Option, error) {
	opts := []client.Option{client.WithEndpoint(a.cfg.Endpoint),
		client.WithMetricsRegistryNamespaceSubsystem(a.metrics, "wyvern", "ovsdb")}
	if !strings.HasPrefix(a.cfg.Endpoint, "ssl:") {
		return opts, nil
	}
	if !a.cfg.TLS.Enabled() {
		return nil, fmt.Errorf("OVSDB endpoint %s needs --tls-cert, --tls-key and --tls-ca", a.cfg.Endpoint)
	}
	tc, err := a.cfg.TLS.Client()
	if err != nil {
		return nil, err
	}
	return append(opts, client.WithTLSConfig(tc)), nil
}

// ensureSSL makes OVSDB hold what `ovs-vsctl set-ssl KEY CERT CA` would:
// the Open_vSwitch row's ssl column naming an SSL row with the node's
// files, so that ovs-vswitchd reaches an ssl: controller with the node's
// own certificate and admits only a controller the CA signed. A row that
// drifted is corrected in place. Without TLS files the column is left
// as it is.
func (a *Agent) ensureSSL(ctx context.Context, ovs client.Client, root *vswitch.OpenvSwitch) ([]ovsdb.Operation, error) {
	if !a.cfg.TLS.Enabled() {
		return nil, nil
	}
	want := &vswitch.SSL{PrivateKey: a.cfg.TLS.Key, Certificate: a.cfg.TLS.Cert, CaCert: a.cfg.TLS.CA}
	if root.SSL != nil {
		have := &vswitch.SSL{UUID: *root.SSL}
		err := ovs.Get(ctx, have)
		switch {
		case err == nil:
			if have.PrivateKey == want.PrivateKey && have.Certificate == want.Certificate && have.CaCert == want.CaCert && !have.BootstrapCaCert {
				return nil, nil
			}
			want.UUID = have.UUID
			a.log.Info("OVS's SSL configuration differs from the node's files; restoring it",
				zap.String("cert", have.Certificate), zap.String("want-cert", want.Certificate))
			return ovs.Where(have).Update(want, &want.PrivateKey, &want.Certificate, &want.CaCert, &want.BootstrapCaCert)
		case !errors.Is(err, client.ErrNotFound):
			return nil, err
		}
	}
	want.UUID = "ssl"
	ops, err := ovs.Create(want)
	if err != nil {
		return nil, err
	}
	upd := *root
	upd.SSL = &want.UUID
	uops, err := ovs.Where(root).Update(&upd, &upd.SSL)
	if err != nil {
		return nil, err
	}
	a.log.Info("giving OVS the node's certificate (set-ssl)", zap.String("cert", want.Certificate))
	return append(ops, uops...), nil
}
