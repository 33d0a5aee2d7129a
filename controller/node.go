// Package controller owns the running node: the reconciler that keeps
// bridges programmed, the OpenFlow handler, and (as they arrive) the raft
// store, the northbound API and the local-OVS agent. Only cmd imports it.
package controller

import (
	"context"
	"fmt"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// NodeConfig is everything a node needs, already validated by cmd.
type NodeConfig struct {
	NodeID       string
	OpenFlowAddr string // tcp:HOST:PORT or unix:PATH
	Mode         pipeline.Mode
}

// PuntHandler answers one punted packet.
type PuntHandler func(ctx context.Context, sw *ofctl.Switch, pi ofctl.PacketIn)

// Node is one wyvernd.
type Node struct {
	cfg        NodeConfig
	log        *zap.Logger
	reconciler *Reconciler
	openflow   *ofctl.Server
	punt       PuntHandler
	unanswered atomic.Uint64
}

// NewNode opens the node's listeners; Run serves them.
func NewNode(cfg NodeConfig, log *zap.Logger) (*Node, error) {
	n := &Node{cfg: cfg, log: log}
	n.reconciler = NewReconciler(ReconcilerConfig{Mode: cfg.Mode}, log)
	srv, err := ofctl.Listen(ofctl.Config{Addr: cfg.OpenFlowAddr, TableNames: pipeline.TableNames()}, n, log)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", cfg.NodeID, err)
	}
	n.openflow = srv
	return n, nil
}

// OpenFlowAddr is where bridges connect.
func (n *Node) OpenFlowAddr() string { return n.openflow.Addr().String() }

// Run serves until ctx ends.
func (n *Node) Run(ctx context.Context) error {
	n.log.Info("node running", zap.String("node-id", n.cfg.NodeID),
		zap.String("openflow-addr", n.cfg.OpenFlowAddr), zap.Stringer("forwarding", n.cfg.Mode))
	return n.openflow.Serve(ctx)
}

// Connected implements ofctl.Handler: the bridge's reconcile loop runs for
// the session's lifetime.
func (n *Node) Connected(ctx context.Context, sw *ofctl.Switch) {
	_ = n.reconciler.Run(ctx, sw)
}

// PacketIn implements ofctl.Handler. With no app answering yet, punts are
// counted and dropped.
func (n *Node) PacketIn(ctx context.Context, sw *ofctl.Switch, pi ofctl.PacketIn) {
	if n.punt != nil {
		n.punt(ctx, sw, pi)
		return
	}
	n.unanswered.Add(1)
}
