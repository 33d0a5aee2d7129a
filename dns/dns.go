// Package dns is internal DNS (Neutron's dns-integration): a VM asks for
// another VM of its own network by name — the port's dns_name in its
// network's dns_domain — or for the name of one of its addresses, and
// its own chassis answers, with no DNS server process. Any other query,
// names under the domain that no port has included, goes on unchanged to
// the server the VM asked. Only the asking port's network is consulted: a
// name in another network, another tenant's included, is not known here.
//
// Tables it owns: DNS (and one flow per network in ServiceClassifier).
//
//	ServiceClassifier  metadata=<net>,udp,tp_dst=53           → DNS   (networks with a dns_domain)
//	DNS                reg6=<port>,udp,tp_dst=53              → punt (dns, the port's meter)
//
// Cookie objects: a port (its punt flow), a network (its classifier
// flow).
//
// It is pure and imports the app contract, pipeline, the flow model, the
// topology view and the DNS codec.
package dns

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/dhcp"
	"github.com/wyvern-sdn/wyvern/dns/dnsmsg"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/internal/topology/view"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Priorities of the app's flows.
const (
	PriorityClassify = 100
	PriorityQuery    = 100
)

// TTL is how long a VM's resolver may keep an answer: short, so that a
// port's new name or address shows soon.
const TTL = 30

// App is internal DNS.
type App struct{}

var _ app.App = App{}

// ID implements app.App.
func (App) ID() pipeline.App { return pipeline.AppDNS }

// Flows implements app.App.
func (App) Flows(v *view.View, br view.Bridge) []of.Flow { return flows(v, br, nil) }

// ObjectFlows implements app.App.
func (App) ObjectFlows(v *view.View, br view.Bridge, objs app.Objects) []of.Flow {
	return flows(v, br, objs)
}

func flows(v *view.View, br view.Bridge, objs app.Objects) []of.Flow {
	var out []of.Flow
	for _, n := range v.HostedNetworks(br.Chassis) {
		if n.DNSDomain == "" {
			continue
		}
		if objs == nil || objs[pipeline.NetworkObject(n.Key)] {
			out = append(out, of.Flow{
				Table: pipeline.Table(pipeline.ServiceClassifier), Priority: PriorityClassify,
				Cookie:  pipeline.NewCookie(0, pipeline.AppDNS, pipeline.NetworkObject(n.Key)),
				Match:   of.Match{}.Reg(pipeline.NetworkKey, uint64(n.Key)).EthType(of.EthTypeIPv4).IPProto(of.IPProtoUDP).UDPDst(53),
				Actions: []of.Action{of.GotoTable{Table: pipeline.Table(pipeline.DNS)}},
			})
		}
		for _, p := range v.NetworkPorts(n.ID) {
			if p.Chassis != br.Chassis || p.DeviceOwner == topology.OwnerRouterInterface ||
				objs != nil && !objs[pipeline.PortObject(p.Key)] {
				continue
			}
			out = append(out, of.Flow{
				Table: pipeline.Table(pipeline.DNS), Priority: PriorityQuery,
				Cookie:  pipeline.NewCookie(0, pipeline.AppDNS, pipeline.PortObject(p.Key)),
				Match:   of.Match{}.Reg(pipeline.SrcPortKey, uint64(p.Key)).EthType(of.EthTypeIPv4).IPProto(of.IPProtoUDP).UDPDst(53),
				Actions: []of.Action{pipeline.Punt(pipeline.ReasonDNS, pipeline.PortMeter(p.Key))},
			})
		}
	}
	return out
}

// PerDestination implements app.App: none; the flows serve the local
// ports that ask.
func (App) PerDestination(of.Flow) bool { return false }

// Reasons implements app.App.
func (App) Reasons() []pipeline.PuntReason { return []pipeline.PuntReason{pipeline.ReasonDNS} }

// OnPunt answers a query for a name or address of the asking port's
// network, and passes any other on unchanged.
func (App) OnPunt(v *view.View, _ view.Bridge, p app.Punt) app.Answer {
	pass := app.Answer{Outcome: app.PassedOn, Reinject: true, Resubmit: pipeline.Table(pipeline.L2Lookup)}
	q, err := dnsmsg.ParseQuery(p.Frame)
	if err != nil {
		return pass // not a query this app understands: the server it was sent to may
	}
	port, ok := v.PortByKey(uint32(p.Reg(pipeline.SrcPortKey)))
	if !ok {
		return pass
	}
	a, ok := Lookup(v, port, q)
	if !ok {
		return pass
	}
	reply, err := dnsmsg.Reply(q, a)
	if err != nil {
		return pass
	}
	return app.Answer{Outcome: app.Replied, Send: []app.PacketOut{{
		Actions: []of.Action{of.Output{Port: p.InPort}}, Frame: reply}}}
}

// Lookup answers a query from a port from its network's names; ok is
// false when the query is not about them, and goes on to the server it was
// sent to. Only a question sent to the network's own DNS address (its
// DHCP server's, which DHCP hands out when the subnet names no servers)
// is answered whatever it asks: NXDOMAIN for a name under the domain, or
// an address of its subnets, that no port has; REFUSED for anything else,
// since nothing there could resolve it.
func Lookup(v *view.View, asker view.Port, q dnsmsg.Query) (dnsmsg.Answer, bool) {
	n, ok := v.Network(asker.NetworkID)
	if !ok || n.DNSDomain == "" || q.Question.Class != dnsmsg.ClassINET {
		return dnsmsg.Answer{}, false
	}
	ours := false // sent to the network's own DNS address
	for _, f := range asker.FixedIPs {
		if sn, ok := v.Subnet(f.SubnetID); ok && q.IPDst == dhcp.ServerAddress(sn) && len(sn.DNSServers) == 0 {
			ours = true
		}
	}
	unknown := func() (dnsmsg.Answer, bool) {
		if ours {
			return dnsmsg.Answer{RCode: dnsmsg.RCodeNameError, TTL: TTL}, true
		}
		return dnsmsg.Answer{}, false
	}
	name, typ := q.Question.Name, q.Question.Type
	ports := v.AllNetworkPorts(n.ID)
	if host, ok := strings.CutSuffix(name, "."+n.DNSDomain); ok && !strings.Contains(host, ".") {
		var addrs []netip.Addr
		found := false
		for _, p := range ports {
			if p.DNSName == host || p.DNSName == name {
				found = true
				for _, f := range p.FixedIPs {
					addrs = append(addrs, f.Addr)
				}
			}
		}
		switch {
		case !found:
			return unknown()
		case typ == dnsmsg.TypeA || typ == dnsmsg.TypeANY:
			slices.SortFunc(addrs, netip.Addr.Compare)
			return dnsmsg.Answer{Addrs: addrs, TTL: TTL}, true
		}
		return dnsmsg.Answer{TTL: TTL}, true // NODATA: the name has only A records
	}
	if ip, ok := dnsmsg.ParseReverse(name); ok && ip.Is4() && inNetwork(v, n.ID, ports, ip) {
		for _, p := range ports {
			if p.DNSName == "" {
				continue
			}
			for _, f := range p.FixedIPs {
				if f.Addr == ip {
					if typ != dnsmsg.TypePTR && typ != dnsmsg.TypeANY {
						return dnsmsg.Answer{TTL: TTL}, true
					}
					fqdn := p.DNSName
					if !strings.HasSuffix(fqdn, "."+n.DNSDomain) {
						fqdn += "." + n.DNSDomain
					}
					return dnsmsg.Answer{PTR: []string{fqdn}, TTL: TTL}, true
				}
			}
		}
		return unknown()
	}
	if ours {
		return dnsmsg.Answer{RCode: dnsmsg.RCodeRefused}, true
	}
	return dnsmsg.Answer{}, false
}

// inNetwork reports whether an address is in one of a network's subnets.
func inNetwork(v *view.View, network string, ports []*view.Port, ip netip.Addr) bool {
	for _, p := range ports {
		for _, f := range p.FixedIPs {
			if sn, ok := v.Subnet(f.SubnetID); ok && sn.NetworkID == network && sn.Prefix.Contains(ip) {
				return true
			}
		}
	}
	return false
}

// Affects implements app.App: a network whose domain came or went or that
// this chassis started or stopped hosting, and the ports that came,
// went or moved.
func (App) Affects(before, after *view.View, br view.Bridge, changes []topology.Change) app.Scope {
	objs := app.Objects{}
	app.AddHosting(objs, before, after, br.Chassis)
	for _, ch := range changes {
		if ch.Resource != topology.ResourceNetwork {
			continue
		}
		nb, _ := before.Network(ch.ID)
		na, _ := after.Network(ch.ID)
		if nb.DNSDomain != na.DNSDomain {
			for _, v := range []*view.View{before, after} {
				app.AddNetwork(objs, v, ch.ID)
			}
		}
	}
	for _, pc := range app.Ports(before, after, changes) {
		for _, s := range pc.Sides(before, after) {
			objs.Add(pipeline.PortObject(s.Port.Key), pipeline.NetworkObject(s.Port.NetworkKey))
		}
	}
	return app.Scope{Objects: objs}
}

// Invalidates implements app.App: DNS installs nothing on demand.
func (App) Invalidates(_, _ *view.View, _ []topology.Change) []of.FlowMod { return nil }
