package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/daemontest"
)

// benchCluster is a 3-node cluster with one network and a /12 subnet,
// enough addresses for any benchmark run.
func benchCluster(b *testing.B) (*testCluster, string) {
	c := newCluster(b)
	for i := 0; i < 3; i++ {
		c.add("auto")
		waitHealthy(b, c.members[i])
	}
	net := mustCreate(b, c.members[0].api, "/v2.0/networks", map[string]any{"network": map[string]any{"name": "bench"}})["network"].(map[string]any)
	mustCreate(b, c.members[0].api, "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net["id"], "cidr": "10.64.0.0/12"}})
	return c, net["id"].(string)
}

func percentile(d []time.Duration, p float64) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// BenchmarkPortCreate creates one port per request, round-robin through
// the three nodes (two of three requests are forwarded to the leader), and
// reports the latency distribution.
func BenchmarkPortCreate(b *testing.B) {
	c, net := benchCluster(b)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := c.members[i%3]
		start := time.Now()
		code, err := call("POST", m.api, "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net}}, nil)
		if err != nil || code != http.StatusCreated {
			b.Fatalf("create: %d %v", code, err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
}

// BenchmarkBulkCreate1000 creates ports 1000 per request on the leader
// and reports ports per second, HTTP, raft replication to three nodes and
// fsync included: one client at a time, and four at once (raft then
// writes several entries per disk flush).
func BenchmarkBulkCreate1000(b *testing.B) {
	for _, clients := range []int{1, 4} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			c, net := benchCluster(b)
			leader := leaderOf(b, c)
			ports := make([]map[string]any, 1000)
			for i := range ports {
				ports[i] = map[string]any{"network_id": net}
			}
			body := map[string]any{"ports": ports}
			slow := *client
			slow.Timeout = 60 * time.Second
			saved := client
			client = &slow
			defer func() { client = saved }()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for w := 0; w < clients; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := w; i < b.N; i += clients {
						code, err := call("POST", leader.api, "/v2.0/ports", body, nil)
						if err != nil || code != http.StatusCreated {
							errs <- fmt.Errorf("bulk create: %d %v", code, err)
							return
						}
					}
				}(w)
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(1000*b.N)/elapsed.Seconds(), "ports/s")
		})
	}
}

// BenchmarkConcurrentPortCreate: 32 clients, each creating one port per
// request through the three nodes in turn (as a CMS's workers would), for
// b.N requests each; ports/s, p50 and p99, and in the same run the bulk
// figure (four clients, 1000 ports a request, on the leader) on the same
// cluster: single writes' share of what raft can take.
func BenchmarkConcurrentPortCreate(b *testing.B) {
	c, net := benchCluster(b)
	const clients = 32
	lats := make([][]time.Duration, clients)
	leader := leaderOf(b, c)
	cpu0 := cpuOf(c, leader)
	index0 := appliedIndex(b, leader)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	if out := os.Getenv("WYVERN_PROFILE"); out != "" {
		// CPU profiles of every node under the load, from their debug
		// listeners: the leader's in the file named, a follower's in
		// that name with ".follower-<id>" appended (a forwarded write
		// costs its follower too). WYVERN_PROFILE_SECONDS (default 3)
		// should fit the run.
		secs := os.Getenv("WYVERN_PROFILE_SECONDS")
		if secs == "" {
			secs = "3"
		}
		for _, m := range c.members {
			path := out
			if m != leader {
				path = out + ".follower-" + m.id
			}
			go profileTo(b, m, secs, path)
		}
	}
	// Each client keeps its connections open, as a CMS's pooled HTTP
	// sessions do, so that the figure is the server's, not the cost of
	// a TCP connection a request (net/http keeps two idle connections a
	// host unless told otherwise). WYVERN_BENCH_KEEPALIVE=off measures
	// the old way.
	single := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients, IdleConnTimeout: time.Minute}}
	if os.Getenv("WYVERN_BENCH_KEEPALIVE") == "off" {
		single = client
	}
	body := json.RawMessage(`{"port": {"network_id": "` + net + `"}}`)
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < b.N; i++ {
				m := c.members[(w+i)%3]
				t0 := time.Now()
				code, err := daemontest.Call(single, "POST", m.api, "/v2.0/ports", body, nil)
				if err != nil || code != http.StatusCreated {
					failed.Add(1)
					continue
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := cpuOf(c, leader).since(cpu0, elapsed)
	entries := appliedIndex(b, leader) - index0
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d creates failed", n)
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	rate := float64(len(all)) / elapsed.Seconds()
	// The bulk figure, same cluster, same run.
	leader = leaderOf(b, c)
	ports := make([]map[string]any, 1000)
	for i := range ports {
		ports[i] = map[string]any{"network_id": net}
	}
	slow := *client
	slow.Timeout = 60 * time.Second
	saved := client
	client = &slow
	defer func() { client = saved }()
	bulkStart := time.Now()
	var bwg sync.WaitGroup
	for w := 0; w < 4; w++ {
		bwg.Add(1)
		go func() {
			defer bwg.Done()
			for i := 0; i < 3; i++ {
				if code, err := call("POST", leader.api, "/v2.0/ports", map[string]any{"ports": ports}, nil); err != nil || code != http.StatusCreated {
					failed.Add(1)
				}
			}
		}()
	}
	bwg.Wait()
	bulk := 12000 / time.Since(bulkStart).Seconds()
	b.ReportMetric(rate, "ports/s")
	b.ReportMetric(float64(percentile(all, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(all, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(bulk, "bulk-ports/s")
	b.ReportMetric(rate/bulk, "single/bulk")
	// Raft entries a write took (group commit puts several in one).
	b.ReportMetric(float64(entries)/float64(len(all)), "entries/write")
	// Where the machine's CPU went during the single writes, in cores.
	b.ReportMetric(cpu.leader, "leader-cores")
	b.ReportMetric(cpu.followers, "followers-cores")
	b.ReportMetric(cpu.client, "client-cores")
}

// appliedIndex is the raft index m has applied.
func appliedIndex(b *testing.B, m *member) uint64 {
	var doc clusterDoc
	if code, err := call("GET", m.api, "/v2.0/cluster", nil, &doc); err != nil || code != http.StatusOK {
		b.Fatalf("GET /v2.0/cluster: %d %v", code, err)
	}
	return doc.Cluster.AppliedIndex
}

// cpuTimes is the CPU (user and system) the leader, the followers and
// this process (the load generator) have used.
type cpuTimes struct{ leader, followers, client float64 }

// cpuOf reads the CPU each part has used so far, in seconds.
func cpuOf(c *testCluster, leader *member) cpuTimes {
	var t cpuTimes
	for _, m := range c.members {
		s := procCPU(m.cmd.Process.Pid)
		if m == leader {
			t.leader += s
		} else {
			t.followers += s
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		t.client = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	return t
}

// since is the CPU used from t0 to t over elapsed, in cores.
func (t cpuTimes) since(t0 cpuTimes, elapsed time.Duration) cpuTimes {
	s := elapsed.Seconds()
	return cpuTimes{(t.leader - t0.leader) / s, (t.followers - t0.followers) / s, (t.client - t0.client) / s}
}

// procCPU is a process' user and system CPU in seconds (/proc/PID/stat;
// 0 when unreadable).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command's closing parenthesis; utime and
	// stime are the 14th and 15th of the line, in clock ticks.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ
}

// debugAddrOf is a member's --debug-addr.
func debugAddrOf(m *member) string {
	for i, a := range m.args {
		if a == "--debug-addr" && i+1 < len(m.args) {
			return m.args[i+1]
		}
	}
	return ""
}

// profileTo writes a CPU profile of m over secs seconds to path.
func profileTo(b *testing.B, m *member, secs, path string) {
	resp, err := http.Get("http://" + debugAddrOf(m) + "/debug/pprof/profile?seconds=" + secs)
	if err != nil {
		b.Log(err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		b.Log(err)
		return
	}
	_, _ = io.Copy(f, resp.Body)
	_ = f.Close()
}
