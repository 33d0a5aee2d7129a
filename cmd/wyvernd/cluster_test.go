package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/daemontest"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// member is one wyvernd process of a test cluster on loopback.
type member struct {
	ns       *ovstest.NetNS // run inside this namespace (nil: the root one)
	id       string
	api      string // host:port
	args     []string
	logPath  string
	cmd      *exec.Cmd
	stopOnce sync.Once
}

type testCluster struct {
	t       testing.TB
	dir     string
	members []*member
}

func newCluster(t testing.TB) *testCluster {
	c := &testCluster{t: t, dir: t.TempDir()}
	t.Cleanup(func() {
		for _, m := range c.members {
			m.kill()
		}
		if t.Failed() {
			for _, m := range c.members {
				b, err := os.ReadFile(m.logPath)
				if err != nil {
					t.Logf("--- %s log: %v", m.id, err)
				}
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("--- %s log (tail):\n%s", m.id, b)
			}
		}
	})
	return c
}

// add starts a node, with extra flags; it joins through every node
// started before it.
func (c *testCluster) add(voter string, extra ...string) *member {
	c.t.Helper()
	id := fmt.Sprintf("n%d", len(c.members)+1)
	m := &member{id: id, api: ovstest.FreeAddr(c.t), logPath: filepath.Join(c.dir, id+".log")}
	m.args = []string{"--node-id", id, "--data-dir", filepath.Join(c.dir, id), "--raft-addr", ovstest.FreeAddr(c.t),
		"--api-addr", m.api, "--openflow-addr", "tcp:" + ovstest.FreeAddr(c.t), "--voter", voter,
		"--debug-addr", ovstest.FreeAddr(c.t)}
	var join []string
	for _, o := range c.members {
		join = append(join, "http://"+o.api)
	}
	if len(join) > 0 {
		m.args = append(m.args, "--join", strings.Join(join, ","))
	}
	m.args = append(m.args, extra...)
	c.members = append(c.members, m)
	m.start(c.t)
	return m
}

func (m *member) start(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	m.cmd = exec.Command(wyvernd, m.args...)
	if m.ns != nil {
		m.cmd = m.ns.Command(append([]string{wyvernd}, m.args...)...)
	}
	m.cmd.Stdout, m.cmd.Stderr = f, f
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m.stopOnce = sync.Once{}
	go func() { _ = m.cmd.Wait(); f.Close() }()
}

// stop sends SIGTERM and waits for the exit; kill sends SIGKILL.
func (m *member) stop() { m.signal(syscall.SIGTERM) }
func (m *member) kill() { m.signal(syscall.SIGKILL) }

func (m *member) signal(sig syscall.Signal) {
	m.stopOnce.Do(func() {
		if m.cmd == nil || m.cmd.Process == nil {
			return
		}
		_ = m.cmd.Process.Signal(sig)
		for i := 0; i < 200; i++ {
			if syscall.Kill(m.cmd.Process.Pid, 0) != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = m.cmd.Process.Kill()
	})
}

var client = &http.Client{Timeout: 5 * time.Second}

// call does one API request and decodes the answer into out (if not nil).
func call(method, addr, path string, body any, out any) (int, error) {
	return daemontest.Call(client, method, addr, path, body, out)
}

func waitHealthy(t testing.TB, ms ...*member) {
	t.Helper()
	for _, m := range ms {
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, _ := call("GET", m.api, "/healthz", nil, nil)
			if code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not healthy after 30 s", m.id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

type clusterDoc struct {
	Cluster struct {
		Leader  string `json:"leader"`
		Members []struct {
			ID          string `json:"id"`
			Suffrage    string `json:"suffrage"`
			Unreachable bool   `json:"unreachable"`
		} `json:"members"`
		AppliedIndex uint64 `json:"applied_index"`
	} `json:"cluster"`
}

type portDoc struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	MACAddress string `json:"mac_address"`
	FixedIPs   []struct {
		IPAddress string `json:"ip_address"`
	} `json:"fixed_ips"`
}

func portsOn(t testing.TB, m *member) ([]portDoc, error) {
	var out struct {
		Ports []portDoc `json:"ports"`
	}
	code, err := call("GET", m.api, "/v2.0/ports", nil, &out)
	if err == nil && code != 200 {
		err = fmt.Errorf("GET ports on %s: %d", m.id, code)
	}
	return out.Ports, err
}

// stateOf is a node's whole topology as JSON, for comparisons.
func stateOf(t testing.TB, m *member) string {
	var b strings.Builder
	for _, coll := range []string{"networks", "subnets", "ports", "routers"} {
		var out map[string]any
		if code, err := call("GET", m.api, "/v2.0/"+coll, nil, &out); err != nil || code != 200 {
			return fmt.Sprintf("unreadable: %v %d", err, code)
		}
		j, _ := json.Marshal(out)
		b.Write(j)
	}
	return b.String()
}

func mustCreate(t testing.TB, addr, path string, body any) map[string]any {
	t.Helper()
	var out map[string]any
	code, err := call("POST", addr, path, body, &out)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("POST %s: %d %v %v", path, code, err, out)
	}
	return out
}

// TestClusterFormsAndRestarts: three nodes form a cluster through --join, a
// fourth joins as a non-voter under --voter=auto; then every node stops and
// starts again and every node holds the same state as before.
func TestClusterFormsAndRestarts(t *testing.T) {
	c := newCluster(t)
	for i := 0; i < 4; i++ {
		c.add("auto")
		waitHealthy(t, c.members[i])
	}
	var doc clusterDoc
	if _, err := call("GET", c.members[3].api, "/v2.0/cluster", nil, &doc); err != nil {
		t.Fatal(err)
	}
	suffrage := map[string]string{}
	for _, m := range doc.Cluster.Members {
		suffrage[m.ID] = m.Suffrage
	}
	want := map[string]string{"n1": "voter", "n2": "voter", "n3": "voter", "n4": "nonvoter"}
	if fmt.Sprint(suffrage) != fmt.Sprint(want) || doc.Cluster.Leader == "" {
		t.Fatalf("cluster %+v, want %v with a leader", doc.Cluster, want)
	}

	net := mustCreate(t, c.members[1].api, "/v2.0/networks", map[string]any{"network": map[string]any{"name": "blue"}})["network"].(map[string]any)
	mustCreate(t, c.members[2].api, "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net["id"], "cidr": "10.0.0.0/24"}})
	var ports []map[string]any
	for i := 0; i < 20; i++ {
		ports = append(ports, map[string]any{"network_id": net["id"], "name": fmt.Sprintf("p%d", i)})
	}
	mustCreate(t, c.members[3].api, "/v2.0/ports", map[string]any{"ports": ports})
	before := converged(t, c.members)

	for _, m := range c.members {
		m.stop()
	}
	for _, m := range c.members {
		m.start(t)
	}
	waitHealthy(t, c.members...)
	after := converged(t, c.members)
	if before != after {
		t.Fatalf("state changed across a full restart:\nbefore %s\nafter  %s", before, after)
	}
	// And the cluster still takes writes.
	mustCreate(t, c.members[0].api, "/v2.0/networks", map[string]any{"network": map[string]any{"name": "after-restart"}})

	// Remove the non-voter through a follower (forwarded to the leader).
	via := c.members[1]
	if leaderOf(t, c) == via {
		via = c.members[2]
	}
	if code, err := call("DELETE", via.api, "/v2.0/cluster/members/n4", nil, nil); err != nil || code != http.StatusNoContent {
		t.Fatalf("remove n4: %d %v", code, err)
	}
	// Again: n4 is no member any more, through a follower and the leader.
	for _, m := range []*member{via, leaderOf(t, c)} {
		var e struct {
			NeutronError struct{ Type string } `json:"NeutronError"`
		}
		if code, err := call("DELETE", m.api, "/v2.0/cluster/members/n4", nil, &e); err != nil || code != http.StatusNotFound || e.NeutronError.Type != "MemberNotFound" {
			t.Fatalf("remove n4 again via %s: %d %+v %v, want 404 MemberNotFound", m.id, code, e, err)
		}
	}
	c.members[3].stop()
	if _, err := call("GET", c.members[0].api, "/v2.0/cluster", nil, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cluster.Members) != 3 {
		t.Fatalf("after removing n4 the cluster lists %+v", doc.Cluster.Members)
	}
}

// converged waits until every node reports the same topology and returns it.
func converged(t testing.TB, ms []*member) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		first := stateOf(t, ms[0])
		same := true
		for _, m := range ms[1:] {
			if stateOf(t, m) != first {
				same = false
				break
			}
		}
		if same && !strings.HasPrefix(first, "unreadable") {
			return first
		}
		if time.Now().After(deadline) {
			for _, m := range ms {
				t.Logf("%s: %.300s", m.id, stateOf(t, m))
			}
			t.Fatal("nodes did not converge on one state")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func leaderOf(t testing.TB, c *testCluster) *member {
	t.Helper()
	for i := 0; i < 100; i++ {
		for _, m := range c.members {
			var doc clusterDoc
			if _, err := call("GET", m.api, "/v2.0/cluster", nil, &doc); err == nil && doc.Cluster.Leader != "" {
				for _, x := range c.members {
					if x.id == doc.Cluster.Leader {
						return x
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no leader")
	return nil
}

// TestAcknowledgedWritesSurviveLeaderKill is a Jepsen-style check with real
// processes: 8 clients create 1000 ports through all three nodes; a third
// of the way in the leader is SIGKILLed, and later restarted. Afterwards
// every port that got a 2xx exists on every node, no IP or MAC was handed
// out twice, and writes were accepted again within 10 s of the kill.
func TestAcknowledgedWritesSurviveLeaderKill(t *testing.T) {
	c := newCluster(t)
	for i := 0; i < 3; i++ {
		c.add("auto")
		waitHealthy(t, c.members[i])
	}
	net := mustCreate(t, c.members[0].api, "/v2.0/networks", map[string]any{"network": map[string]any{"name": "jepsen"}})["network"].(map[string]any)
	mustCreate(t, c.members[0].api, "/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": net["id"], "cidr": "10.8.0.0/21"}})

	const clients, total = 8, 1000
	var mu sync.Mutex
	acked := map[string]portDoc{}
	var killedAt, firstAfter time.Time
	var wg sync.WaitGroup
	next := make(chan int, total)
	for i := 0; i < total; i++ {
		next <- i
	}
	close(next)
	for cl := 0; cl < clients; cl++ {
		wg.Add(1)
		go func(cl int) {
			defer wg.Done()
			n := cl
			for i := range next {
				id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
				body := map[string]any{"port": map[string]any{"id": id, "network_id": net["id"], "name": fmt.Sprintf("p%d", i)}}
				for attempt := 0; attempt < 200; attempt++ {
					m := c.members[n%len(c.members)]
					n++
					var out struct {
						Port         portDoc        `json:"port"`
						NeutronError map[string]any `json:"NeutronError"`
					}
					sent := time.Now()
					code, err := call("POST", m.api, "/v2.0/ports", body, &out)
					if err == nil && code == http.StatusCreated {
						mu.Lock()
						acked[id] = out.Port
						// Recovery counts from a write sent after the kill.
						if !killedAt.IsZero() && sent.After(killedAt) && firstAfter.IsZero() {
							firstAfter = time.Now()
						}
						mu.Unlock()
						break
					}
					if code == http.StatusConflict && out.NeutronError["type"] == "PortExists" {
						break // an earlier attempt committed without telling us
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}(cl)
	}

	// Kill the leader a third of the way in.
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= total/3 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	leader := leaderOf(t, c)
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	leader.kill()
	t.Logf("SIGKILLed leader %s after %d acknowledged ports", leader.id, total/3)
	time.Sleep(3 * time.Second)
	leader.start(t)
	wg.Wait()

	mu.Lock()
	recovery := firstAfter.Sub(killedAt)
	nAcked := len(acked)
	mu.Unlock()
	if firstAfter.IsZero() {
		t.Fatal("no write was acknowledged after the kill")
	}
	t.Logf("writes accepted again %s after the kill; %d ports acknowledged", recovery.Round(time.Millisecond), nAcked)
	if recovery > 10*time.Second {
		t.Errorf("writes resumed %s after the kill, want within 10 s", recovery)
	}

	waitHealthy(t, c.members...)
	converged(t, c.members)
	for _, m := range c.members {
		ports, err := portsOn(t, m)
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]portDoc{}
		ips, macs := map[string]string{}, map[string]string{}
		for _, p := range ports {
			have[p.ID] = p
			if o, dup := macs[p.MACAddress]; dup {
				t.Errorf("%s: MAC %s on ports %s and %s", m.id, p.MACAddress, o, p.ID)
			}
			macs[p.MACAddress] = p.ID
			for _, ip := range p.FixedIPs {
				if o, dup := ips[ip.IPAddress]; dup {
					t.Errorf("%s: IP %s on ports %s and %s", m.id, ip.IPAddress, o, p.ID)
				}
				ips[ip.IPAddress] = p.ID
			}
		}
		var missing []string
		for id, p := range acked {
			got, ok := have[id]
			if !ok {
				missing = append(missing, id)
				continue
			}
			if got.MACAddress != p.MACAddress || fmt.Sprint(got.FixedIPs) != fmt.Sprint(p.FixedIPs) {
				t.Errorf("%s: port %s is %v now, was acknowledged as %v", m.id, id, got, p)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%s lost %d acknowledged ports, e.g. %v", m.id, len(missing), missing[:min(5, len(missing))])
		}
		if len(ports) < total {
			t.Errorf("%s holds %d ports, want all %d (every client retried until success)", m.id, len(ports), total)
		}
	}
}
