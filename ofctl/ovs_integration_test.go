package ofctl

import (
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/wyvern-sdn/wyvern/internal/flowgen"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// realSwitch starts OVS with one bridge connected to a server listening on
// a unix socket in the OVS directory, and returns the session.
func realSwitch(t testing.TB) (*ovstest.OVS, string, *Server, *Switch) {
	return realSwitchPunting(t, nil)
}

// realSwitchPunting is realSwitch with a handler for the bridge's punts.
func realSwitchPunting(t testing.TB, punt func(PacketIn)) (*ovstest.OVS, string, *Server, *Switch) {
	t.Helper()
	o := ovstest.Start(t)
	sock := filepath.Join(o.Dir, "ofctl.sock")
	connected := make(chan *Switch, 4)
	h := handlerFunc{connected: func(ctx context.Context, sw *Switch) { connected <- sw; <-ctx.Done() }}
	if punt != nil {
		h.packetIn = func(_ context.Context, _ *Switch, pi PacketIn) { punt(pi) }
	}
	srv, err := Listen(Config{Addr: "unix:" + sock, TableNames: pipeline.TableNames()}, h, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	br := ovstest.Name("br")
	o.AddBridge(br, ovstest.BridgeOptions{Controller: "unix:" + sock})
	select {
	case sw := <-connected:
		return o, br, srv, sw
	case <-time.After(15 * time.Second):
		t.Fatal("bridge did not connect")
	}
	return nil, "", nil, nil
}

// TestDumpRoundTripOnRealOVS installs random flows of every kind the model
// has through a bundle, reads them back with DumpFlows (model → OVS →
// model), and compares ovs-ofctl's own text with Flow.Format.
func TestDumpRoundTripOnRealOVS(t *testing.T) {
	o, br, _, sw := realSwitch(t)
	ctx := context.Background()
	want := flowgen.Set(rand.New(rand.NewSource(5)), 400)
	var mods []of.FlowMod
	for _, f := range want.Flows() {
		mods = append(mods, of.FlowMod{Command: of.FlowAdd, Flow: f})
	}
	if err := sw.Bundle(ctx, mods); err != nil {
		t.Fatal(err)
	}
	dump, err := sw.DumpFlows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range dump.Undecodable {
		t.Errorf("undecodable flow %s: %v", u.Flow, u.Err)
	}
	got := of.NewFlowSet(dump.Flows...)
	if !got.Equal(want) {
		c := of.Diff(want, got)
		t.Fatalf("dump differs from what was installed: %s; first: %v", c, firstOf(c))
	}
	text := o.DumpFlows(br)
	model := of.FormatFlows(want.Flows(), pipeline.Names())
	if strings.Join(text, "\n") != strings.Join(model, "\n") {
		for i := range min(len(text), len(model)) {
			if text[i] != model[i] {
				t.Fatalf("ovs-ofctl and the model print differently:\novs-ofctl: %s\nmodel:     %s", text[i], model[i])
			}
		}
		t.Fatalf("ovs-ofctl printed %d flows, the model %d", len(text), len(model))
	}
}

func firstOf(c of.Changes) string {
	for _, l := range [][]of.Flow{c.Deletes, c.Modifies, c.Adds} {
		if len(l) > 0 {
			return l[0].String()
		}
	}
	return ""
}

// TestBundleIsAtomicOnRealOVS: one flow OVS rejects (goto_table backwards)
// among good ones: the error names it and none of the bundle lands.
func TestBundleIsAtomicOnRealOVS(t *testing.T) {
	o, br, _, sw := realSwitch(t)
	before := o.DumpFlows(br)
	mods := make([]of.FlowMod, 0, 51)
	for _, f := range flowgen.Distinct(rand.New(rand.NewSource(6)), 50) {
		mods = append(mods, of.FlowMod{Command: of.FlowAdd, Flow: f})
	}
	bad := of.Flow{Table: pipeline.Table(pipeline.L2Lookup), Priority: 1,
		Actions: []of.Action{of.GotoTable{Table: pipeline.Table(pipeline.Classifier)}}}
	mods = append(mods[:25], append([]of.FlowMod{{Command: of.FlowAdd, Flow: bad}}, mods[25:]...)...)
	err := sw.Bundle(context.Background(), mods)
	var oe *OpenFlowError
	if !errors.As(err, &oe) || oe.Flow == nil || !oe.Flow.Equal(bad) {
		t.Fatalf("got %v, want an OpenFlow error naming %s", err, bad)
	}
	t.Logf("switch said: %v", err)
	if after := o.DumpFlows(br); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("a rejected bundle changed the bridge: %d flows before, %d after", len(before), len(after))
	}
	if err := sw.Barrier(context.Background()); err != nil {
		t.Fatalf("session unusable after a rejected bundle: %v", err)
	}
}

// TestSwitchKilledMidBundle kills ovs-vswitchd (SIGKILL) while a 200k-flow
// bundle streams: Bundle returns ErrDisconnected, the session leaves the
// server, and no goroutine of it remains.
func TestSwitchKilledMidBundle(t *testing.T) {
	o, _, srv, sw := realSwitch(t)
	goroutines := runtime.NumGoroutine()
	mods := make([]of.FlowMod, 0, 200_000)
	for _, f := range flowgen.Distinct(rand.New(rand.NewSource(8)), 200_000) {
		mods = append(mods, of.FlowMod{Command: of.FlowAdd, Flow: f})
	}
	pid := o.VswitchdPID()
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}()
	start := time.Now()
	err := sw.Bundle(context.Background(), mods)
	if !errors.Is(err, ErrDisconnected) {
		t.Fatalf("Bundle to a killed switch: got %v after %s, want ErrDisconnected", err, time.Since(start))
	}
	t.Logf("Bundle returned %q %s after the kill was scheduled", err, time.Since(start).Round(time.Millisecond))
	ovstest.Eventually(t, 5*time.Second, "session removed", func() bool { _, ok := srv.Switch(sw.DPID()); return !ok })
	ovstest.Eventually(t, 5*time.Second, "session goroutines gone", func() bool {
		return runtime.NumGoroutine() <= goroutines-3 // reader, keepalive, punt worker
	})
	_ = os.Remove(filepath.Join(o.Dir, "vs.pid"))
}

// TestMetersOnRealOVS: a meter is added, then modified in place; a punt
// flow using it limits what reaches the controller, and the switch counts
// what the band dropped; then the meter is deleted.
func TestMetersOnRealOVS(t *testing.T) {
	o, br, _, sw := realSwitch(t)
	ctx := context.Background()
	if err := sw.SetMeter(ctx, Meter{ID: 7, Rate: 1000, Burst: 1000}); err != nil {
		t.Fatal(err)
	}
	if err := sw.SetMeter(ctx, Meter{ID: 7, Rate: 10, Burst: 10}); err != nil { // modify
		t.Fatal(err)
	}
	if got := o.Ofctl("dump-meters", br); !strings.Contains(got, "meter=7 pktps burst stats bands=") ||
		!strings.Contains(got, "type=drop rate=10 burst_size=10") {
		t.Fatalf("dump-meters:\n%s", got)
	}
	punt := of.Flow{Table: 3, Priority: 10, Cookie: pipeline.NewCookie(1, pipeline.AppTest, 1),
		Actions: []of.Action{of.Punt{MeterID: 7}}}
	if err := sw.Bundle(ctx, []of.FlowMod{{Command: of.FlowAdd, Flow: punt}}); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 60)
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5})
	const sent = 300
	for range sent {
		if err := sw.PacketOut(ctx, PacketOut{InPort: of.PortController, Actions: []of.Action{of.Resubmit{Table: 3}}, Data: frame}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	var st MeterStats
	ovstest.Eventually(t, 5*time.Second, "meter counts every packet", func() bool {
		stats, err := sw.MeterStats(ctx)
		if err != nil || len(stats) != 1 {
			return false
		}
		st = stats[0]
		return st.Packets == sent
	})
	punted := sw.Stats().PuntsReceived.Load()
	t.Logf("meter 7: %d packets, %d dropped by the band, %d punts reached the controller", st.Packets, st.Dropped, punted)
	if st.ID != 7 || st.Dropped < sent/2 || punted+st.Dropped != sent {
		t.Fatalf("meter stats %+v with %d punts received of %d sent", st, punted, sent)
	}
	if err := sw.DeleteMeter(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if got := o.Ofctl("dump-meters", br); strings.Contains(got, "meter=7") {
		t.Fatalf("meter still there:\n%s", got)
	}
	var oe *OpenFlowError
	if err := sw.SetMeter(ctx, Meter{ID: MeterMax + 1, Rate: 1}); err == nil || errors.As(err, &oe) {
		t.Fatalf("meter id beyond OFPM_MAX: %v", err)
	}
}

// TestApplyMetersAndFlowsOnRealOVS: a new meter and a flow punting
// through it go in one Apply (one write, then the commit); Apply again
// with the meter at a new rate modifies it in place; a meter the switch
// rejects discards the bundle, so no flow of it lands.
func TestApplyMetersAndFlowsOnRealOVS(t *testing.T) {
	o, br, _, sw := realSwitch(t)
	ctx := context.Background()
	punt := func(table uint8, meter uint32) of.FlowMod {
		return of.FlowMod{Command: of.FlowAdd, Flow: of.Flow{Table: table, Priority: 10, Cookie: pipeline.NewCookie(1, pipeline.AppTest, 1),
			Actions: []of.Action{of.Punt{MeterID: meter}}}}
	}
	if err := sw.Apply(ctx, []Meter{{ID: 9, Rate: 100, Burst: 50}}, []of.FlowMod{punt(3, 9)}); err != nil {
		t.Fatal(err)
	}
	if got := o.Ofctl("dump-meters", br); !strings.Contains(got, "meter=9 pktps burst stats bands=") || !strings.Contains(got, "rate=100 burst_size=50") {
		t.Fatalf("dump-meters after Apply:\n%s", got)
	}
	if got := o.DumpFlows(br); len(got) != 1 || !strings.Contains(got[0], "meter_id=9") {
		t.Fatalf("flows after Apply: %v", got)
	}
	if err := sw.Apply(ctx, []Meter{{ID: 9, Rate: 20, Burst: 20}}, []of.FlowMod{punt(4, 9)}); err != nil {
		t.Fatal(err)
	}
	if got := o.Ofctl("dump-meters", br); !strings.Contains(got, "rate=20 burst_size=20") {
		t.Fatalf("an existing meter was not modified:\n%s", got)
	}
	// A replay after a restart sets every meter again, all of which
	// exist: each is modified, however many there are.
	var many []Meter
	for id := uint32(100); id < 200; id++ {
		many = append(many, Meter{ID: id, Rate: 100, Burst: 100})
	}
	if err := sw.Apply(ctx, many, []of.FlowMod{punt(7, 150)}); err != nil {
		t.Fatal(err)
	}
	for i := range many {
		many[i].Rate, many[i].Burst = 33, 33
	}
	if err := sw.Apply(ctx, many, []of.FlowMod{punt(8, 199)}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(o.Ofctl("dump-meters", br), "rate=33 burst_size=33"); got != len(many) {
		t.Fatalf("%d of %d existing meters modified", got, len(many))
	}
	// A packet-out sent behind the commit goes through the flow the
	// bundle installed (without it the packet would miss table 9 and be
	// dropped).
	frame := make([]byte, 60)
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5})
	punted := sw.Stats().PuntsReceived.Load()
	first := of.FlowMod{Command: of.FlowAdd, Flow: of.Flow{Table: 9, Priority: 10, Cookie: pipeline.NewCookie(1, pipeline.AppTest, 2),
		Actions: []of.Action{of.Punt{UserData: "\x01"}}}}
	if err := sw.Apply(ctx, nil, []of.FlowMod{first},
		PacketOut{InPort: of.PortController, Actions: []of.Action{of.Resubmit{Table: 9}}, Data: frame}); err != nil {
		t.Fatal(err)
	}
	ovstest.Eventually(t, 5*time.Second, "the packet-out behind the commit punted by the new flow", func() bool {
		return sw.Stats().PuntsReceived.Load() == punted+1
	})
	before := o.DumpFlows(br)
	// A band of rate 0 is invalid: the meter fails, and with it the bundle.
	err := sw.Apply(ctx, []Meter{{ID: 11, Rate: 0, Burst: 0}}, []of.FlowMod{punt(5, 9), punt(6, 11)})
	var oe *OpenFlowError
	if !errors.As(err, &oe) {
		t.Fatalf("Apply with a rejected meter: got %v, want an OpenFlow error", err)
	}
	t.Logf("switch said: %v", err)
	if after := o.DumpFlows(br); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("a rejected Apply changed the flows: %v -> %v", before, after)
	}
	if err := sw.Barrier(ctx); err != nil {
		t.Fatalf("session unusable after a rejected Apply: %v", err)
	}
}

// TestPacketIn2OnRealOVS: a punt flow's controller(userdata=...) comes
// back with the packet, as do the flow's table and cookie and the
// pipeline fields the packet carried (metadata, registers), because the
// session asks for NXT_PACKET_IN2.
func TestPacketIn2OnRealOVS(t *testing.T) {
	punts := make(chan PacketIn, 4)
	_, _, _, sw := realSwitchPunting(t, func(pi PacketIn) { punts <- pi })
	ctx := context.Background()
	userdata := "\x07why\x00"
	punt := of.Flow{Table: 3, Priority: 10, Cookie: pipeline.NewCookie(1, pipeline.AppTest, 5),
		Match:   of.Match{}.Reg(pipeline.SrcPortKey, 9),
		Actions: []of.Action{of.Punt{UserData: userdata}}}
	if err := sw.Bundle(ctx, []of.FlowMod{{Command: of.FlowAdd, Flow: punt}}); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 60)
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5})
	po := PacketOut{InPort: of.PortController, Match: of.Match{}.Reg(pipeline.SrcPortKey, 9).Reg(pipeline.NetworkKey, 0x33),
		Actions: []of.Action{of.Resubmit{Table: 3}}, Data: frame}
	if err := sw.PacketOut(ctx, po); err != nil {
		t.Fatal(err)
	}
	select {
	case pi := <-punts:
		src, _ := pi.Match.Get(of.FieldReg6)
		md, _ := pi.Match.Get(of.FieldMetadata)
		if string(pi.UserData) != userdata || pi.Table != 3 || pi.Cookie != punt.Cookie || src.Value != 9 || md.Value != 0x33 ||
			string(pi.Data) != string(frame) || pi.TotalLen != uint32(len(frame)) {
			t.Fatalf("punt: userdata %q table %d cookie %#x reg6 %d metadata %#x, %d bytes of %d",
				pi.UserData, pi.Table, pi.Cookie, src.Value, md.Value, len(pi.Data), pi.TotalLen)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no punt")
	}
	// Three packet-outs in one write: each comes back as a punt of its own.
	var batch []PacketOut
	for i := 0; i < 3; i++ {
		f := append([]byte(nil), frame...)
		f[59] = byte(i + 1)
		batch = append(batch, PacketOut{InPort: of.PortController, Match: po.Match, Actions: po.Actions, Data: f})
	}
	if err := sw.PacketOuts(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	seen := map[byte]bool{}
	for len(seen) < 3 {
		select {
		case pi := <-punts:
			seen[pi.Data[59]] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("packet-outs sent together: punts of %v only", seen)
		}
	}
}

// TestRoleRequestOnRealOVS: OVS takes our mastership at a generation id,
// shows it in the Controller table, refuses a request from an older
// generation as stale (a deposed master's), and takes a newer one.
func TestRoleRequestOnRealOVS(t *testing.T) {
	o, br, _, sw := realSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	role, gen, err := sw.RequestRole(ctx, RoleMaster, 7)
	if err != nil || role != RoleMaster || gen != 7 {
		t.Fatalf("master at generation 7: %v %d %v", role, gen, err)
	}
	ovstest.Eventually(t, 15*time.Second, "ovs-vsctl shows master", func() bool {
		return strings.TrimSpace(o.Vsctl("--bare", "--columns", "role", "list", "controller")) == "master"
	})
	if _, _, err := sw.RequestRole(ctx, RoleMaster, 6); !errors.Is(err, ErrStaleRole) {
		t.Fatalf("master at generation 6 after 7: %v, want ErrStaleRole", err)
	}
	if _, _, err := sw.RequestRole(ctx, RoleSlave, 5); !errors.Is(err, ErrStaleRole) {
		t.Fatalf("slave at generation 5 after 7: %v, want ErrStaleRole", err)
	}
	if role, _, err := sw.RequestRole(ctx, RoleSlave, 8); err != nil || role != RoleSlave {
		t.Fatalf("slave at generation 8: %v %v", role, err)
	}
	ovstest.Eventually(t, 15*time.Second, "ovs-vsctl shows slave", func() bool {
		return strings.TrimSpace(o.Vsctl("--bare", "--columns", "role", "list", "controller")) == "slave"
	})
	if role, gen, err := sw.RequestRole(ctx, RoleMaster, 9); err != nil || role != RoleMaster || gen != 9 {
		t.Fatalf("master again at 9: %v %d %v", role, gen, err)
	}
	if err := sw.Bundle(ctx, []of.FlowMod{{Command: of.FlowAdd, Flow: of.Flow{Table: 0, Priority: 1}}}); err != nil {
		t.Fatalf("a bundle as master: %v", err)
	}
	if n := strings.Count(o.Ofctl("dump-flows", br), "priority=1 "); n != 1 {
		t.Fatalf("the master's flow: %d on the bridge", n)
	}
}

// TestPortsOnRealOVS: the switch's own port list names its ports with the
// OpenFlow numbers OVSDB gives them.
func TestPortsOnRealOVS(t *testing.T) {
	o, br, _, sw := realSwitch(t)
	o.Vsctl("add-port", br, "wyv-vxlan", "--", "set", "interface", "wyv-vxlan", "type=vxlan", "options:remote_ip=flow", "options:key=flow", "ofport_request=7")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ports []PortDesc
	ovstest.Eventually(t, 10*time.Second, "wyv-vxlan in the port description", func() bool {
		var err error
		if ports, err = sw.Ports(ctx); err != nil {
			t.Fatal(err)
		}
		for _, p := range ports {
			if p.Name == "wyv-vxlan" {
				return p.No == 7
			}
		}
		return false
	})
	local := false
	for _, p := range ports {
		local = local || p.Name == br && p.No == 0xfffffffe
	}
	if !local {
		t.Errorf("no LOCAL port named %s among %+v", br, ports)
	}
}
