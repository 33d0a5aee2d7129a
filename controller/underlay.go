package controller

import (
	"context"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/internal/topology"
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

// warmTunnels keeps the underlay next hop of every remote chassis the local
// bridge tunnels to resolved, on a userspace datapath. Open vSwitch's
// native tunneling (netdev datapath) drops a packet whose remote it has no
// neighbour entry for, while it ARPs for it; the kernel datapath queues
// it instead. Without this, the first packet to a chassis just joined --
// or to any chassis after ovs-vswitchd restarts -- would be lost however
// fast the controller answers its punt. A remote is probed when it first
// shares a network with this chassis or hosts one its routers reach,
// whenever the bridge reconnects
// (a restarted vswitchd has an empty cache), and every probeRefresh.
func (n *Node) warmTunnels(ctx context.Context, kick <-chan struct{}) {
	tick := time.NewTicker(probeRefresh / 5)
	defer tick.Stop()
	probed := map[netip.Addr]time.Time{}
	var session *ofctl.Switch
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-tick.C:
		}
		br, sw, ok := n.localSwitch()
		if !ok {
			continue
		}
		if sw != session { // a new connection: maybe a new vswitchd
			session, probed = sw, map[netip.Addr]time.Time{}
		}
		var probes []tunnels.Probe
		n.fsm.Read(func(s *topology.Store) { probes = tunnels.Probes(n.viewOf(s), br) })
		now := time.Now()
		for _, p := range probes {
			if t, ok := probed[p.Remote]; ok && now.Sub(t) < probeRefresh {
				continue
			}
			err := sw.PacketOut(ctx, ofctl.PacketOut{InPort: of.PortController, Actions: p.Actions, Data: probeFrame})
			if err != nil {
				n.log.Debug("tunnel probe failed", zap.Stringer("remote", p.Remote), zap.Error(err))
				continue
			}
			probed[p.Remote] = now
			n.underlayProbes.Add(1)
		}
	}
}
