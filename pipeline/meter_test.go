package pipeline

import (
	"slices"
	"testing"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

// TestPortPuntFlows: reactive mode gives a port one metered punt flow in
// every table whose miss punts (L3Lookup's second table too), just above
// the miss; proactive none.
func TestPortPuntFlows(t *testing.T) {
	got := of.FormatFlows(PortPuntFlows(Reactive, 7), Names())
	want := []string{
		"cookie=0x11000000007, table=71, priority=1,reg6=0x7 actions=controller(userdata=03,meter_id=7)",
		"cookie=0x11000000007, table=ARPResponder, priority=1,reg6=0x7 actions=controller(userdata=02,meter_id=7)",
		"cookie=0x11000000007, table=L2Lookup, priority=1,reg6=0x7 actions=controller(userdata=01,meter_id=7)",
		"cookie=0x11000000007, table=L3Lookup, priority=1,reg6=0x7 actions=controller(userdata=03,meter_id=7)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	if f := PortPuntFlows(Proactive, 7); len(f) != 0 {
		t.Errorf("proactive mode punts: %v", f)
	}
	flows := append(PortPuntFlows(Reactive, 9), PortPuntFlows(Reactive, 7)...)
	flows = append(flows, MissFlows(Reactive, 1)...)
	if got, want := Meters(flows), []uint32{7, 9, MeterFromRemotes}; !slices.Equal(got, want) {
		t.Errorf("Meters = %v, want %v", got, want)
	}
	if got := Meters(MissFlows(Proactive, 1)); len(got) != 0 {
		t.Errorf("proactive base pipeline uses meters %v", got)
	}
}
