package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	if out := os.Getenv("WYVERN_PROFILE"); out != "" {
		// A CPU profile of the leader under the load, from its debug listener.
		leader := leaderOf(b, c)
		go func() {
			resp, err := http.Get("http://" + debugAddrOf(leader) + "/debug/pprof/profile?seconds=3")
			if err != nil {
				b.Log(err)
				return
			}
			defer resp.Body.Close()
			f, err := os.Create(out)
			if err == nil {
				_, _ = io.Copy(f, resp.Body)
				f.Close()
			}
		}()
	}
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < b.N; i++ {
				m := c.members[(w+i)%3]
				t0 := time.Now()
				code, err := call("POST", m.api, "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": net}}, nil)
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
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d creates failed", n)
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	single := float64(len(all)) / elapsed.Seconds()
	// The bulk figure, same cluster, same run.
	leader := leaderOf(b, c)
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
	b.ReportMetric(single, "ports/s")
	b.ReportMetric(float64(percentile(all, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(all, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(bulk, "bulk-ports/s")
	b.ReportMetric(single/bulk, "single/bulk")
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
