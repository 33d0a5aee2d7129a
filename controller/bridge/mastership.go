package bridge

import (
	"context"
	"errors"
	"maps"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl"
)

// A bridge may list several controller nodes; one is master and writes,
// the others are slaves that keep their session, receive no punts and
// write nothing. Which one is the cluster's replicated decision
// (topology.Store.MasterOf, through Hooks.Mastership), announced to the
// switch with a role request whose generation is the decision's epoch:
// the switch refuses a deposed master that has not caught up as stale,
// and tells a master another one replaced with a role status. A node
// that becomes master replays (a dump, a new cookie round, one bundle;
// the bridge is never cleared).

// roleSwitch is a switch that takes role requests (ofctl.Switch).
type roleSwitch interface {
	RequestRole(ctx context.Context, role ofctl.Role, gen uint64) (ofctl.Role, uint64, error)
	RoleStatus() (ofctl.Role, uint64, bool)
}

// portLister is a switch that describes its ports (ofctl.Switch).
type portLister interface {
	Ports(ctx context.Context) ([]ofctl.PortDesc, error)
}

// portWatcher is a switch that says when its ports change
// (ofctl.Switch.PortChanges).
type portWatcher interface {
	PortChanges() <-chan struct{}
}

// portRefresh is how often a remote chassis' port list is read when the
// switch has said nothing: its port-status messages bring a change at
// once; this catches one that went unsaid. (Read every second before,
// that was a thousand requests a second for a node serving a thousand
// bridges.)
const portRefresh = 10 * time.Second

// takeRole settles this node's role on the bridge: whether it may write.
// Without a mastership hook, or with a switch that takes no role requests,
// the node is the bridge's only controller and master.
func (l *loop) takeRole(ctx context.Context) (bool, error) {
	rs, ok := l.sw.(roleSwitch)
	if !ok || l.m.hooks.Mastership == nil {
		return true, nil
	}
	master, gen, decided := l.m.hooks.Mastership(l.sw.DPID())
	if !decided {
		master = true // no member is known live: nobody else will write
	}
	want := ofctl.RoleSlave
	if master {
		want = ofctl.RoleMaster
	}
	// The switch said another controller took the bridge at a newer
	// generation than ours: this node is behind and a slave, whatever its
	// older decision says, until its own decision moves past it.
	if role, g, ok := rs.RoleStatus(); ok && role == ofctl.RoleSlave && g > l.roleGen && l.role == ofctl.RoleMaster {
		l.role = ofctl.RoleSlave
		l.log.Info("deposed by the switch", zap.Uint64("generation", g), zap.Uint64("ours", l.roleGen))
	}
	if l.role == want && l.roleGen == gen {
		return master, nil
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, _, err := rs.RequestRole(rctx, want, gen)
	cancel()
	if errors.Is(err, ofctl.ErrStaleRole) {
		// A newer decision reached the switch first: wait to apply it.
		l.log.Info("role request refused as stale; waiting for the newer decision", zap.Stringer("role", want), zap.Uint64("generation", gen))
		l.role, l.roleGen = ofctl.RoleSlave, gen
		l.m.metrics.roleChanges.WithLabelValues(bridgeLabel(l.sw.DPID()), "stale").Inc()
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if want == ofctl.RoleMaster && l.role != ofctl.RoleMaster {
		l.mu.Lock()
		l.synced = false // replay: the bridge holds another master's flows
		l.mu.Unlock()
		l.remotePorts = nil
	}
	if want != l.role {
		l.log.Info("bridge role", zap.Stringer("role", want), zap.Uint64("generation", gen))
		l.m.metrics.roleChanges.WithLabelValues(bridgeLabel(l.sw.DPID()), want.String()).Inc()
	}
	l.role, l.roleGen = want, gen
	return master, nil
}

// slave reports whether this node must not write to the bridge.
func (l *loop) slave() bool { return l.role == ofctl.RoleSlave }

// remoteLocal is a bridge of a chassis this node's agent does not manage
// (central mode, or a master standing in for a lost node): its facts from
// the chassis record and the switch's own port names, its bindings from
// the topology. Nil when no chassis claims the bridge (the base pipeline
// alone).
func (l *loop) remoteLocal(ctx context.Context, base *view.View) *Local {
	if l.m.hooks.Remote == nil {
		return nil
	}
	c, ok := base.ChassisOfDatapath(l.sw.DPID())
	if !ok {
		return nil
	}
	pl, ok := l.sw.(portLister)
	if !ok {
		return nil
	}
	if l.remotePorts == nil { // then refreshRemotePorts keeps them current
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ports, err := pl.Ports(pctx)
		cancel()
		if err != nil {
			l.log.Warn("could not read the bridge's ports", zap.Error(err))
			return nil
		}
		l.remotePorts = map[string]uint32{}
		for _, p := range ports {
			l.remotePorts[p.Name] = p.No
		}
	}
	br, named := l.m.hooks.Remote(c, l.remotePorts)
	// The topology's bindings of the chassis, and what the switch's port
	// names say over them.
	byPort := map[string]uint32{}
	for _, p := range base.LocalPorts(c.Name) {
		byPort[p.ID] = p.OFPort
	}
	for _, b := range named {
		byPort[b.PortID] = b.OFPort
	}
	binds := make([]topology.Binding, 0, len(byPort))
	for id, no := range byPort {
		binds = append(binds, topology.Binding{PortID: id, OFPort: no})
	}
	sort.Slice(binds, func(i, j int) bool { return binds[i].PortID < binds[j].PortID })
	return &Local{DPID: l.sw.DPID(), Bridge: br, Bindings: binds, Remote: true, Unmanaged: c.NodeID == "", named: named}
}

// reportRemote records, for a chassis no node manages, the bindings its
// bridge's port names say, each active (this step installed their flows),
// when the topology says otherwise; one report at a time.
func (l *loop) reportRemote(ctx context.Context, eff *view.View, local *Local) {
	if local == nil || !local.Unmanaged || l.m.hooks.ReportRemote == nil || l.reporting.Load() {
		return
	}
	differs := len(eff.LocalPorts(local.Bridge.Chassis)) != len(local.named)
	for _, b := range local.named {
		p, ok := eff.Port(b.PortID)
		differs = differs || !ok || p.Chassis != local.Bridge.Chassis || p.OFPort != b.OFPort || p.Status != topology.StatusActive
	}
	if !differs {
		return
	}
	report := make([]topology.Binding, 0, len(local.named))
	for _, b := range local.named {
		report = append(report, topology.Binding{PortID: b.PortID, OFPort: b.OFPort, Active: true})
	}
	l.reporting.Store(true)
	go func() {
		defer l.reporting.Store(false)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := l.m.hooks.ReportRemote(rctx, local.Bridge.Chassis, report); err != nil {
			l.log.Warn("could not record the bindings of a chassis no node manages", zap.String("chassis", local.Bridge.Chassis), zap.Error(err))
		}
	}()
}

// refreshRemotePorts reads the port list of a remote chassis' bridge
// again (a VM plugged or unplugged there tells no agent, only the
// switch's port status) and kicks the loop when it changed.
func (l *loop) refreshRemotePorts(ctx context.Context) {
	if l.local == nil || !l.local.Remote || l.slave() {
		return
	}
	pl, ok := l.sw.(portLister)
	if !ok {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	ports, err := pl.Ports(pctx)
	cancel()
	if err != nil {
		return
	}
	now := map[string]uint32{}
	for _, p := range ports {
		now[p.Name] = p.No
	}
	if !maps.Equal(now, l.remotePorts) {
		l.remotePorts = now
		l.kick()
	}
}
