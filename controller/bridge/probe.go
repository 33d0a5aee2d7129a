package bridge

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/tunnels"
)

// probeRefresh is how often a remote is probed again, so that the tunnel
// neighbour entry of an idle remote is renewed before OVS ages it out.
const probeRefresh = 5 * time.Minute

// probeFrame is what a tunnel probe carries: a broadcast from a locally
// administered address, with the IEEE local experimental EtherType. The
// remote's Classifier drops it (tunnel key 0 is no network's).
var probeFrame = func() []byte {
	b := make([]byte, 60)
	copy(b, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0xb5})
	copy(b[14:], "wyvern tunnel probe")
	return b
}()

// probe keeps the underlay next hop of every remote chassis the local
// bridge tunnels to resolved, on a userspace datapath. Open vSwitch's
// native tunneling (netdev datapath) drops a packet whose remote it has
// no neighbour entry for, while it ARPs for it; the kernel datapath
// queues it instead. Without this, the first packet to a chassis just
// joined — or to any chassis after ovs-vswitchd restarts, which begins a
// new session and so a new loop — would be lost however fast the punt is
// answered. A remote is probed when the bridge first tunnels to it (it
// shares a network, or hosts one the bridge's routers reach), and every
// probeRefresh.
func (l *loop) probe(ctx context.Context) {
	if !l.m.cfg.ProbeTunnels || l.local == nil || l.eff == nil {
		return
	}
	now := time.Now()
	for _, p := range tunnels.Probes(l.eff, l.local.Bridge) {
		if t, ok := l.probed[p.Remote]; ok && now.Sub(t) < probeRefresh {
			continue
		}
		err := l.sw.PacketOut(ctx, ofctl.PacketOut{InPort: of.PortController, Actions: p.Actions, Data: probeFrame})
		if err != nil {
			l.log.Debug("tunnel probe failed", zap.Stringer("remote", p.Remote), zap.Error(err))
			continue
		}
		l.probed[p.Remote] = now
		l.m.stats.Probes.Add(1)
	}
}
