package pipeline

import (
	"fmt"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// Cookie reads the 64-bit OpenFlow cookie of every flow Wyvern installs
// (of.Flow's Cookie; NewCookie builds one):
//
//	bits 63..48  round   bumped each time the controller replays a bridge
//	bits 47..40  app     the owner of the flow (App)
//	bits 39..0   object  the logical object the flow serves:
//	  39..36     kind    port, network, router (0: the app's base flows)
//	  35         on demand: a punt's answer installed it (reactive mode)
//	  34..0      key     the object's key
//
// The round lets a replay replace everything and then sweep what is left of
// older rounds by cookie mask; the object lets reactive flows be invalidated
// by cookie when the object changes, and the on-demand bit keeps those
// deletes off the reconciled flows of the same object (a port plugged
// here has its L2Lookup flow reconciled; elsewhere a punt installs it).
type Cookie uint64

// Cookie field widths and masks.
const (
	RoundBits  = 16
	AppBits    = 8
	ObjectBits = 40

	objectShift = 0
	appShift    = ObjectBits
	roundShift  = ObjectBits + AppBits

	MaxObject = 1<<ObjectBits - 1

	// RoundMask selects the round of a cookie.
	RoundMask uint64 = (1<<RoundBits - 1) << roundShift
	// AppMask selects the app of a cookie.
	AppMask uint64 = (1<<AppBits - 1) << appShift
	// ObjectMask selects the object key of a cookie.
	ObjectMask uint64 = MaxObject << objectShift
)

// App identifies the owner of a flow.
type App uint8

// Owners of flows. Append only: the value is part of every installed cookie.
const (
	AppPipeline      App = 1 // table-miss flows of the base pipeline
	AppTunnels       App = 2
	AppL2Pop         App = 3
	AppARPResponder  App = 4
	AppDVR           App = 5
	AppPortSecurity  App = 6 // reserved: port security lives in l2pop; values are never reused
	AppDHCP          App = 7
	AppDNS           App = 8
	AppNAT           App = 9
	AppSecurityGroup App = 10
	AppTest          App = 255 // flows installed by tests
)

func (a App) String() string {
	switch a {
	case AppPipeline:
		return "pipeline"
	case AppTunnels:
		return "tunnels"
	case AppL2Pop:
		return "l2pop"
	case AppARPResponder:
		return "arpresponder"
	case AppDVR:
		return "dvr"
	case AppPortSecurity:
		return "portsecurity"
	case AppDHCP:
		return "dhcp"
	case AppDNS:
		return "dns"
	case AppNAT:
		return "nat"
	case AppSecurityGroup:
		return "secgroup"
	case AppTest:
		return "test"
	}
	return fmt.Sprintf("app%d", uint8(a))
}

// Object kinds occupy the top 4 bits of a cookie's object key, so the keys
// of ports, networks, routers and chassis never collide in a cookie.
const (
	objectKindShift = ObjectBits - 4
	objectKeyMask   = OnDemandMask - 1

	KindPort    = 1
	KindNetwork = 2
	KindRouter  = 3
	KindChassis = 4
)

// KindMask selects the object kind of a cookie: with AppMask, a delete
// reaches every flow of an app serving objects of one kind.
const KindMask uint64 = 0xf << objectKindShift

// OnDemandMask is the cookie bit of flows a punt's answer installed.
const OnDemandMask uint64 = 1 << (objectKindShift - 1)

// OnDemand reports whether a punt's answer installed the flow.
func (c Cookie) OnDemand() bool { return uint64(c)&OnDemandMask != 0 }

// OnDemand returns the flow marked as installed by a punt's answer.
func OnDemand(f of.Flow) of.Flow {
	f.Cookie |= OnDemandMask
	return f
}

// Kind is the kind of the object the flow serves (KindPort, ...), 0 for
// none.
func (c Cookie) Kind() uint64 { return c.Object() >> objectKindShift }

// PortObject is the cookie object of a logical port.
func PortObject(key uint32) uint64 { return KindPort<<objectKindShift | uint64(key)&objectKeyMask }

// NetworkObject is the cookie object of a logical network.
func NetworkObject(key uint32) uint64 {
	return KindNetwork<<objectKindShift | uint64(key)&objectKeyMask
}

// RouterObject is the cookie object of a logical router.
func RouterObject(key uint32) uint64 { return KindRouter<<objectKindShift | uint64(key)&objectKeyMask }

// NewCookie builds a flow's cookie. An object key wider than ObjectBits
// is truncated; the FSM allocates keys far below that.
func NewCookie(round uint16, app App, object uint64) uint64 {
	return uint64(round)<<roundShift | uint64(app)<<appShift | (object&MaxObject)<<objectShift
}

// Round is the replay round of the cookie.
func (c Cookie) Round() uint16 { return uint16(c >> roundShift) }

// App is the owner of the flow.
func (c Cookie) App() App { return App(c >> appShift) }

// Object is the key of the logical object the flow serves.
func (c Cookie) Object() uint64 { return uint64(c) & ObjectMask }

// WithRound returns the cookie moved to another round.
func (c Cookie) WithRound(round uint16) Cookie {
	return Cookie(uint64(c)&^RoundMask | uint64(round)<<roundShift)
}

// WithRound returns the flow with its cookie moved to another round.
func WithRound(f of.Flow, round uint16) of.Flow {
	f.Cookie = uint64(Cookie(f.Cookie).WithRound(round))
	return f
}

func (c Cookie) String() string {
	kinds := [...]string{"", "port", "network", "router", "chassis"}
	o := c.Object()
	demand := ""
	if c.OnDemand() {
		demand = ",on-demand"
	}
	if k := o >> objectKindShift; k > 0 && int(k) < len(kinds) {
		return fmt.Sprintf("round=%d,app=%s,%s=%d%s", c.Round(), c.App(), kinds[k], o&objectKeyMask, demand)
	}
	return fmt.Sprintf("round=%d,app=%s,object=%d", c.Round(), c.App(), o)
}

// ObjectKey is the key of the logical object a cookie object names (a
// port, network or router key).
func ObjectKey(object uint64) uint32 { return uint32(object & objectKeyMask) }
