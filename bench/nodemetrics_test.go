package bench

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nodeMetrics is what a node's Go runtime says it has allocated in all and how
// many collections it has run, and what its proposals took, from its
// metrics.
type nodeMetrics struct {
	allocated, cycles float64
	series            int // lines of samples in the scrape
	// proposals committed through this node, those that took over
	// 51.2 ms (a bucket bound of wyvern_raft_propose_seconds), and
	// whether it leads
	proposals, slowProposals float64
	leader                   bool
}

// readNodeMetrics scrapes go_memstats_alloc_bytes_total,
// go_gc_duration_seconds_count, wyvern_raft_propose_seconds and
// wyvern_raft_is_leader from a node's debug listener (zero when
// unreadable).
func readNodeMetrics(debugAddr string) nodeMetrics {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + debugAddr + "/metrics")
	if err != nil {
		return nodeMetrics{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var g nodeMetrics
	for _, line := range strings.Split(string(body), "\n") {
		if line != "" && line[0] != '#' {
			g.series++
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "go_memstats_alloc_bytes_total":
			g.allocated = v
		case "go_gc_duration_seconds_count":
			g.cycles = v
		case `wyvern_raft_propose_seconds_count{outcome="committed"}`:
			g.proposals = v
		case `wyvern_raft_propose_seconds_bucket{outcome="committed",le="0.0512"}`:
			g.slowProposals = -v // the count's rest, below
		case "wyvern_raft_is_leader":
			g.leader = v == 1
		}
	}
	g.slowProposals += g.proposals
	return g
}

// allocatedSince writes what a node allocated between the heap profile
// at base and one taken now (after a forced collection: a profile is as
// of the last one), by site, to txt and the log; false when the profile
// could not be taken.
func allocatedSince(b *testing.B, debugAddr, base, now, txt, what string) bool {
	if err := fetchTo("http://"+debugAddr+"/debug/pprof/heap?gc=1", time.Minute, now); err != nil {
		b.Logf("allocation profile: %v", err)
		return false
	}
	if top, err := exec.Command("go", "tool", "pprof", "-top", "-sample_index=alloc_space", "-nodecount=40",
		"-base", base, wyvernd, now).CombinedOutput(); err == nil {
		_ = os.WriteFile(txt, top, 0o644)
		b.Logf("%s:\n%s", what, top)
	}
	return true
}

// TestMarkWorkersReadsTheListing: the collector's share is read from its
// background mark workers' own line of a pprof -top -cum listing, not
// from the lines of their callees.
func TestMarkWorkersReadsTheListing(t *testing.T) {
	listing := `Duration: 5.02s, Total samples = 2.51s (50.02%)
      flat  flat%   sum%        cum   cum%
         0     0%     0%      1.12s 44.62%  runtime.systemstack
         0     0%     0%         1s 39.84%  runtime.gcBgMarkWorker
         0     0%     0%         1s 39.84%  runtime.gcBgMarkWorker.func2
`
	if cum, share, ok := markWorkers([]byte(listing)); !ok || cum != "1s" || share != "39.84%" {
		t.Fatalf("read %q %q %v", cum, share, ok)
	}
	if _, _, ok := markWorkers([]byte("runtime.gcBgMarkWorker.func2\n")); ok {
		t.Fatal("read a share from a listing without the workers' line")
	}
}
