package pipeline

import (
	"fmt"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// PuntReason says why a flow sent a packet to the controller. It is the
// first byte of the flow's controller(userdata=...), which comes back in
// the packet-in: the controller hands a punt to the app that answers its
// reason — dispatch by data, never by table. Values are append only: they
// are in every installed punt flow.
type PuntReason uint8

// Punt reasons.
const (
	ReasonL2Miss          PuntReason = iota + 1 // L2Lookup: no flow for the destination MAC
	ReasonARPMiss                               // ARPResponder: no answer for the target address
	ReasonRouteMiss                             // L3Lookup: no route to the destination address
	ReasonTTLExpired                            // L3Lookup: a routed packet's TTL ran out
	ReasonTooBig                                // L3Lookup: a routed packet is larger than the MTU of the network it goes to
	ReasonVIPAnnouncement                       // ARPResponder: a gratuitous ARP for a shared address
	ReasonDHCP                                  // DHCP: a VM's DHCPv4 request; the flow's data is the port's reply
	ReasonDNS                                   // DNS: a VM's DNS query
	ReasonNeighbour                             // Uplink: an ARP reply to a router's address on a physical network
	ReasonResolve                               // L3Lookup, SNAT: a routed packet to an address on a physical network whose MAC is not known yet
)

// PuntReasons lists every declared reason (a test holds each to one app).
var PuntReasons = []PuntReason{ReasonL2Miss, ReasonARPMiss, ReasonRouteMiss, ReasonTTLExpired, ReasonTooBig, ReasonVIPAnnouncement,
	ReasonDHCP, ReasonDNS, ReasonNeighbour, ReasonResolve}

func (r PuntReason) String() string {
	switch r {
	case ReasonL2Miss:
		return "l2-miss"
	case ReasonARPMiss:
		return "arp-miss"
	case ReasonRouteMiss:
		return "route-miss"
	case ReasonTTLExpired:
		return "ttl-expired"
	case ReasonTooBig:
		return "too-big"
	case ReasonVIPAnnouncement:
		return "vip-announcement"
	case ReasonDHCP:
		return "dhcp"
	case ReasonDNS:
		return "dns"
	case ReasonNeighbour:
		return "neighbour"
	case ReasonResolve:
		return "resolve"
	}
	return fmt.Sprintf("reason%d", uint8(r))
}

// Punt is the action of a punt flow: to the controller through a meter,
// with the reason and the app's own data in the userdata.
func Punt(reason PuntReason, meter uint32, data ...byte) of.Punt {
	return of.Punt{UserData: string(append([]byte{byte(reason)}, data...)), MeterID: meter}
}

// ParsePuntData splits a punt's userdata into its reason and the app's
// data; ok is false when there is none (a flow that is not Wyvern's).
func ParsePuntData(userdata []byte) (reason PuntReason, data []byte, ok bool) {
	if len(userdata) == 0 || userdata[0] == 0 {
		return 0, nil, false
	}
	return PuntReason(userdata[0]), userdata[1:], true
}
