package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.uber.org/zap/zapcore"

	"github.com/wyvern-sdn/wyvern/internal/tlsconfig"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Config is wyvernd's configuration: flags, WYVERN_* environment variables
// and the YAML --config file, in falling precedence.
type Config struct {
	Config       string   `mapstructure:"config"`
	NodeID       string   `mapstructure:"node-id"`
	DataDir      string   `mapstructure:"data-dir"`
	RaftAddr     string   `mapstructure:"raft-addr"`
	APIAddr      string   `mapstructure:"api-addr"`
	OpenFlowAddr string   `mapstructure:"openflow-addr"`
	Join         []string `mapstructure:"join"`
	Voter        string   `mapstructure:"voter"`
	OVSDB        string   `mapstructure:"ovsdb"`
	Chassis      string   `mapstructure:"chassis"`
	EncapIP      string   `mapstructure:"encap-ip"`
	BridgeMaps   []string `mapstructure:"bridge-mappings"`
	Gateway      bool     `mapstructure:"gateway"`
	Bridge       string   `mapstructure:"bridge"`
	DatapathType string   `mapstructure:"datapath-type"`
	Forwarding   string   `mapstructure:"forwarding"`
	IdleTimeout  int      `mapstructure:"idle-timeout"`
	PuntRate     int      `mapstructure:"punt-rate"`
	PuntBurst    int      `mapstructure:"punt-burst"`
	LogLevel     string   `mapstructure:"log-level"`
	LogFormat    string   `mapstructure:"log-format"`
	DebugAddr    string   `mapstructure:"debug-addr"`
	TLSCert      string   `mapstructure:"tls-cert"`
	TLSKey       string   `mapstructure:"tls-key"`
	TLSCA        string   `mapstructure:"tls-ca"`

	RaftCommitTimeout time.Duration `mapstructure:"raft-commit-timeout"`

	Auth              string         `mapstructure:"auth"`
	KeystoneURL       string         `mapstructure:"keystone-url"`
	Keystone          KeystoneConfig `mapstructure:"keystone"`
	ClusterSecretFile string         `mapstructure:"cluster-secret-file"`
}

// KeystoneConfig is the service user wyvernd validates tokens with, under
// `keystone:` in the --config file (or WYVERN_KEYSTONE_<KEY>).
type KeystoneConfig struct {
	Username          string `mapstructure:"username"`
	Password          string `mapstructure:"password"`
	ProjectName       string `mapstructure:"project_name"`
	UserDomainName    string `mapstructure:"user_domain_name"`
	ProjectDomainName string `mapstructure:"project_domain_name"`
	// CacheSeconds bounds how long a validated token is trusted without
	// asking Keystone again: a revoked token is refused within it.
	CacheSeconds int `mapstructure:"cache_seconds"`
}

// keystoneKeys are the keys under `keystone:`, bound to environment
// variables one by one (viper sees nested keys in the environment only
// when told).
var keystoneKeys = []string{"username", "password", "project_name", "user_domain_name", "project_domain_name", "cache_seconds"}

// minSecretBytes is the shortest cluster secret accepted.
const minSecretBytes = 32

func flags() *pflag.FlagSet {
	host, _ := os.Hostname()
	fs := pflag.NewFlagSet("wyvernd", pflag.ContinueOnError)
	fs.String("config", "", "optional YAML file with any of these settings")
	fs.String("node-id", host, "unique node name")
	fs.String("data-dir", "", "raft log and snapshots (default ./wyvern-data/<node-id>)")
	fs.String("raft-addr", "127.0.0.1:7946", "raft bind and advertise address HOST:PORT")
	fs.String("api-addr", "127.0.0.1:9696", "northbound API listen address HOST:PORT")
	fs.String("openflow-addr", "tcp:127.0.0.1:6653", "where bridges connect: tcp:HOST:PORT, ssl:HOST:PORT (with --tls-*) or unix:PATH")
	fs.StringSlice("join", nil, "API URL(s) of running members, comma separated; empty bootstraps a new cluster")
	fs.String("voter", "auto", "auto|true|false: auto is a voter while the cluster has fewer than 3 voters")
	fs.String("ovsdb", "", "manage the local OVS at unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT (empty: no local OVS)")
	fs.String("chassis", "", "chassis name of the local OVS (default: node-id)")
	fs.String("encap-ip", "", "tunnel endpoint address of the local chassis (required with --ovsdb)")
	fs.StringSlice("bridge-mappings", nil, "physical networks this chassis reaches, PHYSNET:BRIDGE[,...]: each an existing OVS bridge holding the uplink (e.g. physnet1:br-ex); wyvernd patches the integration bridge to each")
	fs.Bool("gateway", false, "this chassis may host routers' centralized SNAT (a gateway chassis); it needs a bridge mapping of the external network")
	fs.String("bridge", "br-int", "integration bridge")
	fs.String("datapath-type", "system", "system or netdev, for the bridge wyvernd creates")
	fs.String("forwarding", "reactive", "reactive|proactive")
	fs.Int("idle-timeout", 60, "seconds a reactive flow lives without traffic")
	fs.Int("punt-rate", 100, "packets/s each local port may punt to the controller (an OVS meter; reactive mode)")
	fs.Int("punt-burst", 100, "packets a local port may punt in a burst above --punt-rate")
	fs.String("log-level", "info", "debug|info|warn|error (changed at run time through --debug-addr's /debug/log-level)")
	fs.String("log-format", "console", "console|json: json writes one JSON object per line (for journald, Loki, Elasticsearch)")
	fs.String("debug-addr", "127.0.0.1:9697", "debug listener HOST:PORT: /metrics, /debug/pprof/, /debug/log-level, without authentication (keep it on loopback or a management network; empty: none)")
	fs.Duration("raft-commit-timeout", 2*time.Millisecond,
		"how long an idle leader waits before telling followers what is committed: bounds how far a follower's view lags a write (each follower costs the leader one message per interval)")
	fs.String("auth", "none", "none|keystone: none makes every request admin (labs, demos); keystone validates X-Auth-Token against --keystone-url")
	fs.String("keystone-url", "", "Keystone v3 URL, e.g. http://keystone:5000/v3 (with --auth keystone; service user under keystone: in --config)")
	fs.String("cluster-secret-file", "", "file holding the secret nodes present to each other on raft and the internal channel (at least 32 bytes, e.g. openssl rand -hex 32)")
	fs.String("tls-cert", "", "PEM certificate of this node, signed by --tls-ca: serves the API over HTTPS and raft over mutual TLS")
	fs.String("tls-key", "", "PEM private key of --tls-cert")
	fs.String("tls-ca", "", "PEM CA certificate that signs every member's, and every OVS', certificate")
	fs.Bool(versionFlag, false, "print the version and exit")
	fs.SortFlags = false
	fs.Usage = func() {} // run prints help; a bad flag is one line
	return fs
}

// versionFlag asks for the version; it is no setting, so it is neither
// bound to viper nor a key of Config.
const versionFlag = "version"

// errVersion is loadConfig's answer to --version, as pflag.ErrHelp is to
// --help: print and exit 0.
var errVersion = errors.New("version requested")

// usage is what --help prints.
func usage() string {
	return "Usage: wyvernd [flags]\n\nThe Wyvern controller daemon. Every flag is also a WYVERN_<NAME> environment\nvariable and a key in the --config file.\n\nFlags:\n" +
		flags().FlagUsages()
}

// loadConfig reads flags, environment and the optional file strictly:
// unknown keys in the file are errors.
func loadConfig(args []string) (Config, error) {
	fs := flags()
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if v, _ := fs.GetBool(versionFlag); v {
		return Config{}, errVersion
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	v := viper.New()
	v.SetEnvPrefix("WYVERN")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	var bindErr error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != versionFlag && bindErr == nil {
			bindErr = v.BindPFlag(f.Name, f)
		}
	})
	if bindErr != nil {
		return Config{}, bindErr
	}
	v.SetDefault("keystone.user_domain_name", "Default")
	v.SetDefault("keystone.project_domain_name", "Default")
	v.SetDefault("keystone.project_name", "service")
	v.SetDefault("keystone.cache_seconds", 30)
	for _, k := range keystoneKeys {
		if err := v.BindEnv("keystone."+k, "WYVERN_KEYSTONE_"+strings.ToUpper(k)); err != nil {
			return Config{}, err
		}
	}
	if file := v.GetString("config"); file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", file, err)
		}
	}
	var c Config
	if err := v.UnmarshalExact(&c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	// An environment variable arrives as one string: split it like the flag.
	if len(c.Join) == 1 && strings.Contains(c.Join[0], ",") {
		c.Join = strings.Split(c.Join[0], ",")
	}
	if c.DataDir == "" {
		c.DataDir = filepath.Join("wyvern-data", c.NodeID)
	}
	if c.Chassis == "" {
		c.Chassis = c.NodeID
	}
	return c, c.Validate()
}

// TLS is the node's certificate, key and CA.
func (c Config) TLS() tlsconfig.Files {
	return tlsconfig.Files{Cert: c.TLSCert, Key: c.TLSKey, CA: c.TLSCA}
}

// Validate checks every setting and says what is wrong.
func (c Config) Validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("--node-id must not be empty"))
	}
	for flag, addr := range map[string]string{"--raft-addr": c.RaftAddr, "--api-addr": c.APIAddr} {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" || port == "0" {
			errs = append(errs, fmt.Errorf("%s %q: want HOST:PORT with a fixed port", flag, addr))
		}
	}
	for _, j := range c.Join {
		if u, err := url.Parse(j); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--join %q: want an API URL such as http://10.0.0.1:9696", j))
		}
	}
	switch c.Voter {
	case "auto", "true", "false":
	default:
		errs = append(errs, fmt.Errorf("--voter %q: want auto, true or false", c.Voter))
	}
	if err := c.TLS().Check(); err != nil {
		errs = append(errs, err)
	}
	if c.OVSDB != "" {
		if network, _, err := ofctl.ParseAddr(c.OVSDB); err != nil {
			errs = append(errs, fmt.Errorf("--ovsdb: %w", err))
		} else if network == "ssl" && !c.TLS().Enabled() {
			errs = append(errs, fmt.Errorf("--ovsdb %s: needs --tls-cert, --tls-key and --tls-ca", c.OVSDB))
		}
		if ip, err := netip.ParseAddr(c.EncapIP); err != nil || !ip.Is4() {
			errs = append(errs, fmt.Errorf("--encap-ip %q: an IPv4 address is required with --ovsdb", c.EncapIP))
		}
		if c.Bridge == "" {
			errs = append(errs, errors.New("--bridge must not be empty"))
		}
		if c.DatapathType != "system" && c.DatapathType != "netdev" {
			errs = append(errs, fmt.Errorf("--datapath-type %q: want system or netdev", c.DatapathType))
		}
		if _, err := c.bridgeMappings(); err != nil {
			errs = append(errs, err)
		}
	} else if len(c.BridgeMaps) > 0 || c.Gateway {
		errs = append(errs, errors.New("--bridge-mappings and --gateway describe the local chassis: they need --ovsdb"))
	}
	if network, _, err := ofctl.ParseAddr(c.OpenFlowAddr); err != nil {
		errs = append(errs, fmt.Errorf("--openflow-addr: %w", err))
	} else if network == "ssl" && !c.TLS().Enabled() {
		errs = append(errs, fmt.Errorf("--openflow-addr %s: needs --tls-cert, --tls-key and --tls-ca", c.OpenFlowAddr))
	}
	if c.PuntRate < 1 || c.PuntRate > 1000000 {
		errs = append(errs, fmt.Errorf("--punt-rate %d: want 1..1000000 packets/s", c.PuntRate))
	}
	if c.PuntBurst < 1 || c.PuntBurst > 1000000 {
		errs = append(errs, fmt.Errorf("--punt-burst %d: want 1..1000000 packets", c.PuntBurst))
	}
	if c.IdleTimeout < 1 || c.IdleTimeout > 65535 {
		errs = append(errs, fmt.Errorf("--idle-timeout %d: want 1..65535 seconds", c.IdleTimeout))
	}
	if _, err := pipeline.ParseMode(c.Forwarding); err != nil {
		errs = append(errs, fmt.Errorf("--forwarding: %w", err))
	}
	if c.RaftCommitTimeout < time.Millisecond || c.RaftCommitTimeout > 10*time.Second {
		errs = append(errs, fmt.Errorf("--raft-commit-timeout %s: want 1ms..10s (raft refuses less than 1ms)", c.RaftCommitTimeout))
	}
	switch c.Auth {
	case "none":
	case "keystone":
		if u, err := url.Parse(c.KeystoneURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--keystone-url %q: --auth keystone needs Keystone's URL, such as http://keystone:5000/v3", c.KeystoneURL))
		}
		if c.Keystone.Username == "" || c.Keystone.Password == "" {
			errs = append(errs, errors.New("--auth keystone needs the service user: keystone.username and keystone.password in --config (or WYVERN_KEYSTONE_USERNAME/_PASSWORD)"))
		}
		if c.Keystone.CacheSeconds < 1 || c.Keystone.CacheSeconds > 3600 {
			errs = append(errs, fmt.Errorf("keystone.cache_seconds %d: want 1..3600", c.Keystone.CacheSeconds))
		}
	default:
		errs = append(errs, fmt.Errorf("--auth %q: want none or keystone", c.Auth))
	}
	if c.ClusterSecretFile != "" {
		if _, err := c.clusterSecret(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.LogFormat != "console" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want console or json", c.LogFormat))
	}
	if c.DebugAddr != "" {
		if _, _, err := net.SplitHostPort(c.DebugAddr); err != nil {
			errs = append(errs, fmt.Errorf("--debug-addr %q: want HOST:PORT", c.DebugAddr))
		}
	}
	if _, err := zapcore.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	return errors.Join(errs...)
}

// bridgeMappings parses --bridge-mappings: PHYSNET:BRIDGE pairs, each
// physical network once, each bridge neither the integration bridge nor
// another mapping's.
func (c Config) bridgeMappings() (map[string]string, error) {
	out := map[string]string{}
	bridges := map[string]bool{}
	for _, m := range c.BridgeMaps {
		physnet, br, ok := strings.Cut(strings.TrimSpace(m), ":")
		if !ok || physnet == "" || br == "" || strings.ContainsAny(physnet, ":/ ") {
			return nil, fmt.Errorf("--bridge-mappings %q: want PHYSNET:BRIDGE", m)
		}
		if _, dup := out[physnet]; dup {
			return nil, fmt.Errorf("--bridge-mappings: physical network %s is mapped twice", physnet)
		}
		if br == c.Bridge || bridges[br] {
			return nil, fmt.Errorf("--bridge-mappings: bridge %s is the integration bridge or mapped twice", br)
		}
		out[physnet], bridges[br] = br, true
	}
	return out, nil
}

// clusterSecret reads --cluster-secret-file (surrounding white space is
// not part of the secret).
func (c Config) clusterSecret() ([]byte, error) {
	if c.ClusterSecretFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(c.ClusterSecretFile)
	if err != nil {
		return nil, fmt.Errorf("--cluster-secret-file: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < minSecretBytes {
		return nil, fmt.Errorf("--cluster-secret-file %s: the secret has %d bytes, want at least %d (e.g. openssl rand -hex 32)", c.ClusterSecretFile, len(b), minSecretBytes)
	}
	return b, nil
}
