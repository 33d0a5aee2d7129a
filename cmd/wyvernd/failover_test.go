package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestLeaderKillWriteUnavailability: four clients write ports as fast as
// they are acknowledged, each trying the next member when one fails,
// while the leader is SIGKILLed three times (restarted in between). The
// longest time between two acknowledged writes around each kill is the
// write unavailability; it must stay under a second, and every
// acknowledged port must be there afterwards on every member.
func TestLeaderKillWriteUnavailability(t *testing.T) {
	c := newCluster(t)
	for i := 0; i < 3; i++ {
		c.add("auto")
		waitHealthy(t, c.members[i])
	}
	net := mustCreate(t, c.members[0].api, "/v2.0/networks", map[string]any{"network": map[string]any{"name": "failover"}})["network"].(map[string]any)
	mustCreate(t, c.members[0].api, "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net["id"], "cidr": "10.16.0.0/16"}})

	const writers, kills = 4, 3
	var mu sync.Mutex
	var acks []time.Time
	acked := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			n := w
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("00000000-0000-4000-8%03d-%012d", w, i)
				body := map[string]any{"port": map[string]any{"id": id, "network_id": net["id"]}}
				for {
					select {
					case <-stop:
						return
					default:
					}
					m := c.members[n%len(c.members)]
					var out struct {
						NeutronError map[string]any `json:"NeutronError"`
					}
					code, err := call("POST", m.api, "/v2.0/ports", body, &out)
					if err == nil && (code == http.StatusCreated || code == http.StatusConflict && out.NeutronError["type"] == "PortExists") {
						mu.Lock()
						acks, acked[id] = append(acks, time.Now()), true
						mu.Unlock()
						break
					}
					n++ // that member could not: try the next at once
					time.Sleep(5 * time.Millisecond)
				}
			}
		}(w)
	}
	var gaps []time.Duration
	for k := 0; k < kills; k++ {
		time.Sleep(1500 * time.Millisecond)
		leader := leaderOf(t, c)
		killed := time.Now()
		leader.kill()
		time.Sleep(2500 * time.Millisecond)
		// The longest silence between acknowledgements from a second
		// before the kill.
		mu.Lock()
		var longest time.Duration
		prev := killed.Add(-time.Second)
		for _, a := range acks {
			if a.Before(prev) {
				continue
			}
			if d := a.Sub(prev); d > longest {
				longest = d
			}
			prev = a
		}
		mu.Unlock()
		gaps = append(gaps, longest)
		t.Logf("kill %d (leader %s): writes stopped for at most %s; %s", k+1, leader.id, longest.Round(time.Millisecond), electionTimeline(c, leader, killed))
		leader.start(t)
		waitHealthy(t, leader)
	}
	close(stop)
	wg.Wait()
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	worst := gaps[len(gaps)-1]
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	t.Logf("longest write unavailability over %d leader kills: %s; %d ports acknowledged", kills, worst.Round(time.Millisecond), n)
	if worst >= time.Second {
		t.Errorf("writes stopped for %s after a leader kill, want under 1 s", worst.Round(time.Millisecond))
	}
	converged(t, c.members)
	for _, m := range c.members {
		ports, err := portsOn(t, m)
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, p := range ports {
			have[p.ID] = true
		}
		for id := range acked {
			if !have[id] {
				t.Errorf("%s lost acknowledged port %s", m.id, id)
			}
		}
	}
}

// electionTimeline is when, after the kill, the survivors' raft said it
// noticed (heartbeat timeout), asked for votes, and one won: where a
// failover's time goes.
func electionTimeline(c *testCluster, dead *member, killed time.Time) string {
	var events []string
	for _, m := range c.members {
		if m == dead {
			continue
		}
		b, err := os.ReadFile(m.logPath)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			var what string
			switch {
			case strings.Contains(line, "standing in the order"):
				// Its place, and how far its log and the others' go.
				what = "asked the others' logs"
				if i := strings.Index(line, "{"); i >= 0 {
					var f map[string]any
					if json.Unmarshal([]byte(line[i:]), &f) == nil {
						what = fmt.Sprintf("place %v (own log to %v", f["rank"], f["index"])
						for k, v := range f {
							if s, ok := v.(string); ok && strings.HasPrefix(s, "term") || s == "no answer" {
								what += fmt.Sprintf(", %s's %s", k, s)
							}
						}
						what += ")"
					}
				}
			case strings.Contains(line, "electing at once"):
				what = "shortened its timeouts"
			case strings.Contains(line, "heartbeat timeout reached"):
				what = "timeout"
			case strings.Contains(line, "entering candidate state"):
				what = "candidate"
			case strings.Contains(line, "pre-vote"):
				what = "pre-vote"
			case strings.Contains(line, "election won"):
				what = "won"
			case strings.Contains(line, "rejecting"):
				what = "rejected"
			default:
				continue
			}
			ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", strings.Fields(line)[0])
			if err != nil || ts.Before(killed) || ts.After(killed.Add(3*time.Second)) {
				continue
			}
			events = append(events, fmt.Sprintf("%s %s +%dms", m.id, what, ts.Sub(killed).Milliseconds()))
		}
	}
	sort.Slice(events, func(i, j int) bool {
		return atoiSuffix(events[i]) < atoiSuffix(events[j])
	})
	return strings.Join(events, ", ")
}

func atoiSuffix(e string) int {
	i := strings.LastIndex(e, "+")
	n, _ := strconv.Atoi(strings.TrimSuffix(e[i+1:], "ms"))
	return n
}

// TestBusyMemberKeepsItsPlace: the leader tells a busy member from a gone
// one. A follower frozen with SIGSTOP fails raft's heartbeats but its
// kernel still accepts connections: it is not marked unreachable (so it
// keeps its bridges) for the first seconds, only once it has failed for
// several, and it is reachable again soon after SIGCONT. Killed, it is
// marked within a second.
func TestBusyMemberKeepsItsPlace(t *testing.T) {
	c := newCluster(t)
	for i := 0; i < 3; i++ {
		c.add("auto")
		waitHealthy(t, c.members[i])
	}
	leader := leaderOf(t, c)
	var f *member
	for _, m := range c.members {
		if m != leader {
			f = m
			break
		}
	}
	unreachable := func() bool {
		var doc clusterDoc
		if _, err := call("GET", leader.api, "/v2.0/cluster", nil, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Cluster.Leader != leader.id {
			t.Fatalf("the leader changed to %q", doc.Cluster.Leader)
		}
		for _, m := range doc.Cluster.Members {
			if m.ID == f.id {
				return m.Unreachable
			}
		}
		t.Fatalf("%s is not a member", f.id)
		return false
	}
	until := func(what string, within time.Duration, cond func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !cond() {
			if time.Since(start) > within {
				t.Fatalf("%s: not within %s", what, within)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(start)
	}

	if err := f.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	t.Cleanup(func() { _ = f.cmd.Process.Signal(syscall.SIGCONT) })
	// Its heartbeats fail after raft's RPC timeout (1 s); a gone node is
	// marked 250 ms later. A frozen one is not, for seconds.
	for time.Since(stopped) < 3*time.Second {
		if unreachable() {
			t.Fatalf("%s marked unreachable %s after SIGSTOP: a busy member lost its place", f.id, time.Since(stopped).Round(time.Millisecond))
		}
		time.Sleep(50 * time.Millisecond)
	}
	until("a frozen member marked unreachable in the end", 8*time.Second, unreachable)
	t.Logf("%s, frozen, marked unreachable %s after SIGSTOP", f.id, time.Since(stopped).Round(time.Millisecond))

	if err := f.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	took := until("reachable again after SIGCONT", 10*time.Second, func() bool { return !unreachable() })
	t.Logf("%s reachable again %s after SIGCONT", f.id, took.Round(time.Millisecond))

	// Let raft settle its heartbeats to the thawed member, then kill it:
	// nothing accepts its connections any more, and it is marked fast.
	time.Sleep(2 * time.Second)
	killed := time.Now()
	f.kill()
	until("a killed member marked unreachable", 2*time.Second, unreachable)
	t.Logf("%s, killed, marked unreachable %s after SIGKILL", f.id, time.Since(killed).Round(time.Millisecond))
}
