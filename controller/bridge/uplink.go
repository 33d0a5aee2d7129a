package bridge

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/nat"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// solicitRefresh is how often a bridge asks again for the MACs of the
// next hops it routes to outside, so that a changed one (a replaced
// outside router) is learned without anyone telling the cloud.
const solicitRefresh = 10 * time.Second

// solicitRetry is how soon it asks again for one it does not know yet.
const solicitRetry = time.Second

// announce sends, after the bridge took a new view, the gratuitous ARPs
// for the floating IPs and router gateways it serves now and did not
// before (before nil: everything it serves, after a replay).
func (l *loop) announce(ctx context.Context, before *view.View) {
	if l.local == nil || l.eff == nil {
		return
	}
	l.sendAll(ctx, nat.Announcements(before, l.eff, l.local.Bridge), "gratuitous ARP")
}

// solicit asks for the MACs of the next hops of the routers the bridge
// serves outside: every solicitRefresh, and every solicitRetry while one
// is unknown.
func (l *loop) solicit(ctx context.Context) {
	if l.local == nil || l.eff == nil {
		return
	}
	wait := solicitRefresh
	if l.unknownNextHop() {
		wait = solicitRetry
	}
	if time.Since(l.solicited) < wait {
		return
	}
	outs := nat.Solicitations(l.eff, l.local.Bridge, "")
	if len(outs) == 0 {
		return
	}
	l.solicited = time.Now()
	l.sendAll(ctx, outs, "next hop solicitation")
}

// unknownNextHop reports whether a router the bridge sends outside has a
// next hop whose MAC is not known yet.
func (l *loop) unknownNextHop() bool {
	for _, r := range l.eff.RoutersWithGateway() {
		g, _ := l.eff.RouterGateway(r.ID)
		if !g.NextHop.IsValid() || !l.eff.RoutesOn(l.local.Bridge.Chassis, r.Key) {
			continue
		}
		if _, ok := l.eff.ExternalNeighbour(g.Network.ID, g.NextHop); !ok {
			return true
		}
	}
	return false
}

func (l *loop) sendAll(ctx context.Context, outs []app.PacketOut, what string) {
	for _, po := range outs {
		if err := l.sw.PacketOut(ctx, ofctl.PacketOut{InPort: of.PortController, Actions: po.Actions, Data: po.Frame}); err != nil {
			l.log.Debug("sending failed", zap.String("what", what), zap.Error(err))
		}
	}
}
