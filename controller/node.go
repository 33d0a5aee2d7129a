// Package controller wires one wyvernd together and does nothing else: the
// cluster (raft, FSM, feed, internal channel), the northbound API, the
// bridge loops behind the OpenFlow listener, and, with a local OVS, the
// chassis agent. Each part is a package of its own under controller/;
// none imports a sibling except through the interfaces wired here (the
// API and the chassis take the cluster). Only cmd imports this package.
package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/wyvern-sdn/wyvern/controller/debugsrv"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/controller/bridge"
	"github.com/wyvern-sdn/wyvern/controller/chassis"
	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/controller/explain"
	"github.com/wyvern-sdn/wyvern/controller/northbound"
	"github.com/wyvern-sdn/wyvern/internal/keystone"
	"github.com/wyvern-sdn/wyvern/internal/tlsconfig"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// NodeConfig is everything a node needs, already validated by cmd.
type NodeConfig struct {
	// VerifyViews: cluster.Config.VerifyViews.
	VerifyViews  bool
	NodeID       string
	DataDir      string
	RaftAddr     string // bind and advertise; raft and the internal channel
	APIAddr      string // northbound API listen address; empty: OpenFlow only
	OpenFlowAddr string // tcp:HOST:PORT, ssl:HOST:PORT or unix:PATH
	Join         []string
	Voter        string
	Mode         pipeline.Mode
	// IdleTimeout is how long, in seconds, a reactive flow lives without
	// traffic (default 60).
	IdleTimeout uint16
	// PuntRate and PuntBurst bound what each local port may punt (see
	// bridge.Config).
	PuntRate, PuntBurst uint32
	// CommitTimeout: see cluster.Config.
	CommitTimeout time.Duration
	// Chassis, when set, makes the node manage its local OVS.
	Chassis *ChassisConfig
	// TLS, when set, is the node's certificate, key and CA: the API
	// over HTTPS, raft and the internal channel over mutual TLS, an ssl:
	// OpenFlow address admitting only switches the CA signed, and the
	// local OVS given the same files (ovs-vsctl set-ssl).
	TLS tlsconfig.Files
	// ClusterSecret, when set, is what members prove they hold on raft
	// and the internal channel.
	ClusterSecret []byte
	// Keystone, when set, is --auth keystone: every API request but
	// discovery needs a token Keystone vouches for.
	Keystone *keystone.Config
	// Metrics is the node's Prometheus registry: every part registers its
	// families there; GET /metrics (API, admin only) and the debug
	// listener serve it. Nil: a registry of the node's own.
	Metrics *prometheus.Registry
	// DebugAddr, when set, is the debug listener (pprof, the log level,
	// metrics; no authentication). LogLevel is the level it changes.
	DebugAddr string
	LogLevel  zap.AtomicLevel
	// Logs, if set, are the node's recent log lines (/debug/logs).
	Logs func() []string
}

// ChassisConfig is the local chassis a node manages through its agent.
type ChassisConfig struct {
	Name         string
	EncapIP      string
	OVSDB        string // endpoint of the local ovsdb-server
	Bridge       string
	DatapathType string
	// BridgeMappings: physical network → bridge of its uplink; Gateway:
	// the chassis may host routers' SNAT.
	BridgeMappings map[string]string
	Gateway        bool
}

// Node is one wyvernd.
type Node struct {
	cfg      NodeConfig
	log      *zap.Logger
	openflow *ofctl.Server
	bridges  *bridge.Manager
	cluster  *cluster.Cluster   // nil: OpenFlow only
	api      *northbound.Server // nil: OpenFlow only
	apiLn    net.Listener
	chassis  *chassis.Chassis // nil without a local OVS
	resync   chan struct{}    // a bridge asks the watcher for the whole view
}

// NewNode opens the node's listeners and its raft state; Run serves them.
func NewNode(cfg NodeConfig, log *zap.Logger) (*Node, error) {
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	n := &Node{cfg: cfg, log: log, resync: make(chan struct{}, 1)}
	probe := cfg.Chassis != nil && cfg.Chassis.DatapathType == "netdev"
	n.bridges = bridge.NewManager(bridge.Config{Mode: cfg.Mode, IdleTimeout: cfg.IdleTimeout,
		PuntRate: cfg.PuntRate, PuntBurst: cfg.PuntBurst, ProbeTunnels: probe, WaitLocal: cfg.Chassis != nil, Metrics: cfg.Metrics},
		bridge.Hooks{Claim: n.claimVIP, Learn: n.learnNeighbour, Programmed: n.programmed, Resync: n.askResync,
			Mastership: n.mastership, Remote: n.remoteBridge, ReportRemote: n.reportRemote}, log)
	ofcfg := ofctl.Config{Addr: cfg.OpenFlowAddr, TableNames: pipeline.TableNames(), PuntSource: bridge.PuntSource}
	if network, _, _ := ofctl.ParseAddr(cfg.OpenFlowAddr); network == "ssl" && cfg.TLS.Enabled() {
		var err error
		if ofcfg.TLS, err = cfg.TLS.Mutual(); err != nil {
			return nil, fmt.Errorf("node %s: OpenFlow: %w", cfg.NodeID, err)
		}
	}
	srv, err := ofctl.Listen(ofcfg, n.bridges, log)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", cfg.NodeID, err)
	}
	n.openflow = srv
	if cfg.APIAddr == "" { // OpenFlow only: the base pipeline, for tests of the southbound
		n.bridges.Update(view.Build(topology.New()), nil, true)
		n.bridges.SetReady()
		return n, nil
	}
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("node %s: API listener: %w", cfg.NodeID, err)
	}
	if cfg.TLS.Enabled() {
		tc, err := cfg.TLS.Server()
		if err != nil {
			ln.Close()
			srv.Close()
			return nil, fmt.Errorf("node %s: %w", cfg.NodeID, err)
		}
		ln = tls.NewListener(ln, tc)
	}
	n.apiLn = ln
	n.cfg.APIAddr = ln.Addr().String()
	n.cluster, err = cluster.New(cluster.Config{NodeID: cfg.NodeID, DataDir: cfg.DataDir, RaftAddr: cfg.RaftAddr,
		APIAddr: n.cfg.APIAddr, OpenFlowAddr: cfg.OpenFlowAddr, Join: cfg.Join, Voter: cfg.Voter,
		CommitTimeout: cfg.CommitTimeout, TLS: cfg.TLS, Secret: cfg.ClusterSecret, Metrics: cfg.Metrics,
		VerifyViews: cfg.VerifyViews}, log)
	if err != nil {
		ln.Close()
		srv.Close()
		return nil, fmt.Errorf("node %s: %w", cfg.NodeID, err)
	}
	opts := northbound.Options{Debug: func(ctx context.Context) any {
		return n.bridges.Debug(ctx, cfg.NodeID, n.cluster.View(), n.openflow.Switches())
	}, Unready: n.unready, Registry: cfg.Metrics, Metrics: promhttp.HandlerFor(cfg.Metrics, promhttp.HandlerOpts{})}
	opts.Explain = n.explainer()
	if cfg.Keystone != nil {
		opts.Auth, opts.KeystoneURI = keystoneAuth{keystone.New(*cfg.Keystone)}, cfg.Keystone.URL
	}
	n.api = northbound.New(n.cluster, opts, log)
	n.warnOpenDoors()
	if c := cfg.Chassis; c != nil {
		n.chassis = chassis.New(chassis.Config{Name: c.Name, EncapIP: c.EncapIP, OVSDB: c.OVSDB, Bridge: c.Bridge,
			DatapathType: c.DatapathType, Controller: srv.Target(), NodeID: cfg.NodeID, TLS: cfg.TLS,
			BridgeMappings: c.BridgeMappings, Gateway: c.Gateway, Metrics: cfg.Metrics, OtherControllers: n.otherControllers}, n.cluster,
			chassis.Hooks{Local: n.local, Connected: n.connected}, log)
	}
	return n, nil
}

// OpenFlowAddr is where bridges connect.
func (n *Node) OpenFlowAddr() string { return n.openflow.Addr().String() }

// APIAddr is where the northbound API listens.
func (n *Node) APIAddr() string { return n.cfg.APIAddr }

// Run serves until ctx ends, then shuts down gracefully: the API stops
// taking requests and finishes those in flight, raft steps down, bridges
// keep their flows.
func (n *Node) Run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	n.log.Info("node running", zap.String("node-id", n.cfg.NodeID),
		zap.String("openflow-addr", n.cfg.OpenFlowAddr), zap.String("api-addr", n.cfg.APIAddr),
		zap.String("raft-addr", n.cfg.RaftAddr), zap.Stringer("forwarding", n.cfg.Mode))
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	run := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	if n.cluster != nil {
		run(func() {
			if err := n.cluster.Run(ctx); err != nil {
				errs <- err
			}
		})
		run(func() {
			select {
			case <-n.cluster.ReadyCh():
				n.bridges.SetReady()
				if n.chassis != nil {
					n.chassis.Kick() // hand the bridges the local bridge at once
				}
			case <-ctx.Done():
			}
		})
		run(func() {
			n.cluster.Watch(ctx, cluster.Watcher{
				Fn: func(v *view.View, changes []topology.Change, resync bool) {
					n.bridges.Update(v, changes, resync)
					if n.chassis != nil {
						n.chassis.Kick()
						if resync || slices.ContainsFunc(changes, func(c topology.Change) bool { return c.Resource == topology.ResourceMember }) {
							n.chassis.MembersChanged()
						}
					}
				},
				// A node with no bridge connected (a control node, or a
				// hypervisor whose vswitchd is down) builds no views.
				Want:   n.bridges.WantsViews,
				Resync: n.resync,
			})
		})
		run(func() {
			if err := n.api.Serve(n.apiLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("API: %w", err)
			}
		})
	}
	if n.chassis != nil {
		run(func() { n.chassis.Run(ctx) })
	}
	if n.cfg.DebugAddr != "" {
		run(func() { n.serveDebug(ctx) })
	}
	run(func() {
		if err := n.openflow.Serve(ctx); err != nil {
			errs <- err
		}
	})
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	cancel()
	n.openflow.Close()
	if n.api != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = n.api.Shutdown(sctx)
		scancel()
	}
	wg.Wait()
	return err
}

// serveDebug runs the debug listener until ctx ends. The listener is no
// part of the node's job: an address it cannot bind is an error in the
// log, not a reason to stop.
func (n *Node) serveDebug(ctx context.Context) {
	ln, err := net.Listen("tcp", n.cfg.DebugAddr)
	if err != nil {
		n.log.Error("debug listener not started", zap.String("debug-addr", n.cfg.DebugAddr), zap.Error(err))
		return
	}
	level := n.cfg.LogLevel
	if level == (zap.AtomicLevel{}) {
		level = zap.NewAtomicLevel()
	}
	srv := &http.Server{Handler: debugsrv.Handler(n.cfg.Metrics, level), ReadHeaderTimeout: 10 * time.Second}
	n.log.Info("debug listener", zap.String("debug-addr", ln.Addr().String()))
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		n.log.Error("debug listener stopped", zap.Error(err))
	}
}

// keystoneAuth answers the API's Authenticator with Keystone's word:
// the admin role is admin, as in Neutron's default policy.
type keystoneAuth struct{ v *keystone.Validator }

func (k keystoneAuth) Authenticate(ctx context.Context, token string) (northbound.Caller, error) {
	id, err := k.v.Validate(ctx, token)
	if errors.Is(err, keystone.ErrInvalidToken) {
		return northbound.Caller{}, fmt.Errorf("%w: %v", northbound.ErrUnauthenticated, err)
	}
	if err != nil {
		return northbound.Caller{}, err
	}
	return northbound.Caller{UserID: id.UserID, ProjectID: id.ProjectID, Admin: id.HasRole("admin")}, nil
}

// warnOpenDoors says, once at start, which doors a lab configuration
// leaves open on an address other hosts can reach.
func (n *Node) warnOpenDoors() {
	if n.cfg.Keystone == nil && !loopback(n.cfg.APIAddr) {
		n.log.Warn("--auth none: every API request is an admin's, and the API listens beyond loopback; use --auth keystone outside a lab",
			zap.String("api-addr", n.cfg.APIAddr))
	}
	if network, addr, _ := ofctl.ParseAddr(n.cfg.OpenFlowAddr); network == "tcp" && !loopback(addr) {
		n.log.Warn("bridges connect over plain tcp: beyond loopback, so anyone who reaches it can pose as a switch; use ssl: with --tls-*",
			zap.String("openflow-addr", n.cfg.OpenFlowAddr))
	}
	if c := n.cfg.Chassis; c != nil {
		if network, addr, _ := ofctl.ParseAddr(c.OVSDB); network == "tcp" && !loopback(addr) {
			n.log.Warn("OVSDB over plain tcp: beyond loopback; use ssl: with --tls-* (or a unix: socket)", zap.String("ovsdb", c.OVSDB))
		}
	}
	if len(n.cfg.ClusterSecret) == 0 && !n.cfg.TLS.Enabled() && !loopback(n.cfg.RaftAddr) {
		n.log.Warn("raft and the internal channel accept any peer: set --cluster-secret-file or --tls-cert/--tls-key/--tls-ca",
			zap.String("raft-addr", n.cfg.RaftAddr))
	}
}

func loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// unready names what keeps the local chassis from carrying traffic (the
// API's readiness hook; the cluster's own readiness the API asks the
// cluster): the agent's OVSDB session, the integration bridge replayed by
// its loop, the chassis in the topology. Without a local OVS, nothing.
func (n *Node) unready() []string {
	if n.chassis == nil {
		return nil
	}
	c := n.cfg.Chassis
	var missing []string
	if !n.chassis.OVSDBConnected() {
		missing = append(missing, "ovsdb: not connected to "+c.OVSDB)
	}
	_, dpid, known := n.chassis.Bridge()
	if _, synced := n.bridges.Synced(dpid); !known || !synced {
		missing = append(missing, "bridge: "+c.Bridge+" not programmed")
	}
	if !n.chassis.Registered() {
		missing = append(missing, "chassis: "+c.Name+" not registered")
	}
	return missing
}

// mastership says whether this node should be master of a bridge: the
// bridges' hook. A node without a cluster (OpenFlow only) is its
// bridges' only controller.
func (n *Node) mastership(dpid uint64) (bool, uint64, bool) {
	if n.cluster == nil {
		return true, 0, false
	}
	master, gen, ok := n.cluster.Mastership(dpid)
	return master == n.cfg.NodeID, gen, ok
}

// remoteBridge makes another chassis' bridge facts from its record and
// the switch's port names, and the bindings those names say: a port
// bound to the chassis (binding:host_id) whose tap is on the bridge under
// the name Nova gives it, "tap" and the port id's first 11 characters:
// the bridges' hook.
func (n *Node) remoteBridge(c view.Chassis, ports map[string]uint32) (view.Bridge, []topology.Binding) {
	facts := chassis.FactsFromPorts(c.Name, c.Mappings, ports)
	taps := false
	for name := range ports {
		taps = taps || strings.HasPrefix(name, "tap")
	}
	if n.cluster == nil || !taps {
		return facts, nil // no tap on the bridge: no need to look through the ports
	}
	var named []topology.Binding
	n.cluster.Read(func(s *topology.Store) {
		for _, p := range s.PortsOfHost(c.Name) {
			if len(p.ID) < 11 {
				continue
			}
			if no, ok := ports["tap"+p.ID[:11]]; ok {
				named = append(named, topology.Binding{PortID: p.ID, OFPort: no})
			}
		}
	})
	return facts, named
}

// reportRemote records the bindings of a chassis no node manages, as its
// bridge's master found them: the bridges' hook.
func (n *Node) reportRemote(ctx context.Context, chassis string, bindings []topology.Binding) error {
	if n.cluster == nil {
		return errors.New("no cluster")
	}
	_, err := n.cluster.Propose(ctx, cluster.CmdChassisPorts, cluster.ChassisPorts{Chassis: chassis, Bindings: bindings})
	return err
}

// otherControllers are the OpenFlow targets of the other members a local
// bridge also lists, so that one of them takes it over when this node is
// lost. A member whose address is loopback is left out: the bridge could
// only reach this host's own controller there.
func (n *Node) otherControllers() []string {
	var out []string
	n.cluster.Read(func(s *topology.Store) {
		for _, m := range s.Members() {
			if m.ID == n.cfg.NodeID || m.OpenFlowAddr == "" {
				continue
			}
			if _, addr, err := ofctl.ParseAddr(m.OpenFlowAddr); err != nil || loopback(addr) {
				continue
			}
			out = append(out, m.OpenFlowAddr)
		}
	})
	return out
}

// claimVIP records a VIP's new holder: the bridges' hook.
func (n *Node) claimVIP(ctx context.Context, c app.VIPClaim) error {
	if n.cluster == nil {
		return errors.New("no cluster")
	}
	_, err := n.cluster.Propose(ctx, cluster.CmdVIPOwner, cluster.VIPOwner{Port: c.PortID, IP: c.IP.String()})
	return err
}

// learnNeighbour records a neighbour's MAC on a physical network: the
// bridges' hook.
func (n *Node) learnNeighbour(ctx context.Context, nb topology.Neighbour) error {
	if n.cluster == nil {
		return errors.New("no cluster")
	}
	_, err := n.cluster.Propose(ctx, cluster.CmdNeighbourLearn, cluster.NeighbourLearn{Neighbour: nb})
	return err
}

// askResync asks the watcher for the whole view (never blocks: one
// pending request is as good as many).
func (n *Node) askResync() {
	select {
	case n.resync <- struct{}{}:
	default:
	}
}

// programmed passes the bridges' word on programmed ports to the chassis.
func (n *Node) programmed(ports map[string]uint32) {
	if n.chassis != nil {
		n.chassis.Programmed(ports)
	}
}

// local passes the chassis' local bridge to the bridges.
func (n *Node) local(dpid uint64, br view.Bridge, bindings []topology.Binding) {
	n.bridges.SetLocal(bridge.Local{DPID: dpid, Bridge: br, Bindings: bindings})
}

// connected reports whether a bridge has an OpenFlow session.
func (n *Node) connected(dpid uint64) bool {
	_, ok := n.openflow.Switch(dpid)
	return ok
}

// explainer answers the debugging endpoints about the local chassis
// (n.chassis is set just after the API is built: read it per request).
func (n *Node) explainer() *explain.Service {
	cfg := explain.Config{Node: n.cfg.NodeID, Logs: n.cfg.Logs}
	if c := n.cfg.Chassis; c != nil {
		cfg.Chassis, cfg.Bridge, cfg.OVSDB = c.Name, c.Bridge, c.OVSDB
	}
	return explain.New(cfg, n.bridges, func() (uint64, bool) {
		if n.chassis == nil {
			return 0, false
		}
		_, dpid, ok := n.chassis.Bridge()
		return dpid, ok
	}, n.cluster.View)
}
