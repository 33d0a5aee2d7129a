// Package cluster is the replicated topology: hashicorp/raft on a WAL,
// the FSM that applies commands to the topology store, the change feed,
// membership, and the internal channel between nodes. A write proposed on
// any node reaches the leader over that channel — never through the
// public API — and comes back once committed; a node is ready when its
// FSM has applied the log as far as the leader had committed it.
//
// It imports internal/topology and its view, raft, and zap; nothing of the
// rest of the controller.
package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wyvern-sdn/wyvern/internal/tlsconfig"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
)

// Suffrage choices for --voter.
const (
	VoterAuto  = "auto"
	VoterTrue  = "true"
	VoterFalse = "false"
)

// autoVoters is how many voters --voter=auto fills before joining nodes
// become non-voters.
const autoVoters = 3

var (
	// ErrNoLeader means the cluster has no leader this node can reach.
	ErrNoLeader = errors.New("no cluster leader")
	// ErrNotReady means the node has not yet applied the log as far as
	// the leader had committed it when it started or joined.
	ErrNotReady = errors.New("node is not ready: still joining or catching up")
	// errNotLeader is returned by leader-only operations on a follower.
	errNotLeader = errors.New("this node is not the leader")
)

// Config is a node's place in the cluster.
type Config struct {
	NodeID       string
	DataDir      string
	RaftAddr     string // bind and advertise; raft and the internal channel
	APIAddr      string // registered, for CMS-facing redirects and the CLI
	OpenFlowAddr string // registered, for bridges that list several controllers
	Join         []string
	Voter        string
	// CommitTimeout is how long the leader waits, with nothing new to
	// send, before telling followers the commit index (raft's
	// CommitTimeout; default 2 ms). A follower applies a committed entry
	// only once it learns of it: this bounds how stale a follower's
	// view is after a write that is not followed by another.
	CommitTimeout time.Duration
	// TLS, when set, is mutual TLS with the cluster CA on raft and the
	// internal channel, and the CA that join URLs' API certificates must
	// lead to.
	TLS tlsconfig.Files
	// Secret, when set, is the cluster secret every connection on the
	// raft address proves it holds.
	Secret []byte
	// Metrics is where the cluster's and raft's metrics are registered
	// (nil: nowhere).
	Metrics prometheus.Registerer
	// VerifyViews checks views patched from the change feed against
	// ones built from the whole store, and panics where they differ: for
	// tests and for chasing a suspected wrong flow
	// (WYVERN_VERIFY_VIEWS=1). It costs a whole build per view (every
	// 64th view past 2,000 ports).
	VerifyViews bool

	// wrapLogs, set by the package's tests only, stands between raft and
	// the log store (export_test.go: a follower that cannot store what
	// its leader sends).
	wrapLogs func(raft.LogStore) raft.LogStore
}

// Cluster is one node's membership of the replicated topology.
type Cluster struct {
	cfg     Config
	metrics *metrics
	// lastPeerClose is when a peer last closed a raft connection to this
	// node (unix ns; leaderloss.go).
	lastPeerClose atomic.Int64
	log           *zap.Logger
	fsm           *FSM
	masters       masterCache // Mastership's decisions
	raft          *raft.Raft
	mux           *mux
	transport     *raft.NetworkTransport
	guard         *guard
	store         logStore
	internal      *internalServer
	client        *internalClient
	// group batches the commands committed on this node as leader;
	// forward those it sends to the leader as a follower.
	group, forward *batcher
	existing       bool
	ready          atomic.Bool
	readyCh        chan struct{} // closed once ready
	// barrierTerm is the raft term in which this node, as leader, last
	// applied a barrier (a read index needs one per term).
	barrierTerm atomic.Uint64
}

// New opens the node's raft state and its listener on the raft address.
// Run starts it.
func New(cfg Config, log *zap.Logger) (*Cluster, error) {
	if cfg.Voter == "" {
		cfg.Voter = VoterAuto
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = 2 * time.Millisecond
	}
	c := &Cluster{cfg: cfg, log: log.Named("cluster"), fsm: newFSM(cfg.VerifyViews), readyCh: make(chan struct{})}
	c.metrics = newMetrics(c)
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(c.metrics); err != nil {
			return nil, fmt.Errorf("cluster metrics: %w", err)
		}
		if err := sinkRaftMetrics(cfg.Metrics); err != nil {
			return nil, fmt.Errorf("raft metrics: %w", err)
		}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, err
	}
	var tlsServer, tlsClient *tls.Config
	if cfg.TLS.Enabled() {
		var err error
		if tlsServer, err = cfg.TLS.Mutual(); err != nil {
			return nil, err
		}
		if tlsClient, err = cfg.TLS.Client(); err != nil {
			return nil, err
		}
	}
	g := newGuard(cfg.Secret, tlsServer, tlsClient)
	c.guard = g
	m, err := listenMux(cfg.RaftAddr, g, c.log.Named("mux"))
	if err != nil {
		return nil, fmt.Errorf("raft address %s: %w", cfg.RaftAddr, err)
	}
	c.mux = m
	if err := c.openRaft(); err != nil {
		_ = m.Close()
		return nil, err
	}
	c.client = newInternalClient(c.guard)
	c.internal = newInternalServer(c)
	c.group = newBatcher(func(b []*pending) { commitBatch(c.raft.Apply, b) }, groupInFlight)
	c.forward = newBatcher(c.forwardBatch, forwardInFlight)
	return c, nil
}

// zapSink hands raft's log entries to zap as they are, message and
// key-value pairs, so that they read (and filter, and change level at run
// time) like the node's own.
type zapSink struct{ log *zap.Logger }

func (s zapSink) Accept(name string, level hclog.Level, msg string, args ...any) {
	lvl := zapcore.DebugLevel
	switch {
	case level >= hclog.Error:
		lvl = zapcore.ErrorLevel
	case level == hclog.Warn:
		lvl = zapcore.WarnLevel
	case level == hclog.Info:
		lvl = zapcore.InfoLevel
	}
	ce := s.log.Check(lvl, msg)
	if ce == nil {
		return
	}
	fields := make([]zap.Field, 0, len(args)/2+1)
	if name != "raft" {
		fields = append(fields, zap.String("component", name))
	}
	for i := 0; i+1 < len(args); i += 2 {
		key, val := fmt.Sprint(args[i]), args[i+1]
		switch key {
		case "node", "level", "ts", "msg", "logger", "caller", "component":
			key = "raft-" + key // the node's own fields keep their meaning
		}
		if f, ok := val.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				val = fmt.Sprintf(format, f[1:]...)
			}
		}
		fields = append(fields, zap.Any(key, val))
	}
	if len(args)%2 == 1 {
		fields = append(fields, zap.Any("extra", args[len(args)-1]))
	}
	ce.Write(fields...)
}

// raftLogger is raft's hclog.Logger: nothing formatted by hclog itself,
// every entry passed to zap through zapSink.
func raftLogger(log *zap.Logger) hclog.Logger {
	il := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "raft", Level: hclog.Off, Output: io.Discard})
	il.RegisterSink(zapSink{log.Named("raft").WithOptions(zap.WithCaller(false))})
	return il
}

// openRaft starts raft over the mux with the WAL as log and stable store and
// file snapshots under the data directory.
// raftRPCTimeout bounds each raft RPC's I/O (snapshots get more, in
// proportion to their size): a member that stopped answering (its host
// is gone, its connections not reset) fails the leader's next heartbeat
// within it, and so is known lost (watchLiveness) about this soon. A
// heartbeat takes a round trip on the members' network; an AppendEntries
// of a full batch a few milliseconds here. The price: a member stalled
// longer than this is marked unreachable until it answers again, which
// moves its routers' SNAT.
const raftRPCTimeout = time.Second

// logCacheSize is how many of the newest raft entries the leader keeps
// in memory to replicate: enough for followers a few batches behind.
const logCacheSize = 512

func (c *Cluster) openRaft() error {
	hl := raftLogger(c.log)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.cfg.NodeID)
	rc.Logger = hl
	rc.HeartbeatTimeout = heartbeatTimeout // leaderloss.go
	rc.ElectionTimeout = heartbeatTimeout
	rc.LeaderLeaseTimeout = fastTimeout
	rc.CommitTimeout = c.cfg.CommitTimeout
	rc.SnapshotThreshold = 8192
	rc.SnapshotInterval = 30 * time.Second
	rc.TrailingLogs = 10240
	// A batch of AppendEntries must fit raftRPCTimeout on a slow machine:
	// 16 entries of a large bulk create are a few MB.
	rc.MaxAppendEntries = 16

	advertise, err := net.ResolveTCPAddr("tcp", c.cfg.RaftAddr)
	if err != nil {
		return fmt.Errorf("raft address %s: %w", c.cfg.RaftAddr, err)
	}
	c.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: raftStream{chanListener: c.mux.raft, advertise: advertise, guard: c.guard, peerClosed: c.peerClosed}, MaxPool: 4, Timeout: raftRPCTimeout, Logger: hl})
	store, err := openLogStore(c.cfg.DataDir, c.log)
	if err != nil {
		_ = c.transport.Close()
		return err
	}
	c.store = store
	closeAll := func() {
		_ = c.transport.Close()
		_ = store.Close()
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(c.cfg.DataDir, 2, hl)
	if err != nil {
		closeAll()
		return err
	}
	c.existing, err = raft.HasExistingState(store, store, snaps)
	if err != nil {
		closeAll()
		return err
	}
	// The newest entries are kept in memory as well: the leader reads
	// each entry back to send it to every follower, which from the WAL
	// is a pread (and a decode) per entry per follower.
	var logStore raft.LogStore = store
	if c.cfg.wrapLogs != nil {
		logStore = c.cfg.wrapLogs(store)
	}
	logs, err := raft.NewLogCache(logCacheSize, logStore)
	if err != nil {
		closeAll()
		return err
	}
	c.raft, err = raft.NewRaft(rc, c.fsm, logs, store, snaps, c.transport)
	if err != nil {
		closeAll()
		return err
	}
	return nil
}

// Run serves the internal channel and brings the node into the cluster —
// bootstrap, join or rejoin — then waits until it is ready (its FSM has
// applied what the leader had committed) and its addresses are
// registered. It returns when ctx ends, after shutting raft down.
func (c *Cluster) Run(ctx context.Context) error {
	serveErr := make(chan error, 1)
	go func() { serveErr <- c.internal.serve(c.mux.internal) }()
	err := c.start(ctx)
	if err == nil {
		go c.watchLiveness(ctx)
		go c.watchLeaderLoss(ctx)
		select {
		case <-ctx.Done():
		case err = <-serveErr:
		}
	}
	c.shutdown()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (c *Cluster) shutdown() {
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.internal.shutdown(sctx)
	if err := c.raft.Shutdown().Error(); err != nil {
		c.log.Warn("raft shutdown", zap.Error(err))
	}
	c.group.close()
	c.forward.close()
	_ = c.transport.Close()
	_ = c.store.Close()
	_ = c.mux.Close()
}

func (c *Cluster) start(ctx context.Context) error {
	var target uint64
	switch {
	case c.existing:
		c.log.Info("restarting with existing raft state")
	case len(c.cfg.Join) == 0:
		cf := raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(c.cfg.NodeID), Address: raft.ServerAddress(c.cfg.RaftAddr)}}}
		if err := c.raft.BootstrapCluster(cf).Error(); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
		c.log.Info("bootstrapped a new cluster")
	default:
		reply, err := c.joinVia(ctx, c.cfg.Join)
		if err != nil {
			return fmt.Errorf("join: %w", err)
		}
		target = reply.AppliedIndex
		c.log.Info("joined the cluster", zap.String("suffrage", reply.Suffrage), zap.Uint64("target-index", target))
	}
	if err := c.waitReady(ctx, target); err != nil {
		return err
	}
	if err := c.ensureRegistered(ctx); err != nil {
		return err
	}
	c.ready.Store(true)
	close(c.readyCh)
	c.log.Info("node ready", zap.Uint64("applied-index", c.fsm.Index()))
	return nil
}

// waitReady returns once the FSM has applied the log as far as the
// leader's FSM had when the node joined or, for a node that restarts or
// bootstraps, when a leader first answered. Until then the node serves
// nothing as if it were complete: reads answer 503 and bridges are not
// replayed.
func (c *Cluster) waitReady(ctx context.Context, target uint64) error {
	for asked := target > 0; !asked; {
		idx, err := c.readIndex(ctx)
		if err == nil {
			target, asked = idx, true
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	c.log.Info("catching up", zap.Uint64("target-index", target), zap.Uint64("applied-index", c.fsm.Index()))
	return c.fsm.WaitIndex(ctx, target)
}

// ensureRegistered makes the FSM hold this node's current addresses; it
// retries until it succeeds.
func (c *Cluster) ensureRegistered(ctx context.Context) error {
	for ctx.Err() == nil {
		var have topology.Member
		var ok bool
		c.fsm.Read(func(s *topology.Store) { have, ok = s.Member(c.cfg.NodeID) })
		want := c.member()
		if ok && have == want {
			return nil
		}
		req := JoinRequest{ID: want.ID, RaftAddress: want.RaftAddr, APIAddress: want.APIAddr, OpenFlowAddr: want.OpenFlowAddr, Voter: c.cfg.Voter}
		if _, err := c.Join(ctx, req); err != nil {
			c.log.Info("registering addresses; retrying", zap.Error(err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	return ctx.Err()
}

func (c *Cluster) member() topology.Member {
	return topology.Member{ID: c.cfg.NodeID, RaftAddr: c.cfg.RaftAddr, APIAddr: c.cfg.APIAddr, OpenFlowAddr: c.cfg.OpenFlowAddr}
}

// NodeID is this node's id.
func (c *Cluster) NodeID() string { return c.cfg.NodeID }

// Ready reports whether the node has caught up (see Run).
func (c *Cluster) Ready() bool { return c.ready.Load() }

// ReadyCh is closed once the node has caught up.
func (c *Cluster) ReadyCh() <-chan struct{} { return c.readyCh }

// AppliedIndex is the raft index of the last command this node's FSM
// applied.
func (c *Cluster) AppliedIndex() uint64 { return c.fsm.Index() }

// IsLeader reports whether this node leads the cluster.
func (c *Cluster) IsLeader() bool { return c.raft.State() == raft.Leader }

// Read runs fn with the store under the FSM's read lock; fn must not keep
// it.
func (c *Cluster) Read(fn func(s *topology.Store)) { c.fsm.Read(fn) }

// View is the typed view of the topology as this node has applied it.
func (c *Cluster) View() *view.View { return c.fsm.View() }

// WaitIndex blocks until this node has applied a raft index (or ctx
// ends): a writer reads its own write.
func (c *Cluster) WaitIndex(ctx context.Context, index uint64) error {
	return c.fsm.WaitIndex(ctx, index)
}

// Feed is the change feed.
func (c *Cluster) Feed() *Feed { return c.fsm.Feed() }

// Watch calls w.Fn first with the view as it is (resync true: take it
// whole), then, one batch at a time and in order, with the view after
// each batch of committed changes and the changes themselves (nil with
// resync true when the feed lost some: everything may have changed). It
// returns when ctx ends. See Watcher for building views only when
// someone wants them.
func (c *Cluster) Watch(ctx context.Context, w Watcher) { c.fsm.watch(ctx, w) }

// leaderAddr is the raft (and internal) address of the leader.
func (c *Cluster) leaderAddr() (string, error) {
	addr, id := c.raft.LeaderWithID()
	if id == "" || addr == "" {
		return "", ErrNoLeader
	}
	return string(addr), nil
}
