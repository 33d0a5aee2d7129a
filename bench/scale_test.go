package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gonum.org/v1/plot/plotter"

	"github.com/wyvern-sdn/wyvern/bench/emulator"
	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// Convergence at scale: a three-node cluster (real wyvernd processes on
// loopback), each node with its own chassis — an emulated bridge in an
// ovsdb-server without ovs-vswitchd, as in the punt benchmark — and, in
// stages, more emulated chassis registered and bound the way a thin
// chassis agent does it (cluster.Remote: CmdChassisRegister,
// CmdChassisPorts over the internal channel), each served by one node
// (its NodeID) and with its bridge connected to that node, which
// programs the full pipeline there (central mode). Every stage adds as
// many networks as chassis, with 100 ports each (bulk creates), bound
// 100 to a chassis.
//
// What is timed: a port of a network the three node chassis host is
// bound on an emulated chassis, until every chassis hosting the network
// — the three node chassis, the ten emulated ones its ports are bound
// on, and the one the port is bound on — holds its L2Lookup flow
// (proactive mode), read from the emulated flow tables.

// WYVERN_SCALE_GOMEMLIMIT sets the nodes' GOMEMLIMIT (Go's soft memory
// limit: the collector works harder as the heap nears it).

// Ports are in the default security group, as the API makes them, unless
// WYVERN_SCALE_SG=off: then they have no port security and no group, which
// leaves out the remote-group flows every bridge holds for every port of
// the group (see bench/README.md).

// scaleStages are the emulated chassis counts (WYVERN_SCALE_CHASSIS, comma
// separated; default 100,300,1000).
func scaleStages(t testing.TB) []int {
	s := os.Getenv("WYVERN_SCALE_CHASSIS")
	if s == "" {
		s = "100,300,1000"
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 10 || len(out) > 0 && n <= out[len(out)-1] {
			t.Fatalf("WYVERN_SCALE_CHASSIS=%q: want increasing counts of at least 10", s)
		}
		out = append(out, n)
	}
	return out
}

const (
	portsPerNetwork = 100
	hostsPerNetwork = 10 // emulated chassis a network's ports are spread over
	measured        = 10 // networks the node chassis host, where binds are timed
	reserved        = 20 // ports of each measured network left for the timed binds
)

// scaleNode is one wyvernd and its chassis' emulated bridge.
type scaleNode struct {
	d    *daemon
	db   *ovsdb
	sw   *emulator.Switch
	cpu0 time.Duration
}

// emuChassis is an emulated chassis registered through cluster.Remote.
type emuChassis struct {
	name     string
	dpid     uint64
	node     int // the node that serves it (its NodeID) and its bridge connects to
	bindings []topology.Binding
	sw       *emulator.Switch
}

// BenchmarkConvergence grows the cluster through the stages and times
// binds at each: 30 per op and stage (at most the ports reserved for
// them, 200 over all stages). Run it with -benchtime 1x: every run
// builds the whole cluster.
func BenchmarkConvergence(b *testing.B) {
	ovstest.Require(b)
	stages := scaleStages(b)
	perStage := min(30*b.N, measured*reserved/len(stages))
	out := resultsDir(b)
	dir := b.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Three nodes, each with its chassis.
	var nodes []*scaleNode
	for i := range 3 {
		n := &scaleNode{db: startOVSDB(b)}
		o := wyverndOptions{name: fmt.Sprintf("hv%d", i+1), dataDir: filepath.Join(dir, fmt.Sprint(i+1)), ovsdb: n.db.endpoint(),
			encapIP: fmt.Sprintf("127.0.0.%d", i+1), extra: []string{"--forwarding", "proactive"}}
		if limit := os.Getenv("WYVERN_SCALE_GOMEMLIMIT"); limit != "" {
			o.env = append(o.env, "GOMEMLIMIT="+limit) // the nodes' only, not the emulator's
		}
		if procs := os.Getenv("WYVERN_SCALE_GOMAXPROCS"); procs != "" {
			o.env = append(o.env, "GOMAXPROCS="+procs)
		}
		if i > 0 {
			o.join = "http://" + nodes[0].d.api
		}
		n.d = startWyvernd(b, o)
		nodes = append(nodes, n)
		if strings.Contains(os.Getenv("GODEBUG"), "gctrace=1") {
			b.Logf("hv%d (pid %d) started at %s (its gctrace lines count from there)", i+1, n.d.pid(), startTime(n.d.pid()).Format("15:04:05.000"))
		}
	}
	api := newAPIClient(b, nodes[0].d.api)
	hc := &http.Client{Timeout: 10 * time.Second}
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = "http://" + n.d.api
	}
	addrs, err := cluster.RaftAddresses(ctx, hc, urls)
	if err != nil {
		b.Fatal(err)
	}
	remote, err := cluster.NewRemote(cluster.RemoteConfig{Members: addrs})
	if err != nil {
		b.Fatal(err)
	}

	// The measured networks, each hosted by the three node chassis (a
	// port of it plugged in each).
	var nets []string
	var netPorts [][]apiPort
	addNetworks := func(from, to int) {
		nets = append(nets, api.networks(from, to)...)
		netPorts = append(netPorts, api.portsOf(nets[from:to], portsPerNetwork)...)
	}
	addNetworks(0, measured)
	for i, n := range nodes {
		ovstest.Eventually(b, 30*time.Second, "the agent's br-int", func() bool {
			return exec.Command("ovs-vsctl", "--db="+n.db.endpoint(), "br-exists", "br-int").Run() == nil
		})
		dpid := uint64(0xa00 + i)
		n.db.vsctl("set", "bridge", "br-int", fmt.Sprintf("datapath_id=%016x", dpid))
		var local []apiPort
		for k := range measured {
			local = append(local, netPorts[k][i])
		}
		ports := emulatedPorts(b, local, 10)
		ids := make([]string, len(local))
		for j, p := range local {
			ids[j] = p.ID
		}
		n.db.plug("br-int", ports, ids)
		n.sw = dialSwitch(b, ctx, n.d.openflow, emulator.Config{DPID: dpid, Ports: ports})
	}
	for _, n := range nodes {
		ovstest.Eventually(b, 60*time.Second, "the node chassis' ports programmed", func() bool {
			return n.sw.LearnPorts() == measured
		})
	}

	var chassis []*emuChassis
	hosting := make([][]*emuChassis, measured) // the emulated chassis each measured network's ports are bound on
	rng := rand.New(rand.NewPCG(1, 2))
	next := make([]int, measured) // the next reserved port of each measured network
	boundNets := 0
	var chassisCounts []float64
	var p50s, p99s, replay50, replay99 []float64
	for _, size := range stages {
		// More networks (one per chassis), their ports, their chassis.
		start := time.Now()
		prevNets := len(nets)
		if size > prevNets {
			addNetworks(prevNets, size)
		}
		created := time.Since(start)
		prev := len(chassis)
		start = time.Now()
		newChassis := registerChassis(b, ctx, remote, prev, size, len(nodes))
		registered := time.Since(start)
		chassis = append(chassis, newChassis...)
		// Bind the new networks' ports over the new chassis (the
		// measured ones over the first stage's, but for their
		// reserved ports and those of the node chassis).
		for k := boundNets; k < len(nets); k++ {
			for j, p := range netPorts[k] {
				if k < measured && (j < len(nodes) || j >= portsPerNetwork-reserved) {
					continue
				}
				c := newChassis[(k*hostsPerNetwork+j%hostsPerNetwork)%len(newChassis)]
				c.bindings = append(c.bindings, topology.Binding{PortID: p.ID, OFPort: uint32(10 + len(c.bindings)), Active: true})
				if k < measured && !slices.Contains(hosting[k], c) {
					hosting[k] = append(hosting[k], c)
				}
			}
		}
		boundNets = len(nets)
		start = time.Now()
		reportAll(b, ctx, remote, newChassis)
		bound := time.Since(start)
		// Their bridges connect, each to its node, and get the full
		// pipeline.
		replays := connectChassis(b, ctx, nodes, newChassis)
		b.Logf("stage %d chassis: %d networks and %d ports created in %s; %d chassis registered in %s, their %d ports bound in %s; replay p50 %s p99 %s",
			size, len(nets), len(nets)*portsPerNetwork, created.Round(time.Millisecond), len(newChassis), registered.Round(time.Millisecond),
			countBindings(newChassis), bound.Round(time.Millisecond), emulator.Quantile(replays, 0.5).Round(time.Millisecond),
			emulator.Quantile(replays, 0.99).Round(time.Millisecond))

		// The node bridges catch up with the stage's growth first: every
		// bound port of the measured networks has its flow there.
		start = time.Now()
		var macs []uint64
		for k := range measured {
			for j, p := range netPorts[k] {
				if j >= len(nodes) && j < portsPerNetwork-reserved {
					mac, _ := net.ParseMAC(p.MAC)
					macs = append(macs, of.MACValue(mac))
				}
			}
		}
		for i, n := range nodes {
			waitMACs(b, ctx, n.sw, macs, fmt.Sprintf("hv%d", i+1))
		}
		for k := range measured {
			for _, c := range hosting[k] {
				waitMACs(b, ctx, c.sw, macs[k*(portsPerNetwork-reserved-len(nodes)):(k+1)*(portsPerNetwork-reserved-len(nodes))], c.name)
			}
		}
		settle(b, nodes, chassis)
		b.Logf("stage %d chassis: the hosting bridges caught up in %s (every bound port of the measured networks has its L2Lookup flow on every chassis hosting its network); hv1's bridge holds %s; %s's %s",
			size, time.Since(start).Round(time.Millisecond), tableCounts(nodes[0].sw), chassis[0].name, tableCounts(chassis[0].sw))

		// The emulator's own collector, which holds every emulated flow
		// table (GBs at 1,000 chassis), is not to run on the nodes'
		// cores during the binds for what the build allocated: a cycle
		// now, while nothing is timed.
		gcStart := time.Now()
		runtime.GC()
		b.Logf("stage %d chassis: the emulator's collection before the binds took %s", size, time.Since(gcStart).Round(time.Millisecond))

		// Timed binds, the last stage's under a CPU profile of hv1.
		var profDone chan error
		profile := filepath.Join(out, "convergence-hv1.pprof")
		if size == stages[len(stages)-1] {
			profDone = make(chan error, 1)
			go func() { profDone <- fetchProfile(nodes[0].d.debug, 5, profile) }()
		}
		var stats [3][3]uint64
		for i, n := range nodes {
			stats[i] = [3]uint64{n.sw.Stats.Bundles.Load(), n.sw.Stats.BundleFlows.Load(), n.sw.Stats.MaxBundle.Load()}
		}
		// A replay starts with a flow dump: which bridges were replayed
		// while the binds ran (none should be: a bind is one flow).
		dumps := map[*emulator.Switch]uint64{}
		for _, n := range nodes {
			dumps[n.sw] = n.sw.Stats.FlowDumps.Load()
		}
		for _, c := range chassis {
			dumps[c.sw] = c.sw.Stats.FlowDumps.Load()
		}
		gc0 := make([]nodeMetrics, len(nodes))
		for i, n := range nodes {
			cpu0, start := cpuTime(n.d.pid()), time.Now()
			gc0[i] = readNodeMetrics(n.d.debug)
			if i == 0 { // what a Prometheus scrape costs a node serving a third of the bridges
				b.Logf("stage %d chassis: a scrape of hv1's metrics took %s and %s of its CPU (%d series)", size,
					time.Since(start).Round(time.Millisecond), (cpuTime(n.d.pid()) - cpu0).Round(time.Millisecond), gc0[i].series)
			}
		}
		emuCPU0 := cpuTime(os.Getpid())
		var emuMem0 runtime.MemStats
		runtime.ReadMemStats(&emuMem0)
		var emuProfile *os.File
		if size == stages[len(stages)-1] {
			// Where the emulator's own time goes while the binds run.
			if f, err := os.Create(filepath.Join(out, "convergence-emulator.pprof")); err == nil && pprof.StartCPUProfile(f) == nil {
				emuProfile = f
			}
		}
		// WYVERN_SCALE_ALLOCS=1: what hv1 allocates during the binds, by
		// site: its heap profile after a forced collection before and
		// after them (the profile is as of the last collection). The
		// forced collection changes the run, so its latencies are not
		// the figures.
		// First what it allocates in 5 s of nothing happening: what
		// brings its collections on between binds.
		allocsBase := filepath.Join(out, "convergence-hv1-allocs-before.pprof")
		traceAllocs := os.Getenv("WYVERN_SCALE_ALLOCS") == "1" && size == stages[len(stages)-1]
		if traceAllocs {
			idle := filepath.Join(out, "convergence-hv1-allocs-idle.pprof")
			if err := fetchTo("http://"+nodes[0].d.debug+"/debug/pprof/heap?gc=1", time.Minute, idle); err != nil {
				b.Logf("allocation profile: %v", err)
			}
			time.Sleep(5 * time.Second)
			traceAllocs = allocatedSince(b, nodes[0].d.debug, idle, allocsBase, filepath.Join(out, "convergence-hv1-allocs-idle.txt"),
				"hv1 allocated in 5 s with nothing to do")
		}
		// WYVERN_SCALE_TRACE=1: an execution trace of each node over the
		// binds (go tool trace -pprof=sync shows what waited on what).
		var traces sync.WaitGroup
		if os.Getenv("WYVERN_SCALE_TRACE") == "1" && size == stages[len(stages)-1] {
			for i, n := range nodes {
				traces.Add(1)
				go func() {
					defer traces.Done()
					path := filepath.Join(out, fmt.Sprintf("convergence-hv%d.trace", i+1))
					if err := fetchTo("http://"+n.d.debug+"/debug/pprof/trace?seconds=4", time.Minute, path); err != nil {
						b.Logf("hv%d trace: %v", i+1, err)
					}
				}()
			}
			time.Sleep(200 * time.Millisecond) // the traces under way
		}
		for _, n := range nodes { // last before the clock: scraping a node's metrics costs it CPU too
			n.cpu0 = cpuTime(n.d.pid())
		}
		phase := time.Now()
		var lat, commit []time.Duration
		var hosts []float64 // chassis checked per bind
		for range perStage {
			k := rng.IntN(measured)
			if next[k] >= reserved {
				continue
			}
			p := netPorts[k][portsPerNetwork-reserved+next[k]]
			next[k]++
			c := chassis[rng.IntN(len(chassis))]
			c.bindings = append(c.bindings, topology.Binding{PortID: p.ID, OFPort: uint32(10 + len(c.bindings)), Active: true})
			mac, _ := net.ParseMAC(p.MAC)
			// Every chassis hosting the network: the nodes', the
			// emulated ones its ports are on, and c.
			sws, names := []*emulator.Switch{}, []string{}
			for i, n := range nodes {
				sws, names = append(sws, n.sw), append(names, fmt.Sprintf("hv%d", i+1))
			}
			for _, h := range append(slices.Clone(hosting[k]), c) {
				if !slices.Contains(sws, h.sw) {
					sws, names = append(sws, h.sw), append(names, h.name)
				}
			}
			hosts = append(hosts, float64(len(sws)))
			newHost := !slices.Contains(hosting[k], c)
			if newHost {
				hosting[k] = append(hosting[k], c)
			}
			// Every hosting chassis watched before the clock starts (the
			// look through its table is the emulator's, not the bind's).
			l2 := pipeline.Table(pipeline.L2Lookup)
			watches := make([]*emulator.Watch, len(sws))
			for i, sw := range sws {
				watches[i] = sw.Watch(func(f of.Flow) bool {
					if f.Table != l2 {
						return false
					}
					d, ok := f.Match.Get(of.FieldEthDst)
					return ok && d.Value == of.MACValue(mac)
				})
			}
			portDescs := func() (n uint64) { // the nodes' port list refreshes, meanwhile
				for _, c := range chassis {
					n += c.sw.Stats.PortDescs.Load()
				}
				return n
			}
			descs0 := portDescs()
			t0 := time.Now()
			waits := make(chan time.Time, len(sws))
			got := make([]time.Time, len(sws))
			wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
			for i := range sws {
				go func() {
					at, err := watches[i].Wait(wctx)
					if err != nil {
						at = time.Time{}
					}
					got[i] = at
					waits <- at
				}()
			}
			if _, err := remote.Propose(ctx, cluster.CmdChassisPorts, cluster.ChassisPorts{Chassis: c.name, Bindings: c.bindings}); err != nil {
				wcancel()
				b.Fatal(err)
			}
			commit = append(commit, time.Since(t0))
			var last time.Time
			for range sws {
				at := <-waits
				if at.IsZero() {
					wcancel()
					for range len(sws) - 1 {
						<-waits
					}
					var port map[string]any
					_, _ = daemontestCall(nodes[0].d.api, "/v2.0/ports/"+p.ID, &port)
					for i, sw := range sws {
						b.Logf("%s: flow came %v; bridge holds %d flows, %d bundles", names[i], !got[i].IsZero(), sw.FlowCount(), sw.Stats.Bundles.Load())
					}
					b.Fatalf("port %s (%s) bound on %s (the API has it as %v): a hosting chassis never got its L2Lookup flow", p.ID, p.MAC, c.name, port["port"])
				}
				if at.After(last) {
					last = at
				}
			}
			wcancel()
			lat = append(lat, last.Sub(t0))
			// Each bind, for the tail: a chassis new to the network gets
			// all of the network's flows, the others one.
			slowest, slowestAt := "", time.Duration(0)
			for i, at := range got {
				if d := at.Sub(t0); d > slowestAt {
					slowest, slowestAt = names[i], d
				}
			}
			b.Logf("bind %d at %s: %s on %s (new to its network: %v): %s, raft commit %s, last to hold it %s; %d port lists read meanwhile",
				len(lat), t0.Format("15:04:05.000"), p.ID, c.name, newHost, last.Sub(t0).Round(100*time.Microsecond),
				commit[len(commit)-1].Round(100*time.Microsecond), slowest, portDescs()-descs0)
		}
		elapsed := time.Since(phase).Seconds()
		traces.Wait()
		if emuProfile != nil {
			pprof.StopCPUProfile()
			emuProfile.Close()
			if top, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=40", emuProfile.Name()).CombinedOutput(); err == nil {
				_ = os.WriteFile(filepath.Join(out, "convergence-emulator-cum.txt"), top, 0o644)
			}
		}
		if traceAllocs {
			allocatedSince(b, nodes[0].d.debug, allocsBase, filepath.Join(out, "convergence-hv1-allocs-after.pprof"),
				filepath.Join(out, "convergence-hv1-allocs.txt"), "hv1 allocated during the binds")
		}
		cpu := make([]time.Duration, len(nodes)) // the binds' alone, before the profiles are fetched
		var gcs, proposals []string
		for i, n := range nodes {
			cpu[i] = cpuTime(n.d.pid()) - n.cpu0
			g := readNodeMetrics(n.d.debug)
			gcs = append(gcs, fmt.Sprintf("hv%d %.1f MB a bind, %d collections", i+1,
				(g.allocated-gc0[i].allocated)/1e6/float64(max(len(lat), 1)), int(g.cycles-gc0[i].cycles)))
			role := "follower"
			if g.leader {
				role = "leader"
			}
			proposals = append(proposals, fmt.Sprintf("hv%d (%s) %d, %d over 51 ms", i+1, role,
				int(g.proposals-gc0[i].proposals), int(g.slowProposals-gc0[i].slowProposals)))
		}
		// What the binds cost each node's collector: under GOMEMLIMIT a
		// node near its limit collects every few MB it allocates.
		b.Logf("stage %d chassis: allocated and collected during the binds: %s", size, strings.Join(gcs, "; "))
		// Where the binds' commands were proposed and how long they took
		// there (a follower's include forwarding them to the leader):
		// which side of the node a slow raft commit was.
		b.Logf("stage %d chassis: commands proposed on each node during the binds (its own and the benchmark's): %s", size, strings.Join(proposals, "; "))
		// This process, the 1,000 emulated switches and their flow tables,
		// shares the two cores with the nodes.
		var emuMem runtime.MemStats
		runtime.ReadMemStats(&emuMem)
		b.Logf("stage %d chassis: during the binds the emulator (this process) used %.2f cores and collected %d times; RSS %d MiB",
			size, (cpuTime(os.Getpid())-emuCPU0).Seconds()/elapsed, emuMem.NumGC-emuMem0.NumGC, rss(os.Getpid())>>20)
		var replayed []string
		for i, n := range nodes {
			if d := n.sw.Stats.FlowDumps.Load() - dumps[n.sw]; d > 0 {
				replayed = append(replayed, fmt.Sprintf("hv%d (%d)", i+1, d))
			}
		}
		for _, c := range chassis {
			if d := c.sw.Stats.FlowDumps.Load() - dumps[c.sw]; d > 0 {
				replayed = append(replayed, fmt.Sprintf("%s (%d)", c.name, d))
			}
		}
		b.Logf("stage %d chassis: bridges that dumped their flows (a replay) during the binds: %d %v", size, len(replayed), replayed)
		if profDone != nil {
			if err := <-profDone; err != nil {
				b.Logf("profile: %v", err)
			} else {
				for _, o := range []string{"-top", "-cum"} {
					args := []string{"tool", "pprof", "-top", "-nodecount=25", wyvernd, profile}
					if o == "-cum" {
						args = []string{"tool", "pprof", "-top", "-cum", "-nodecount=25", wyvernd, profile}
					}
					if top, err := exec.Command("go", args...).CombinedOutput(); err == nil {
						_ = os.WriteFile(filepath.Join(out, "convergence-hv1"+o+".txt"), top, 0o644)
						b.Logf("hv1 CPU profile during the binds (%s):\n%s", o, top)
						if o == "-cum" {
							// A cycle still marking when the binds end is
							// in no count of collections above.
							if cum, share, ok := markWorkers(top); ok {
								b.Logf("stage %d chassis: hv1's collector (its background mark workers) took %s of its CPU samples during the binds (%s)", size, share, cum)
							} else {
								b.Logf("stage %d chassis: hv1's collector's background mark workers are not among the 25 costliest of its CPU profile during the binds", size)
							}
						}
					}
				}
			}
		}
		if profDone != nil {
			// Where the last stage's memory is: hv1's heap, in use.
			heap := filepath.Join(out, "convergence-hv1-heap.pprof")
			if err := fetchHeap(nodes[0].d.debug, heap); err != nil {
				b.Logf("heap profile: %v", err)
			} else if top, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=inuse_space", "-nodecount=25", wyvernd, heap).CombinedOutput(); err == nil {
				_ = os.WriteFile(filepath.Join(out, "convergence-hv1-heap.txt"), top, 0o644)
				b.Logf("hv1 heap in use after the binds:\n%s", top)
			}
		}
		p50, p99 := emulator.Quantile(lat, 0.5), emulator.Quantile(lat, 0.99)
		var mem []string
		var maxRSS uint64
		for i, n := range nodes {
			r := rss(n.d.pid())
			maxRSS = max(maxRSS, r)
			bundles := n.sw.Stats.Bundles.Load() - stats[i][0]
			flows := n.sw.Stats.BundleFlows.Load() - stats[i][1]
			mem = append(mem, fmt.Sprintf("hv%d: RSS %d MiB, CPU %.2f cores, %d bundles of %.1f flows on average",
				i+1, r>>20, cpu[i].Seconds()/elapsed, bundles, float64(flows)/float64(max(bundles, 1))))
		}
		var changes []string
		for i, n := range nodes {
			changes = append(changes, fmt.Sprintf("hv%d %d", i+1, leaderChanges(n.d.debug)))
		}
		b.Logf("stage %d chassis: %d binds: until every chassis hosting the network (%.1f on average) holds the flow p50 %s p99 %s (raft commit p50 %s p99 %s); %s; leader changes seen since the start: %s",
			size, len(lat), mean(hosts), p50.Round(time.Microsecond), p99.Round(time.Microsecond), emulator.Quantile(commit, 0.5).Round(time.Microsecond),
			emulator.Quantile(commit, 0.99).Round(time.Microsecond), strings.Join(mem, "; "), strings.Join(changes, ", "))
		b.ReportMetric(float64(p99.Microseconds())/1000, fmt.Sprintf("p99-ms-%d", size))
		b.ReportMetric(float64(maxRSS>>20), fmt.Sprintf("rss-MiB-%d", size))
		chassisCounts = append(chassisCounts, float64(size+len(nodes)))
		p50s, p99s = append(p50s, float64(p50.Microseconds())/1000), append(p99s, float64(p99.Microseconds())/1000)
		replay50 = append(replay50, float64(emulator.Quantile(replays, 0.5).Microseconds())/1000)
		replay99 = append(replay99, float64(emulator.Quantile(replays, 0.99).Microseconds())/1000)
	}
	xy := func(ys []float64) plotter.XYs {
		pts := make(plotter.XYs, len(ys))
		for i, y := range ys {
			pts[i] = plotter.XY{X: chassisCounts[i], Y: y}
		}
		return pts
	}
	if len(stages) < 2 {
		b.Logf("one stage: the plot against chassis count (results/convergence*.png) is left as it was")
		return
	}
	name, title := "convergence.png", "Bind to flows on every hosting chassis (3 nodes, proactive)"
	if os.Getenv("WYVERN_SCALE_SG") == "off" {
		name, title = "convergence-no-sg.png", title+", no security groups"
	}
	savePlot(b, filepath.Join(out, name), title,
		"chassis", "ms", true, series{"bind p50", xy(p50s)}, series{"bind p99", xy(p99s)},
		series{"replay p50", xy(replay50)}, series{"replay p99", xy(replay99)})
}

// markWorkers reads the collector's background mark workers' cumulative
// time and share from a pprof -top -cum listing.
func markWorkers(top []byte) (cum, share string, ok bool) {
	for _, line := range strings.Split(string(top), "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && f[5] == "runtime.gcBgMarkWorker" {
			return f[3], f[4], true
		}
	}
	return "", "", false
}
