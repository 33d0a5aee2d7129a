package apps

import (
	"github.com/wyvern-sdn/wyvern/app"
	"github.com/wyvern-sdn/wyvern/arpresponder"
	"github.com/wyvern-sdn/wyvern/dhcp"
	"github.com/wyvern-sdn/wyvern/dns"
	"github.com/wyvern-sdn/wyvern/dvr"
	"github.com/wyvern-sdn/wyvern/l2pop"
	"github.com/wyvern-sdn/wyvern/nat"
	"github.com/wyvern-sdn/wyvern/secgroup"
	"github.com/wyvern-sdn/wyvern/tunnels"
)

// Registered are the apps every bridge runs, in the order their flows
// are composed. Adding an app is a package and one line here.
func Registered() []app.App {
	return []app.App{
		tunnels.App{},
		l2pop.App{},
		arpresponder.New(),
		dvr.App{},
		dhcp.App{},
		dns.App{},
		nat.App{},
		secgroup.App{},
	}
}
