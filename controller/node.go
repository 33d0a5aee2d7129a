// Package controller owns the running node: the raft-replicated topology
// store, the northbound API, the reconciler that keeps bridges programmed,
// and the OpenFlow handler. Only cmd imports it.
package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// NodeConfig is everything a node needs, already validated by cmd.
type NodeConfig struct {
	NodeID       string
	DataDir      string
	RaftAddr     string // bind and advertise
	APIAddr      string // northbound API listen address
	OpenFlowAddr string // tcp:HOST:PORT or unix:PATH
	Join         []string
	Voter        string // auto, true, false
	Mode         pipeline.Mode
	// IdleTimeout is how long, in seconds, a reactive flow lives without
	// traffic (default 60).
	IdleTimeout uint16
	// PuntRate and PuntBurst bound, in packets/s and packets, what each
	// local port may punt (an OVS meter; default 100 and 100). Punts of
	// packets from tunnels share one meter with ten times the rate.
	PuntRate, PuntBurst uint32
	// Chassis, when set, makes the node manage its local OVS.
	Chassis *ChassisConfig
}

// Node is one wyvernd.
type Node struct {
	cfg        NodeConfig
	log        *zap.Logger
	reconciler *Reconciler
	openflow   *ofctl.Server
	puntStats  PuntStats
	// underlayProbes counts tunnel probes sent (userspace datapath).
	underlayProbes atomic.Uint64
	// views caches the View of the store at one applied index: punts,
	// reconcile rounds and the feed follower share it instead of each
	// copying the topology.
	views atomic.Pointer[indexedView]

	fsm       *FSM
	raft      *raft.Raft
	transport raft.Transport
	existing  bool
	apiLn     net.Listener
	api       *http.Server
	client    *http.Client
	ready     atomic.Bool
	local     *localChassis // nil without a local OVS
	// barrierTerm is the raft term in which this node, as leader, last
	// applied a barrier (consistent reads need one per term).
	barrierTerm atomic.Uint64
}

// NewNode opens the node's raft store and its listeners; Run serves them.
func NewNode(cfg NodeConfig, log *zap.Logger) (*Node, error) {
	if cfg.Voter == "" {
		cfg.Voter = VoterAuto
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 60
	}
	if cfg.PuntRate == 0 {
		cfg.PuntRate = 100
	}
	if cfg.PuntBurst == 0 {
		cfg.PuntBurst = 100
	}
	n := &Node{cfg: cfg, log: log, fsm: NewFSM(),
		client: &http.Client{Timeout: 30 * time.Second}}
	if cfg.Chassis != nil {
		n.local = &localChassis{cfg: *cfg.Chassis, kick: make(chan struct{}, 1), warm: make(chan struct{}, 1)}
	}
	n.reconciler = NewReconciler(ReconcilerConfig{Mode: cfg.Mode, Desired: n.desiredFlows, Meter: n.puntMeter, OnSynced: func(uint64) {
		if n.local != nil {
			n.local.poke()
		}
	}}, log)
	srv, err := ofctl.Listen(ofctl.Config{Addr: cfg.OpenFlowAddr, TableNames: pipeline.TableNames(), PuntSource: puntSource}, n, log)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", cfg.NodeID, err)
	}
	n.openflow = srv
	if cfg.APIAddr == "" {
		return n, nil // OpenFlow only (tests of the southbound)
	}
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("node %s: API listener: %w", cfg.NodeID, err)
	}
	n.apiLn = ln
	n.cfg.APIAddr = ln.Addr().String()
	n.raft, n.transport, n.existing, err = openRaft(n.cfg, n.fsm, log)
	if err != nil {
		ln.Close()
		srv.Close()
		return nil, fmt.Errorf("node %s: %w", cfg.NodeID, err)
	}
	n.api = n.newAPIServer()
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
	if n.api != nil {
		wg.Add(1)
		go func() { defer wg.Done(); n.followFeed(ctx) }()
	}
	if n.local != nil && n.api != nil {
		target := n.cfg.OpenFlowAddr
		if network, _, _ := ofctl.ParseAddr(target); network == "tcp" {
			target = "tcp:" + n.openflow.Addr().String()
		}
		agent := NewAgent(AgentConfig{Endpoint: n.local.cfg.OVSDB, Bridge: n.local.cfg.Bridge,
			DatapathType: n.local.cfg.DatapathType, Controller: target}, n.log, n.onBridgeFacts)
		wg.Add(2)
		go func() { defer wg.Done(); agent.Run(ctx) }()
		go func() { defer wg.Done(); n.reportChassis(ctx) }()
		if n.local.cfg.DatapathType == "netdev" {
			wg.Add(1)
			go func() { defer wg.Done(); n.warmTunnels(ctx, n.local.warm) }()
		}
	}
	if n.api != nil {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := n.api.Serve(n.apiLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("API: %w", err)
			}
		}()
		go func() {
			defer wg.Done()
			if err := n.startCluster(ctx); err != nil && ctx.Err() == nil {
				errs <- err
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := n.openflow.Serve(ctx); err != nil {
			errs <- err
		}
	}()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	cancel()
	n.shutdown()
	wg.Wait()
	return err
}

func (n *Node) shutdown() {
	n.openflow.Close()
	if n.api == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = n.api.Shutdown(sctx)
	if err := n.raft.Shutdown().Error(); err != nil {
		n.log.Warn("raft shutdown", zap.Error(err))
	}
	if c, ok := n.transport.(interface{ Close() error }); ok {
		_ = c.Close()
	}
}

// startCluster bootstraps, joins or rejoins, then waits until the node is
// caught up and makes sure its addresses are registered.
func (n *Node) startCluster(ctx context.Context) error {
	var target uint64
	switch {
	case n.existing:
		n.log.Info("restarting with existing raft state")
	case len(n.cfg.Join) == 0:
		cf := raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(n.cfg.NodeID), Address: raft.ServerAddress(n.cfg.RaftAddr)}}}
		if err := n.raft.BootstrapCluster(cf).Error(); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		n.log.Info("bootstrapped a new cluster")
	default:
		reply, err := n.join(ctx)
		if err != nil {
			return fmt.Errorf("join: %w", err)
		}
		target = reply.CommitIndex
		n.log.Info("joined the cluster", zap.String("suffrage", reply.Suffrage), zap.Uint64("commit-index", target))
	}
	n.waitReady(ctx, target)
	if err := n.ensureRegistered(ctx); err != nil {
		return err
	}
	// Ready only once caught up and reachable by forwarding.
	n.ready.Store(true)
	n.log.Info("node ready", zap.Uint64("applied-index", n.raft.AppliedIndex()))
	return nil
}

// ensureRegistered makes the FSM hold this node's current addresses, so
// others can forward to it; it retries until it succeeds.
func (n *Node) ensureRegistered(ctx context.Context) error {
	for ctx.Err() == nil {
		var have topology.Member
		var ok bool
		n.fsm.Read(func(s *topology.Store) { have, ok = s.Member(n.cfg.NodeID) })
		want := topology.Member{ID: n.cfg.NodeID, RaftAddr: n.cfg.RaftAddr, APIAddr: n.cfg.APIAddr, OpenFlowAddr: n.cfg.OpenFlowAddr}
		if ok && have == want {
			return nil
		}
		req := joinRequest{ID: want.ID, RaftAddress: want.RaftAddr, APIAddress: want.APIAddr, OpenFlowAddr: want.OpenFlowAddr, Voter: n.cfg.Voter}
		var err error
		if n.raft.State() == raft.Leader {
			_, err = n.addMember(ctx, req)
		} else if len(n.cfg.Join) > 0 || n.existing {
			err = n.rejoinViaLeader(ctx, req)
		}
		if err != nil {
			n.log.Info("registering addresses; retrying", zap.Error(err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return ctx.Err()
}

func (n *Node) rejoinViaLeader(ctx context.Context, req joinRequest) error {
	addr, err := n.leaderAPI()
	if err != nil {
		return err
	}
	saved := n.cfg.Join
	n.cfg.Join = []string{"http://" + addr}
	defer func() { n.cfg.Join = saved }()
	jctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = n.join(jctx)
	return err
}

// Connected implements ofctl.Handler: the bridge's reconcile loop runs for
// the session's lifetime.
func (n *Node) Connected(ctx context.Context, sw *ofctl.Switch) {
	_ = n.reconciler.Run(ctx, sw)
}

// PacketIn implements ofctl.Handler.
func (n *Node) PacketIn(ctx context.Context, sw *ofctl.Switch, pi ofctl.PacketIn) {
	n.handlePunt(ctx, sw, pi)
}

type indexedView struct {
	index uint64
	view  *topology.View
}

// viewOf returns the View of s, built once per applied index. Call it
// under the FSM's read lock; Views are read-only, so callers may share one.
func (n *Node) viewOf(s *topology.Store) *topology.View {
	if c := n.views.Load(); c != nil && c.index == s.Index() {
		return c.view
	}
	v := topology.NewView(s)
	n.views.Store(&indexedView{s.Index(), v})
	return v
}

// view returns the View of the store as it is now.
func (n *Node) view() *topology.View {
	var v *topology.View
	n.fsm.Read(func(s *topology.Store) { v = n.viewOf(s) })
	return v
}
