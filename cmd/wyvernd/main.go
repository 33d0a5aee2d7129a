// Command wyvernd is the Wyvern controller daemon: thin wiring of the
// configuration, the logger and controller.Node.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wyvern-sdn/wyvern/controller"
	"github.com/wyvern-sdn/wyvern/internal/buildinfo"
	"github.com/wyvern-sdn/wyvern/internal/keystone"
	"github.com/wyvern-sdn/wyvern/internal/logring"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wyvernd:", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}

// newRegistry is the node's metrics registry, with the Go runtime's and
// the process' families and wyvern_build_info.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "wyvern_build_info", Help: "Always 1; the version in a label.",
		ConstLabels: prometheus.Labels{"version": buildinfo.Version()}})
	build.Set(1)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), build)
	return reg
}

// run starts the node; --help and --version print to stdout and return nil.
func run(args []string, stdout io.Writer) error {
	cfg, err := loadConfig(args)
	switch {
	case errors.Is(err, pflag.ErrHelp):
		_, err = io.WriteString(stdout, usage())
		return err
	case errors.Is(err, errVersion):
		_, err = fmt.Fprintln(stdout, buildinfo.String("wyvernd"))
		return err
	case err != nil:
		return err
	}
	level, _ := zapcore.ParseLevel(cfg.LogLevel)
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.Encoding = cfg.LogFormat
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	log, err := zc.Build()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	ring := logring.New(2000) // the recent lines /debug/logs shows
	log = log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewTee(c, ring.Core(zc.EncoderConfig, zc.Level))
	})).With(zap.String("node", cfg.NodeID))

	mode, _ := pipeline.ParseMode(cfg.Forwarding)
	var chassis *controller.ChassisConfig
	if cfg.OVSDB != "" {
		mappings, _ := cfg.bridgeMappings() // checked by Validate
		chassis = &controller.ChassisConfig{Name: cfg.Chassis, EncapIP: cfg.EncapIP, OVSDB: cfg.OVSDB,
			Bridge: cfg.Bridge, DatapathType: cfg.DatapathType, BridgeMappings: mappings, Gateway: cfg.Gateway}
	}
	secret, err := cfg.clusterSecret()
	if err != nil {
		return err
	}
	var ks *keystone.Config
	if cfg.Auth == "keystone" {
		k := cfg.Keystone
		ks = &keystone.Config{URL: cfg.KeystoneURL, Username: k.Username, Password: k.Password, ProjectName: k.ProjectName,
			UserDomainName: k.UserDomainName, ProjectDomainName: k.ProjectDomainName, CacheTTL: time.Duration(k.CacheSeconds) * time.Second}
	}
	node, err := controller.NewNode(controller.NodeConfig{
		NodeID:       cfg.NodeID,
		DataDir:      cfg.DataDir,
		RaftAddr:     cfg.RaftAddr,
		APIAddr:      cfg.APIAddr,
		OpenFlowAddr: cfg.OpenFlowAddr,
		Join:         cfg.Join,
		Voter:        cfg.Voter,
		Mode:         mode,
		IdleTimeout:  uint16(cfg.IdleTimeout),
		PuntRate:     uint32(cfg.PuntRate),
		PuntBurst:    uint32(cfg.PuntBurst),
		Chassis:      chassis,
		TLS:          cfg.TLS(),

		CommitTimeout: cfg.RaftCommitTimeout,
		ClusterSecret: secret,
		Keystone:      ks,
		Metrics:       newRegistry(),
		DebugAddr:     cfg.DebugAddr,
		LogLevel:      zc.Level,
		Logs:          ring.Lines,
		// Not a flag: a check for tests and for chasing a wrong flow.
		VerifyViews: os.Getenv("WYVERN_VERIFY_VIEWS") == "1",
	}, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return node.Run(ctx)
}
