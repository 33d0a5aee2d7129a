package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/plot/plotter"

	"github.com/wyvern-sdn/wyvern/bench/emulator"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// puntTarget is one controller under punt load: an emulated switch
// connected to it, its answers, its process.
type puntTarget struct {
	name string
	sw   *emulator.Switch
	rec  *emulator.Recorder
	pid  int
}

// puntResult is one closed- or open-loop run.
type puntResult struct {
	offered, answered float64 // punts/s
	p50, p99          time.Duration
	cores             float64 // the controller's CPU over the run
	emuCores          float64 // the emulator's (this process')
	bundles, flowMods float64 // per answer
	packetOuts        float64 // per answer
	wrong             uint64  // answers the emulator found wrong (not counted as answers)
}

// run drives the target's switch with load for d and measures.
func (pt *puntTarget) run(load emulator.Load, d time.Duration) puntResult {
	pt.sw.Forget(0)
	pt.rec.Reset()
	st := &pt.sw.Stats
	b0, f0, p0, w0 := st.Bundles.Load(), st.FlowMods.Load(), st.PacketOuts.Load(), st.WrongAnswers.Load()
	cpu0, emu0 := cpuTime(pt.pid), cpuTime(os.Getpid())
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	sent, _ := pt.sw.Drive(ctx, load)
	cancel()
	elapsed := time.Since(start).Seconds()
	n := float64(pt.rec.Count())
	r := puntResult{offered: float64(sent) / elapsed, answered: n / elapsed,
		p50: pt.rec.Quantile(0.5), p99: pt.rec.Quantile(0.99), cores: (cpuTime(pt.pid) - cpu0).Seconds() / elapsed,
		emuCores: (cpuTime(os.Getpid()) - emu0).Seconds() / elapsed, wrong: st.WrongAnswers.Load() - w0}
	if n > 0 {
		r.bundles = float64(st.Bundles.Load()-b0) / n
		r.flowMods = float64(st.FlowMods.Load()-f0) / n
		r.packetOuts = float64(st.PacketOuts.Load()-p0) / n
	}
	// Let the queue drain before the next run.
	for i := 0; i < 100 && pt.sw.Outstanding() > 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	return r
}

// BenchmarkPuntThroughput is cbench's throughput mode against wyvernd on
// one core (taskset -c 0, GOMAXPROCS=1) and, in the same run on the same
// core, ovs-testcontroller (a learning switch, OpenFlow 1.5). Each is one
// emulated switch of 32 ports — wyvernd's chassis bridge: its agent
// creates br-int in an ovsdb-server with no ovs-vswitchd, and the
// emulator is that bridge — kept busy with 64 punts in flight, each
// answered by a packet-out that carries the punted frame (matched by a
// sequence number in it). The emulator runs on core 1.
//
// Two workloads: ARP requests for a port's address (wyvernd: a reactive
// ARP-answer flow in a bundle, then the request re-injected;
// testcontroller: a flood) and unknown unicast (both: a flood). Then an
// open-loop sweep of offered load (ARP) for the plot, and a CPU profile
// of wyvernd under the closed-loop ARP load. One op is two seconds of
// load per cell; run it with -benchtime 1x (each run starts everything).
func BenchmarkPuntThroughput(b *testing.B) {
	ovstest.Require(b)
	if _, err := exec.LookPath("ovs-testcontroller"); err != nil {
		b.Skip("ovs-testcontroller not installed (make deps)")
	}
	// The closed loop keeps window punts in flight (64, as in cbench's
	// throughput mode; WYVERN_PUNT_WINDOW sets another): a controller
	// answering faster than window over its round trip leaves part of
	// its core idle.
	const nPorts = 32
	window := 64
	if w, err := strconv.Atoi(os.Getenv("WYVERN_PUNT_WINDOW")); err == nil && w > 0 {
		window = w
	}
	b.Logf("window: %d punts in flight", window)
	phase := time.Duration(b.N) * 2 * time.Second
	out := resultsDir(b)
	dir := b.TempDir()

	db := startOVSDB(b)
	d := startWyvernd(b, wyverndOptions{name: "wyvernd", dataDir: filepath.Join(dir, "wyvernd"), ovsdb: db.endpoint(),
		cpus: "0", gomaxprocs: 1})
	api := newAPIClient(b, d.api)
	netID := api.network("punt", "10.10.0.0/16")
	aps := api.ports(netID, nPorts)
	ports := emulatedPorts(b, aps, 10)
	ids := make([]string, len(aps))
	for i, p := range aps {
		ids[i] = p.ID
	}
	ovstest.Eventually(b, 30*time.Second, "the agent's br-int", func() bool {
		return exec.Command("ovs-vsctl", "--db="+db.endpoint(), "br-exists", "br-int").Run() == nil
	})
	const dpid = 0xe01
	db.vsctl("set", "bridge", "br-int", fmt.Sprintf("datapath_id=%016x", dpid))
	db.plug("br-int", ports, ids)

	unpin := pinSelf(b, 1)
	defer unpin()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wy := &puntTarget{name: "wyvernd", rec: &emulator.Recorder{}, pid: d.pid()}
	wy.sw = dialSwitch(b, ctx, d.openflow, emulator.Config{DPID: dpid, Ports: ports, Answers: wy.rec})
	ovstest.Eventually(b, 60*time.Second, "every port's classifier flow on the emulated bridge", func() bool {
		return wy.sw.LearnPorts() == nPorts
	})
	ports = wy.sw.Ports()

	tcAddr := ovstest.FreeAddr(b)
	host, port, _ := net.SplitHostPort(tcAddr)
	tc := startProcess(b, "ovs-testcontroller", "0", nil, "ovs-testcontroller", "-O", "OpenFlow15",
		"-vconsole:warn", "--unixctl="+filepath.Join(dir, "tc.ctl"), "ptcp:"+port+":"+host)
	ovstest.Eventually(b, 10*time.Second, "ovs-testcontroller listening", func() bool {
		c, err := net.Dial("tcp", tcAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	tct := &puntTarget{name: "ovs-testcontroller", rec: &emulator.Recorder{}, pid: tc.pid()}
	tct.sw = dialSwitch(b, ctx, "tcp:"+tcAddr, emulator.Config{DPID: dpid + 1, Ports: ports, Answers: tct.rec})
	targets := []*puntTarget{wy, tct}

	arp := func(i uint64) emulator.Punt {
		return emulator.Punt{Kind: emulator.ARPRequest, From: ports[i%nPorts], Target: ports[(i+1)%nPorts].IP}
	}
	unknown := func(i uint64) emulator.Punt {
		return emulator.Punt{Kind: emulator.UnknownUnicast, From: ports[i%nPorts],
			DstMAC: net.HardwareAddr{0x02, 0xee, 0, 0, byte(i >> 8), byte(i)}, DstIP: ports[(i+1)%nPorts].IP}
	}
	// Warm up both (the learning switch learns every port's MAC).
	for _, t := range targets {
		t.run(emulator.Load{Window: window, Next: arp, Lost: 100 * time.Millisecond}, 300*time.Millisecond)
	}

	capacity := 0.0
	for _, w := range []struct {
		name string
		next func(uint64) emulator.Punt
	}{{"arp", arp}, {"unknown-unicast", unknown}} {
		var got [2]puntResult
		for i, t := range targets {
			got[i] = t.run(emulator.Load{Window: window, Next: w.next, Lost: 100 * time.Millisecond}, phase)
			r := got[i]
			b.Logf("%-16s %-19s %9.0f answers/s  p50 %-9s p99 %-9s  %.2f cores (emulator %.2f)  per answer: %.2f bundles, %.2f flow-mods, %.2f packet-outs; %d wrong",
				w.name, t.name, r.answered, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.cores, r.emuCores,
				r.bundles, r.flowMods, r.packetOuts, r.wrong)
			if r.cores > 0 {
				b.Logf("%-16s %-19s %9.0f answers per core-second", w.name, t.name, r.answered/r.cores)
			}
			if r.wrong > 0 {
				b.Errorf("%s answered %d %s punts wrongly; the first: %s", t.name, r.wrong, w.name, t.sw.FirstWrongAnswer())
			}
			if w.name == "arp" {
				capacity = max(capacity, r.answered)
			}
		}
		b.ReportMetric(got[0].answered, w.name+"-wyvernd/s")
		b.ReportMetric(got[1].answered, w.name+"-testcontroller/s")
		if got[1].answered > 0 {
			b.ReportMetric(got[0].answered/got[1].answered, w.name+"-ratio")
		}
	}

	// Where wyvernd's time goes: CPU profiles under each load.
	for _, w := range []struct {
		name string
		next func(uint64) emulator.Punt
	}{{"arp", arp}, {"unknown-unicast", unknown}} {
		profile := filepath.Join(out, "punt-wyvernd-"+w.name+".pprof")
		allocs := filepath.Join(out, "punt-wyvernd-"+w.name+"-allocs.pprof")
		profDone, allocsDone := make(chan error, 1), make(chan error, 1)
		secs := 2 * b.N // as long as a cell's load (-benchtime Nx: longer profiles)
		go func() { profDone <- fetchProfile(d.debug, secs, profile) }()
		go func() {
			allocsDone <- fetchTo(fmt.Sprintf("http://%s/debug/pprof/allocs?seconds=%d", d.debug, secs), time.Duration(secs+20)*time.Second, allocs)
		}()
		wy.run(emulator.Load{Window: window, Next: w.next, Lost: 100 * time.Millisecond}, time.Duration(secs)*time.Second+500*time.Millisecond)
		// What a punt allocates (the GC's work follows it): bytes by
		// where they were allocated, over the same two seconds.
		if err := <-allocsDone; err == nil {
			if top, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=alloc_space", "-nodecount=20", wyvernd, allocs).CombinedOutput(); err == nil {
				_ = os.WriteFile(filepath.Join(out, "punt-wyvernd-"+w.name+"-allocs.txt"), top, 0o644)
			}
		}
		if err := <-profDone; err != nil {
			b.Logf("profile: %v", err)
			continue
		}
		for _, view := range []string{"top", "cum"} {
			args := []string{"tool", "pprof", "-top", "-nodecount=15", wyvernd, profile}
			if view == "cum" {
				args = []string{"tool", "pprof", "-top", "-cum", "-nodecount=30", wyvernd, profile}
			}
			if top, err := exec.Command("go", args...).CombinedOutput(); err == nil {
				_ = os.WriteFile(filepath.Join(out, "punt-wyvernd-"+w.name+"-"+view+".txt"), top, 0o644)
				b.Logf("wyvernd CPU profile under %s punts (%s):\n%s", w.name, view, top)
			}
		}
	}

	// Offered load against answers, both controllers, ARP punts.
	var lines []series
	step := max(phase/2, time.Second)
	for _, t := range targets {
		s := series{name: t.name}
		for _, f := range []float64{0.01, 0.03, 0.1, 0.25, 0.5, 1, 1.5, 2, 3} {
			r := t.run(emulator.Load{Rate: f * capacity, Next: arp}, step)
			if r.answered > 0 { // a log scale has no 0 (ovs-testcontroller answers none under some loads)
				s.points = append(s.points, plotter.XY{X: r.offered, Y: r.answered})
			}
			b.Logf("open loop %-19s offered %9.0f/s answered %9.0f/s p99 %-9s %.2f cores (emulator %.2f)", t.name, r.offered, r.answered,
				r.p99.Round(time.Microsecond), r.cores, r.emuCores)
		}
		lines = append(lines, s)
	}
	savePlot(b, filepath.Join(out, "punts.png"), "Punts answered against offered load (ARP, one core)",
		"offered punts/s", "answered punts/s", true, lines...)
}

// fetchProfile saves a CPU profile of seconds from a debug listener.
func fetchProfile(debugAddr string, seconds int, path string) error {
	return fetchTo(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", debugAddr, seconds), time.Duration(seconds+20)*time.Second, path)
}

// fetchTo saves what a GET of url answers to path.
func fetchTo(url string, timeout time.Duration, path string) error {
	resp, err := (&http.Client{Timeout: timeout}).Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}
