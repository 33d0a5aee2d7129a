package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/internal/apps"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// ChassisConfig is the local chassis a node manages through its agent.
type ChassisConfig struct {
	Name         string
	EncapIP      string
	OVSDB        string // endpoint of the local ovsdb-server
	Bridge       string
	DatapathType string
}

// localChassis is what the node knows of its own chassis, from the agent,
// and what it still has to tell the cluster.
type localChassis struct {
	cfg ChassisConfig

	mu    sync.Mutex
	facts BridgeFacts
	known bool
	kick  chan struct{} // the chassis reporter
	warm  chan struct{} // the tunnel prober
}

func (lc *localChassis) snapshot() (BridgeFacts, bool) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.facts, lc.known
}

func (lc *localChassis) poke() {
	for _, c := range []chan struct{}{lc.kick, lc.warm} {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// bridge is the local bridge's facts for the apps.
func (lc *localChassis) bridge() (topology.Bridge, uint64, bool) {
	f, ok := lc.snapshot()
	return topology.Bridge{Chassis: lc.cfg.Name, TunnelPorts: f.TunnelPorts}, f.DatapathID, ok
}

// localSwitch is the local bridge's facts and its OpenFlow session, when
// the bridge is known and connected.
func (n *Node) localSwitch() (topology.Bridge, *ofctl.Switch, bool) {
	if n.local == nil {
		return topology.Bridge{}, nil, false
	}
	br, dpid, ok := n.local.bridge()
	if !ok {
		return br, nil, false
	}
	sw, ok := n.openflow.Switch(dpid)
	return br, sw, ok
}

// desiredFlows is the reconciler's source of app flows: the local bridge
// gets every app's flows from the replicated topology, for the node's
// forwarding mode.
func (n *Node) desiredFlows(dpid uint64) []of.Flow {
	if n.local == nil {
		return nil
	}
	br, local, ok := n.local.bridge()
	if !ok || dpid != local {
		return nil
	}
	return apps.Flows(n.view(), br, n.cfg.Mode)
}

// onBridgeFacts is the agent's callback.
func (n *Node) onBridgeFacts(f BridgeFacts) {
	n.local.mu.Lock()
	n.local.facts, n.local.known = f, true
	n.local.mu.Unlock()
	n.log.Info("local bridge", zap.String("dpid", fmt.Sprintf("%016x", f.DatapathID)),
		zap.Any("tunnel-ports", f.TunnelPorts), zap.Int("bindings", len(f.Bindings)))
	n.local.poke()
	n.reconciler.Update(f.DatapathID)
}

// callAPI sends a write through this node's own API, which forwards it to
// the leader.
func (n *Node) callAPI(ctx context.Context, method, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+n.cfg.APIAddr+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

// reportChassis keeps the cluster's record of this chassis true: its
// registration, its bindings and which of its ports are ACTIVE. It is
// level-triggered: each round compares the store with what the agent and
// the reconciler know, and sends only the differences.
func (n *Node) reportChassis(ctx context.Context) {
	lc := n.local
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lc.kick:
		case <-tick.C:
		}
		if !n.ready.Load() {
			time.AfterFunc(200*time.Millisecond, lc.poke)
			continue
		}
		if err := n.reportOnce(ctx); err != nil && ctx.Err() == nil {
			n.log.Info("chassis report failed; retrying", zap.Error(err))
			time.AfterFunc(500*time.Millisecond, lc.poke)
		}
	}
}

func (n *Node) reportOnce(ctx context.Context) error {
	lc := n.local
	facts, known := lc.snapshot()
	if !known {
		return nil
	}
	name := lc.cfg.Name
	var have topology.Chassis
	var registered bool
	var ports map[string]topology.Port
	n.fsm.Read(func(s *topology.Store) {
		have, registered = s.ChassisByName(name)
		ports = map[string]topology.Port{}
		for _, p := range s.Ports() {
			ports[p.ID] = p
		}
	})
	var encaps []string // what the bridge really terminates
	for typ := range facts.TunnelPorts {
		encaps = append(encaps, typ)
	}
	sort.Strings(encaps)
	dpid := fmt.Sprintf("%016x", facts.DatapathID)
	connected := n.bridgeConnected(facts.DatapathID)
	if !registered || have.EncapIP != lc.cfg.EncapIP || have.DatapathID != dpid || have.NodeID != n.cfg.NodeID ||
		!slices.Equal(have.Encaps, encaps) || have.Connected != connected {
		err := n.callAPI(ctx, http.MethodPut, "/v2.0/chassis/"+name, map[string]any{"chassis": map[string]any{
			"encap_ip": lc.cfg.EncapIP, "encaps": encaps, "datapath_id": dpid, "node_id": n.cfg.NodeID,
			"connected": connected, "last_seen": time.Now().UTC().Format(time.RFC3339)}})
		if err != nil {
			return err
		}
	}
	// Bindings: claim a local interface's port only when no other chassis
	// holds it (a migration completes when the old host lets go), and
	// release ports bound here whose interface went.
	report := false
	local := map[string]bool{}
	var claim []topology.Binding
	for _, b := range facts.Bindings {
		local[b.PortID] = true
		p, ok := ports[b.PortID]
		if ok && p.HostID != name && p.HostID != "" && p.OFPort != 0 {
			continue // bound elsewhere
		}
		claim = append(claim, b)
		if ok && (p.HostID != name || p.OFPort != b.OFPort) {
			report = true
		}
	}
	for _, p := range ports {
		if p.HostID == name && p.OFPort != 0 && !local[p.ID] {
			report = true
		}
	}
	if report {
		if err := n.callAPI(ctx, http.MethodPut, "/v2.0/chassis/"+name+"/bindings", map[string]any{"bindings": claim}); err != nil {
			return err
		}
	}
	// ACTIVE: ports bound here whose delivery flow, to their current
	// ofport, the bridge holds. Idempotent, so no memory of past reports.
	installed, _, synced := n.reconciler.Installed(facts.DatapathID)
	if !synced {
		return nil
	}
	delivering := map[uint64]uint32{} // port object → ofport delivered to
	delivery := pipeline.Table(pipeline.Delivery)
	for _, f := range installed.Flows() {
		if f.Table == delivery && pipeline.Cookie(f.Cookie).App() == pipeline.AppL2Pop && len(f.Actions) == 1 {
			if out, ok := f.Actions[0].(of.Output); ok {
				delivering[pipeline.Cookie(f.Cookie).Object()] = out.Port
			}
		}
	}
	var activate []string
	for _, p := range ports {
		if p.HostID == name && p.OFPort != 0 && p.Status != topology.StatusActive &&
			delivering[pipeline.PortObject(p.Key)] == p.OFPort {
			activate = append(activate, p.ID)
		}
	}
	sort.Strings(activate)
	if len(activate) > 0 {
		return n.callAPI(ctx, http.MethodPut, "/v2.0/chassis/"+name+"/active", map[string]any{"ports": activate})
	}
	return nil
}

func (n *Node) bridgeConnected(dpid uint64) bool {
	_, ok := n.openflow.Switch(dpid)
	return ok
}

// followFeed recomputes the bridges that committed changes touch, and
// nudges the chassis reporter. The FSM publishes under its write lock, so
// a view and the changes read under one read lock match exactly: no
// change is judged against a view that already contains the next one.
func (n *Node) followFeed(ctx context.Context) {
	feed := n.fsm.Feed()
	var before *topology.View
	var since uint64
	n.fsm.Read(func(s *topology.Store) { before, since = n.viewOf(s), feed.Last() })
	for ctx.Err() == nil {
		if _, err := feed.Wait(ctx, since); err != nil && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond) // resync below
		}
		var after *topology.View
		var changes []topology.Change
		var err error
		n.fsm.Read(func(s *topology.Store) {
			after = n.viewOf(s)
			changes, err = feed.Since(since)
			if err != nil {
				since = feed.Last()
			}
		})
		if err != nil { // resync: everything may have changed
			n.reconciler.Update()
		} else if len(changes) > 0 {
			since = changes[len(changes)-1].Index
			n.invalidate(ctx, before, after, changes)
			n.updateChassis(affectedChassis(before, after, changes))
		}
		before = after
		if n.local != nil {
			n.local.poke()
		}
	}
}

// updateChassis kicks the reconcile loops of the connected bridges of the
// given chassis.
func (n *Node) updateChassis(chassis map[string]bool) {
	if len(chassis) == 0 {
		return
	}
	var dpids []uint64
	n.fsm.Read(func(s *topology.Store) {
		for name := range chassis {
			if c, ok := s.ChassisByName(name); ok {
				var dpid uint64
				if _, err := fmt.Sscanf(c.DatapathID, "%x", &dpid); err == nil {
					dpids = append(dpids, dpid)
				}
			}
		}
	})
	if n.local != nil && chassis[n.local.cfg.Name] {
		if _, dpid, ok := n.local.bridge(); ok {
			dpids = append(dpids, dpid)
		}
	}
	if len(dpids) > 0 {
		n.reconciler.Update(dpids...)
	}
}
