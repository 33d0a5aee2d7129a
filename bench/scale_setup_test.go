package bench

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/bench/emulator"
	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/daemontest"
	"github.com/wyvern-sdn/wyvern/internal/topology"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// The convergence benchmark's cluster-building and waiting helpers.

// networks creates networks from..to (each with a /24 subnet) in bulk.
func (a *apiClient) networks(from, to int) []string {
	a.t.Helper()
	var ids []string
	for lo := from; lo < to; lo += 500 {
		hi := min(to, lo+500)
		var nreq, sreq []map[string]any
		for k := lo; k < hi; k++ {
			nreq = append(nreq, map[string]any{"name": fmt.Sprintf("scale-%d", k)})
		}
		var nout struct {
			Networks []struct {
				ID string `json:"id"`
			} `json:"networks"`
		}
		a.post("/v2.0/networks", map[string]any{"networks": nreq}, &nout)
		for i, n := range nout.Networks {
			k := lo + i
			ids = append(ids, n.ID)
			sreq = append(sreq, map[string]any{"network_id": n.ID, "ip_version": 4,
				"cidr": fmt.Sprintf("10.%d.%d.0/24", 64+k>>8, k&0xff)})
		}
		a.post("/v2.0/subnets", map[string]any{"subnets": sreq}, nil)
	}
	return ids
}

// portsOf creates n ports on each network, 1,000 to a bulk request.
func (a *apiClient) portsOf(networks []string, n int) [][]apiPort {
	a.t.Helper()
	out := make([][]apiPort, len(networks))
	var reqs []map[string]any
	var owner []int
	flush := func() {
		if len(reqs) == 0 {
			return
		}
		var got struct {
			Ports []apiPort `json:"ports"`
		}
		if a.postRetry("/v2.0/ports", map[string]any{"ports": reqs}, &got) {
			got.Ports = got.Ports[:0]
			for _, r := range reqs {
				var one struct {
					Port apiPort `json:"port"`
				}
				// The 409 came from the leader; this node may apply the
				// entry a moment later.
				var code int
				var err error
				for range 100 {
					if code, err = daemontest.Call(a.client, "GET", a.addr, "/v2.0/ports/"+r["id"].(string), nil, &one); code == http.StatusOK {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if code != http.StatusOK {
					a.t.Fatalf("GET port %s: %d %v", r["id"], code, err)
				}
				got.Ports = append(got.Ports, one.Port)
			}
		}
		for i, p := range got.Ports {
			out[owner[i]] = append(out[owner[i]], p)
		}
		reqs, owner = reqs[:0], owner[:0]
	}
	for k, id := range networks {
		for range n {
			req := map[string]any{"network_id": id, "id": newUUID()}
			if os.Getenv("WYVERN_SCALE_SG") == "off" {
				req["port_security_enabled"] = false
				req["security_groups"] = []string{}
			}
			reqs = append(reqs, req)
			owner = append(owner, k)
			if len(reqs) == 1000 {
				flush()
			}
		}
	}
	flush()
	return out
}

// registerChassis registers chassis from..to through the internal channel,
// 16 at a time, as a thin agent would, each served by one of the nodes,
// round robin.
func registerChassis(t testing.TB, ctx context.Context, r *cluster.Remote, from, to, nodes int) []*emuChassis {
	t.Helper()
	out := make([]*emuChassis, to-from)
	for i := range out {
		n := from + i
		out[i] = &emuChassis{name: fmt.Sprintf("emu-%d", n), dpid: 0xe0000 + uint64(n), node: n % nodes}
	}
	parallel(t, 16, len(out), func(i int) error {
		c, n := out[i], from+i
		_, err := r.Propose(ctx, cluster.CmdChassisRegister, cluster.ChassisReg{Spec: topology.ChassisSpec{
			Name: c.name, EncapIP: fmt.Sprintf("10.255.%d.%d", n>>8, n&0xff), Encaps: []string{topology.TypeVXLAN},
			DatapathID: fmt.Sprintf("%016x", c.dpid), NodeID: fmt.Sprintf("hv%d", c.node+1), Connected: true, LastSeen: time.Now().UTC().Format(time.RFC3339),
			Bridge: "br-int", DatapathType: "system"}})
		return err
	})
	return out
}

// reportAll sends each chassis' complete report of its ports.
func reportAll(t testing.TB, ctx context.Context, r *cluster.Remote, cs []*emuChassis) {
	t.Helper()
	parallel(t, 16, len(cs), func(i int) error {
		_, err := r.Propose(ctx, cluster.CmdChassisPorts, cluster.ChassisPorts{Chassis: cs[i].name, Bindings: cs[i].bindings})
		return err
	})
}

// connectChassis connects each chassis' bridge, with its vxlan tunnel port,
// to its node, and returns how long each took from dial to its first
// bundle (the replay) committed.
func connectChassis(t testing.TB, ctx context.Context, nodes []*scaleNode, cs []*emuChassis) []time.Duration {
	t.Helper()
	out := make([]time.Duration, len(cs))
	parallel(t, 32, len(cs), func(i int) error {
		c := cs[i]
		start := time.Now()
		tunnel := emulator.Port{OFPort: 1, Name: "wyv-vxlan", MAC: net.HardwareAddr{0x02, 0xee, byte(c.dpid >> 16), byte(c.dpid >> 8), byte(c.dpid), 1}}
		sw, err := emulator.Dial(ctx, nodes[c.node].d.openflow, emulator.Config{DPID: c.dpid, Ports: []emulator.Port{tunnel}})
		if err != nil {
			return err
		}
		go func() { _ = sw.Run(ctx) }()
		t.Cleanup(sw.Close)
		c.sw = sw
		wctx, cancel := context.WithTimeout(ctx, 120*time.Second)
		defer cancel()
		at, err := c.sw.WaitFlow(wctx, func(of.Flow) bool { return true })
		if err != nil {
			return fmt.Errorf("chassis %s: no replay: %w", c.name, err)
		}
		out[i] = at.Sub(start)
		return nil
	})
	return out
}

func countBindings(cs []*emuChassis) int {
	n := 0
	for _, c := range cs {
		n += len(c.bindings)
	}
	return n
}

// parallel runs f(0..n-1) on workers goroutines; the first error fails t.
func parallel(t testing.TB, workers, n int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

// settle waits until no bridge has taken a bundle for half a second.
func settle(t testing.TB, nodes []*scaleNode, chassis []*emuChassis) {
	t.Helper()
	var sws []*emulator.Switch
	for _, n := range nodes {
		sws = append(sws, n.sw)
	}
	for _, c := range chassis {
		sws = append(sws, c.sw)
	}
	last := make([]uint64, len(sws))
	quiet := time.Now()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Since(quiet) < 500*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatal("the bridges never settled")
		}
		time.Sleep(50 * time.Millisecond)
		for i, sw := range sws {
			if b := sw.Stats.Bundles.Load(); b != last[i] {
				last[i], quiet = b, time.Now()
			}
		}
	}
}

// daemontestCall is a GET on a node's API.
func daemontestCall(api, path string, out any) (int, error) {
	return daemontest.Call(&http.Client{Timeout: 5 * time.Second}, "GET", api, path, nil, out)
}

// waitMACs waits until the switch holds an L2Lookup flow for every MAC.
func waitMACs(t testing.TB, ctx context.Context, sw *emulator.Switch, macs []uint64, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		have := map[uint64]bool{}
		for _, f := range sw.Flows() {
			if d, ok := f.Match.Get(of.FieldEthDst); ok && f.Table == pipeline.Table(pipeline.L2Lookup) {
				have[d.Value] = true
			}
		}
		missing := 0
		for _, m := range macs {
			if !have[m] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s: %d of %d bound ports still without their L2Lookup flow after 10 minutes", name, missing, len(macs))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tableCounts says how many flows a switch holds in each table.
func tableCounts(sw *emulator.Switch) string {
	counts := map[uint8]int{}
	flows := sw.Flows()
	for _, f := range flows {
		counts[f.Table]++
	}
	names := pipeline.TableNames()
	var parts []string
	for t := 0; t < 256; t++ {
		if n := counts[uint8(t)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", names[uint8(t)], n))
		}
	}
	return fmt.Sprintf("%d flows (%s)", len(flows), strings.Join(parts, ", "))
}

// newUUID is a random (version 4) UUID: an id the client chooses, so a
// retried create is idempotent.
func newUUID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// fetchHeap saves a node's heap profile after a collection it forces:
// without one, "in use" is the heap as the last finished cycle found it,
// garbage made since then left out and garbage it had not yet seen
// counted (hv1 after the 1,000-chassis binds: 610-614 MB that way in
// earlier runs, 570 MB after a forced collection in a later one).
func fetchHeap(debugAddr, path string) error {
	return fetchTo("http://"+debugAddr+"/debug/pprof/heap?gc=1", time.Minute, path)
}

// leaderChanges is how many times a node has seen the leader change
// (wyvern_raft_leader_changes_total); -1 when its metrics cannot be read.
func leaderChanges(debugAddr string) int {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + debugAddr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wyvern_raft_leader_changes_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return -1
			}
			return int(f)
		}
	}
	return -1
}
