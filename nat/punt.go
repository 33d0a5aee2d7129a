package nat

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/dvr"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
	"github.com/wyvern-sdn/wyvern/tunnels"
)

// OnPunt implements app.App: an ARP reply from a physical network teaches
// a neighbour's MAC (written to the topology, so every chassis routes
// with it); a routed packet to a host or next hop whose MAC is not known
// yet makes the router ask for it, and is dropped meanwhile.
func (App) OnPunt(v *view.View, br view.Bridge, p app.Punt) app.Answer {
	switch p.Reason {
	case pipeline.ReasonNeighbour:
		return learned(v, p)
	case pipeline.ReasonResolve:
		if len(p.Data) != 1 || p.Packet.EthType != of.EthTypeIPv4 {
			return app.Answer{Outcome: app.Malformed}
		}
		return resolve(v, br, uint32(p.Reg(pipeline.RouterKey)), p.Packet.IPDst, p.Data[0])
	}
	return app.Answer{Outcome: app.Unanswered}
}

// learned reads an ARP reply: the sender's address must be in a subnet
// of the network and no port's (ports are the topology's to say, not
// the wire's).
func learned(v *view.View, p app.Punt) app.Answer {
	pkt := p.Packet
	if pkt.EthType != of.EthTypeARP || pkt.ARPOp != of.ARPReply || !pkt.ARPSPA.Is4() || len(pkt.ARPSHA) != 6 ||
		pkt.ARPSHA[0]&1 != 0 || bytes.Equal(pkt.ARPSHA, make([]byte, 6)) {
		return app.Answer{Outcome: app.Malformed}
	}
	n, ok := v.NetworkByKey(uint32(p.Reg(pipeline.NetworkKey)))
	if !ok || !n.Provider() {
		return app.Answer{Outcome: app.Unanswered}
	}
	if !v.InSubnet(n.ID, pkt.ARPSPA) {
		return app.Answer{Outcome: app.Malformed}
	}
	if nb, ok := v.Neighbour(n.ID, pkt.ARPSPA); ok && (nb.Port != 0 || nb.Router) {
		return app.Answer{Outcome: app.Unanswered}
	}
	// An answer to a question the cloud asks: for one of its addresses on
	// the network (a router's interface or gateway, a floating IP).
	if nb, ok := v.Neighbour(n.ID, pkt.ARPTPA); !ok || nb.Port == 0 && !nb.Router {
		return app.Answer{Outcome: app.Unanswered}
	}
	if mac, ok := v.ExternalNeighbour(n.ID, pkt.ARPSPA); ok && bytes.Equal(mac, pkt.ARPSHA) {
		return app.Answer{Outcome: app.Learned}
	}
	return app.Answer{Outcome: app.Learned, Learn: &topology.Neighbour{NetworkID: n.ID, IP: pkt.ARPSPA.String(), MAC: pkt.ARPSHA.String()}}
}

// resolve answers a routed packet whose destination's MAC flows do not
// have: a port after all (dvr's route), or an ARP request for it.
func resolve(v *view.View, br view.Bridge, router uint32, dst netip.Addr, kind byte) app.Answer {
	r, ok := v.RouterByKey(router)
	if !ok || !v.RoutesOn(br.Chassis, r.Key) {
		return app.Answer{Outcome: app.Unanswered}
	}
	c, _ := v.Chassis(br.Chassis)
	switch kind {
	case resolveHost:
		for _, ri := range v.RouterInterfaces(r.ID) {
			if !ri.Prefix.Contains(dst) || !ri.Network.Provider() {
				continue
			}
			if flows := dvr.OnMiss(v, br, r.Key, dst); len(flows) > 0 {
				return app.Answer{Outcome: app.Answered, Flows: flows, Reinject: true, Resubmit: pipeline.Table(pipeline.L3Lookup)}
			}
			port, ok := br.PhysicalPorts[ri.Network.PhysicalNetwork]
			if !ok || c.DVRMAC == nil {
				return app.Answer{Outcome: app.Unroutable}
			}
			return app.Answer{Outcome: app.Resolving, Send: []app.PacketOut{
				{Actions: tunnels.ToPhysical(ri.Network, port), Frame: ARPRequest(c.DVRMAC, ri.IP, dst)}}}
		}
		return app.Answer{Outcome: app.Unroutable}
	case resolveNextHop:
		return app.Answer{Outcome: app.Resolving, Send: Solicitations(v, br, r.ID)}
	}
	return app.Answer{Outcome: app.Malformed}
}

// Solicitations are the ARP requests that find (and keep fresh) the MACs
// of a router's next hops on its external network, from this chassis: as
// the gateway (its address and MAC) on the gateway chassis, as a floating
// IP (the floating IP and this chassis' DVR MAC) where one is served. An
// empty router id asks for every router served here.
func Solicitations(v *view.View, br view.Bridge, router string) []app.PacketOut {
	c, ok := v.Chassis(br.Chassis)
	if !ok {
		return nil
	}
	var out []app.PacketOut
	for _, r := range v.RoutersWithGateway() {
		if router != "" && r.ID != router {
			continue
		}
		g, _ := v.RouterGateway(r.ID)
		port, ok := br.PhysicalPorts[g.Network.PhysicalNetwork]
		if !ok || !g.Network.Provider() {
			continue
		}
		var srcMAC net.HardwareAddr
		var srcIP netip.Addr
		if gc, ok := v.GatewayChassis(r.ID); ok && gc == br.Chassis {
			srcMAC, srcIP = g.MAC, g.IP
		} else if c.DVRMAC != nil {
			for _, f := range v.FloatingIPsOn(br.Chassis) {
				if f.Router.Key == r.Key {
					srcMAC, srcIP = c.DVRMAC, f.IP
					break
				}
			}
		}
		if srcMAC == nil {
			continue
		}
		hops := []netip.Addr{}
		if g.NextHop.IsValid() {
			hops = append(hops, g.NextHop)
		}
		for _, rt := range v.StaticRoutes(r.ID) {
			if g.Prefix.Contains(rt.NextHop) && rt.NextHop != g.NextHop {
				hops = append(hops, rt.NextHop)
			}
		}
		for _, hop := range hops {
			out = append(out, app.PacketOut{Actions: tunnels.ToPhysical(g.Network, port), Frame: ARPRequest(srcMAC, srcIP, hop)})
		}
		if gc, ok := v.GatewayChassis(r.ID); ok && gc == br.Chassis && router == "" {
			out = append(out, beacons(v, br, r, g)...)
		}
	}
	if router == "" && c.DVRMAC != nil {
		out = append(out, refreshes(v, br, c.DVRMAC)...)
	}
	return out
}

// BeaconEthType marks a gateway beacon (the IEEE's local experimental
// EtherType 2).
const BeaconEthType = 0x88b6

// beacons are frames from a router's gateway MAC into each of its flat and
// vlan networks, from its gateway chassis: other chassis send what leaves
// the router there to that MAC, and the physical switches must know where
// it is, as they never see it otherwise (routed traffic carries DVR
// MACs). Receivers drop them (Uplink).
func beacons(v *view.View, br view.Bridge, r view.Router, g view.Gateway) []app.PacketOut {
	var out []app.PacketOut
	for _, ri := range v.RouterInterfaces(r.ID) {
		port, ok := br.PhysicalPorts[ri.Network.PhysicalNetwork]
		if !ri.Network.Provider() || !ok {
			continue
		}
		f := make([]byte, 60)
		copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		copy(f[6:], g.MAC)
		binary.BigEndian.PutUint16(f[12:], BeaconEthType)
		copy(f[14:], "wyvern gateway")
		out = append(out, app.PacketOut{Actions: tunnels.ToPhysical(ri.Network, port), Frame: f})
	}
	return out
}

// refreshes ask again for the hosts and static routes' next hops of the
// flat and vlan subnets of the routers this chassis is home for there, so
// a host's MAC that changed is learned again.
func refreshes(v *view.View, br view.Bridge, dvrMAC net.HardwareAddr) []app.PacketOut {
	var out []app.PacketOut
	for _, r := range v.ChassisRouters(br.Chassis) {
		for _, ri := range v.RouterInterfaces(r.ID) {
			port, ok := br.PhysicalPorts[ri.Network.PhysicalNetwork]
			if !ri.Network.Provider() || !ok {
				continue
			}
			if home, ok := v.ProviderHome(r.ID, ri.Network); !ok || home != br.Chassis {
				continue
			}
			asked := map[netip.Addr]bool{}
			ask := func(ip netip.Addr) {
				if ri.Prefix.Contains(ip) && ip != ri.IP && !asked[ip] {
					asked[ip] = true
					out = append(out, app.PacketOut{Actions: tunnels.ToPhysical(ri.Network, port), Frame: ARPRequest(dvrMAC, ri.IP, ip)})
				}
			}
			for _, ip := range v.ExternalNeighbours(ri.Network.ID) {
				ask(ip)
			}
			for _, rt := range v.StaticRoutes(r.ID) {
				if _, known := v.Neighbour(ri.Network.ID, rt.NextHop); !known {
					ask(rt.NextHop)
				}
			}
		}
	}
	return out
}

// Announcements are the gratuitous ARPs a bridge sends after a change:
// for each floating IP that is now served here and was not (bound, or its
// VM migrated here), and each router gateway this chassis now hosts (a
// failover), so the physical network and the outside router learn at once
// where the address is.
func Announcements(before, after *view.View, br view.Bridge) []app.PacketOut {
	c, ok := after.Chassis(br.Chassis)
	if !ok {
		return nil
	}
	var out []app.PacketOut
	servedBefore := map[string]bool{}
	if before != nil {
		for _, f := range before.FloatingIPsOn(br.Chassis) {
			servedBefore[f.ID+"|"+f.IP.String()] = true
		}
	}
	if c.DVRMAC != nil {
		for _, f := range after.FloatingIPsOn(br.Chassis) {
			port, ok := br.PhysicalPorts[f.Network.PhysicalNetwork]
			if !ok || servedBefore[f.ID+"|"+f.IP.String()] {
				continue
			}
			out = append(out, app.PacketOut{Actions: tunnels.ToPhysical(f.Network, port), Frame: GratuitousARP(c.DVRMAC, f.IP)})
		}
	}
	for _, r := range after.RoutersWithGateway() {
		gc, ok := after.GatewayChassis(r.ID)
		if !ok || gc != br.Chassis {
			continue
		}
		if before != nil {
			if was, ok := before.GatewayChassis(r.ID); ok && was == br.Chassis {
				continue
			}
		}
		g, _ := after.RouterGateway(r.ID)
		if port, ok := br.PhysicalPorts[g.Network.PhysicalNetwork]; ok {
			out = append(out, app.PacketOut{Actions: tunnels.ToPhysical(g.Network, port), Frame: GratuitousARP(g.MAC, g.IP)})
		}
		out = append(out, beacons(after, br, r, g)...)
	}
	// A router's way in on a flat/vlan network that moved here.
	for _, r := range after.ChassisRouters(br.Chassis) {
		for _, ri := range after.RouterInterfaces(r.ID) {
			port, ok := br.PhysicalPorts[ri.Network.PhysicalNetwork]
			if !ri.Network.Provider() || !ok {
				continue
			}
			if home, ok := after.ProviderHome(r.ID, ri.Network); !ok || home != br.Chassis {
				continue
			}
			if before != nil {
				if was, ok := before.ProviderHome(r.ID, ri.Network); ok && was == br.Chassis {
					continue
				}
			}
			out = append(out, app.PacketOut{Actions: tunnels.ToPhysical(ri.Network, port), Frame: GratuitousARP(ri.MAC, ri.IP)})
		}
	}
	return out
}

// ARPRequest is a broadcast ARP request from (mac, ip) for target.
func ARPRequest(mac net.HardwareAddr, ip, target netip.Addr) []byte {
	return arpFrame(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac, ip, make(net.HardwareAddr, 6), target)
}

// GratuitousARP announces that ip is at mac: a broadcast request for
// itself, as Linux sends one.
func GratuitousARP(mac net.HardwareAddr, ip netip.Addr) []byte {
	return arpFrame(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac, ip, make(net.HardwareAddr, 6), ip)
}

func arpFrame(dst, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	b := make([]byte, 0, 60)
	b = append(b, dst...)
	b = append(b, sha...)
	b = binary.BigEndian.AppendUint16(b, of.EthTypeARP)
	b = append(b, 0, 1, 0x08, 0x00, 6, 4, 0, 1)
	b = append(b, sha...)
	s4 := spa.As4()
	b = append(b, s4[:]...)
	b = append(b, tha...)
	t4 := tpa.As4()
	b = append(b, t4[:]...)
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}
