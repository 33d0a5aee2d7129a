// Package bench holds Wyvern's side-by-side benchmarks against its peers,
// on real Open vSwitch in network namespaces, run in one process so that
// both sides see the same machine at the same time.
package bench

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/daemontest"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

var wyvernd string // built once by TestMain

func TestMain(m *testing.M) { daemontest.Main(m, "../cmd/wyvernd", &wyvernd) }

// wyvernLab is a wyvernd on each hypervisor of an underlay, one cluster.
type wyvernLab struct {
	t      testing.TB
	u      *ovstest.Underlay
	hvs    []*ovstest.OVS
	apis   []string
	client *http.Client
}

// newWyvernLab starts a wyvernd on each hypervisor, one cluster; the
// first voters of them are raft voters, the others non-voters.
func newWyvernLab(t testing.TB, u *ovstest.Underlay, hvs []*ovstest.OVS, voters int) *wyvernLab {
	t.Helper()
	l := &wyvernLab{t: t, u: u, hvs: hvs,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: hvs[0].NS.DialContext}}}
	dir := t.TempDir()
	for i, o := range hvs {
		// Raft and the API on the management network, tunnels on the
		// underlay: see BenchmarkPortUp.
		mgmt := u.AddManagement(o, i+1)
		api := mgmt + ":9696"
		args := []string{"--node-id", fmt.Sprintf("hv%d", i+1), "--data-dir", filepath.Join(dir, fmt.Sprint(i+1)),
			"--raft-addr", mgmt + ":7946", "--api-addr", api, "--openflow-addr", "tcp:127.0.0.1:6653",
			"--ovsdb", o.DB(), "--encap-ip", u.IP(i + 1), "--datapath-type", "netdev", "--log-level", benchLogLevel()}
		if i > 0 {
			args = append(args, "--join", "http://"+l.apis[0], "--voter", strconv.FormatBool(i < voters))
		}
		// ip netns exec replaces itself: the pid is wyvernd's own.
		startProcess(t, fmt.Sprintf("wyvernd hv%d", i+1), "", nil, append([]string{"ip", "netns", "exec", o.NS.Name, wyvernd}, args...)...)
		l.apis = append(l.apis, api)
		ovstest.Eventually(t, 30*time.Second, fmt.Sprintf("wyvernd hv%d healthy", i+1), func() bool {
			code, _ := l.call("GET", i, "/healthz", nil, nil)
			return code == http.StatusOK
		})
	}
	ovstest.Eventually(t, 30*time.Second, "every chassis connected", func() bool {
		var out struct {
			Chassis []struct {
				Connected bool `json:"connected"`
			} `json:"chassis"`
		}
		if code, _ := l.call("GET", 0, "/v2.0/chassis", nil, &out); code != http.StatusOK {
			return false
		}
		n := 0
		for _, c := range out.Chassis {
			if c.Connected {
				n++
			}
		}
		return n == len(hvs)
	})
	return l
}

// call does one API request on hypervisor i's wyvernd.
func (l *wyvernLab) call(method string, i int, path string, body, out any) (int, error) {
	return daemontest.Call(l.client, method, l.apis[i], path, body, out)
}

func (l *wyvernLab) create(path string, body map[string]any) map[string]any {
	l.t.Helper()
	var out map[string]any
	code, err := l.call("POST", 0, path, body, &out)
	if err != nil || code != http.StatusCreated {
		l.t.Fatalf("POST %s: %d %v %v", path, code, err, out)
	}
	for _, v := range out {
		return v.(map[string]any)
	}
	return nil
}

// appliedIndex is hypervisor i's FSM index, from /v2.0/cluster.
func (l *wyvernLab) appliedIndex(i int) uint64 {
	var out struct {
		Cluster struct {
			AppliedIndex uint64 `json:"applied_index"`
			Leader       string `json:"leader"`
		} `json:"cluster"`
	}
	if _, err := l.call("GET", i, "/v2.0/cluster", nil, &out); err != nil {
		l.t.Fatal(err)
	}
	return out.Cluster.AppliedIndex
}

func (l *wyvernLab) leader() string {
	var out struct {
		Cluster struct {
			Leader string `json:"leader"`
		} `json:"cluster"`
	}
	_, _ = l.call("GET", 0, "/v2.0/cluster", nil, &out)
	return out.Cluster.Leader
}

// flowCount is the number of flows on hypervisor i's br-int.
func flowCount(t testing.TB, o *ovstest.OVS) int {
	lines, err := o.DumpFlowsErr("br-int")
	if err != nil {
		t.Fatal(err)
	}
	return len(lines)
}

// pinger pings an address from a VM every 2 ms with timestamps.
type pinger struct {
	cmd   *exec.Cmd
	first chan string // the first reply line
}

func startPing(t testing.TB, vm *ovstest.VM, ip string) *pinger {
	t.Helper()
	cmd := vm.Command("ping", "-D", "-n", "-i", "0.002", "-W", "1", ip)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &pinger{cmd: cmd, first: make(chan string, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if line := sc.Text(); !sent && strings.Contains(line, "bytes from") {
				p.first <- line
				sent = true
			}
		}
	}()
	return p
}

var pingStamp = regexp.MustCompile(`^\[(\d+)\.(\d+)\] .*bytes from`)

// firstReply waits for the first echo reply and returns when it came, as
// ping stamped it.
func (p *pinger) firstReply(t testing.TB, timeout time.Duration) time.Time {
	t.Helper()
	var line string
	select {
	case line = <-p.first:
	case <-time.After(timeout):
		t.Fatalf("no echo reply within %s", timeout)
	}
	m := pingStamp.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("ping said %q", line)
	}
	sec, _ := strconv.ParseInt(m[1], 10, 64)
	frac := (m[2] + "000000000")[:9]
	nsec, _ := strconv.ParseInt(frac, 10, 64)
	return time.Unix(sec, nsec)
}

func (p *pinger) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	_ = p.cmd.Wait()
}

// bindToReply is one pair: VM a (hv1) pings b's address every 2 ms while
// b's port exists but is not plugged; the time is from just before b's
// tap is added to br-int on hv2 to a's first echo reply.
func bindToReply(t testing.TB, a, b *ovstest.VM, portB string) time.Duration {
	t.Helper()
	p := startPing(t, a, strings.Split(b.IP, "/")[0])
	defer p.stop()
	time.Sleep(200 * time.Millisecond) // pinging, and a's ARP for b settled
	start := time.Now()
	b.Plug("br-int", portB)
	plugged := time.Now()
	first := p.firstReply(t, 10*time.Second)
	if os.Getenv("WYVERN_BENCH_LOG") != "" {
		t.Logf("plug %s at %s, plugged (ofport read) %s, first reply %s", portB, start.UTC().Format("15:04:05.000000"),
			plugged.UTC().Format("15:04:05.000000"), first.UTC().Format("15:04:05.000000"))
	}
	return first.Sub(start)
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkPortUp measures bind → reachable, on Wyvern and on OVN 23.03,
// each on a lab of two hypervisors of its own (real OVS, userspace
// datapath, in namespaces), pairs interleaved so that both see the same
// machine: VM a already pings VM b's address every 2 ms, b's port exists,
// and b is plugged on the other hypervisor (pairs alternate: b on hv2,
// then on hv1); the time is from just before the add-port to a's first
// echo reply. Reported: the median of each, their
// ratio, and the flows on each chassis' br-int at the end. At least 10
// pairs are measured whatever b.N is.
//
// Both control planes cross the same management network, a Linux bridge
// beside the tunnel underlay (ovstest.Underlay.AddManagement): Wyvern's
// raft and API, and OVN's southbound, served on hypervisor 1 as a central
// node would be. Neither crosses br-phy, whose userspace ovs-vswitchd
// stops forwarding while it adds the very port being measured. (OVN's
// controllers reached a southbound on a unix socket before: a control
// plane with no network at all, which no two-host cloud has.)
//
// Each side has one control point: OVN's standalone southbound on hv1,
// and Wyvern's one raft voter, hv1 (hv2 a non-voter, as most hypervisors
// of a cloud are). A write counts once hv1 has it.
func BenchmarkPortUp(b *testing.B) { benchPortUp(b, 1, newOVNLab, "OVN 23.03") }

// BenchmarkPortUpClusteredOVN is BenchmarkPortUp with both control
// planes replicated on the two hosts, so that either survives the loss of
// one: OVN's southbound a raft cluster with a member on each hypervisor,
// Wyvern's two hypervisors both raft voters. A write counts once both
// have it on disk.
func BenchmarkPortUpClusteredOVN(b *testing.B) {
	benchPortUp(b, 2, newClusteredOVNLab, "OVN 23.03 (clustered southbound)")
}

func benchPortUp(b *testing.B, voters int, newPeer func(testing.TB, *ovstest.Underlay, []*ovstest.OVS) *ovnLab, peer string) {
	ovstest.Require(b)
	pairs := max(b.N, 10)

	uw := ovstest.NewUnderlay(b)
	wHVs := []*ovstest.OVS{uw.AddHypervisor(1), uw.AddHypervisor(2)}
	w := newWyvernLab(b, uw, wHVs, voters)
	wNet := w.create("/v2.0/networks", map[string]any{"network": map[string]any{"name": "bench"}})
	w.create("/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": wNet["id"], "cidr": "10.0.0.0/24"}})
	wPort := func(ip string) (id, mac string) {
		p := w.create("/v2.0/ports", map[string]any{"port": map[string]any{"network_id": wNet["id"],
			"fixed_ips": []map[string]string{{"ip_address": ip}}}})
		return p["id"].(string), p["mac_address"].(string)
	}
	// A pinging VM on each hypervisor: pairs alternate direction, so half
	// plug b on hv1 — raft's leader, OVN's central — and half on hv2.
	var wA, oA [2]*ovstest.VM
	for h := range 2 {
		ip := fmt.Sprintf("10.0.0.%d", 2+h)
		id, mac := wPort(ip)
		wA[h] = wHVs[h].NewVM(mac, ip+"/24")
		wA[h].Plug("br-int", id)
	}

	uo := ovstest.NewUnderlay(b)
	oHVs := []*ovstest.OVS{uo.AddHypervisor(1), uo.AddHypervisor(2)}
	o := newPeer(b, uo, oHVs)
	for h := range 2 {
		ip, mac, name := fmt.Sprintf("10.0.0.%d", 2+h), fmt.Sprintf("0a:00:00:00:00:%02x", 2+h), fmt.Sprintf("a%d", h)
		o.switchPort("ls0", name, mac, ip)
		oA[h] = oHVs[h].NewVM(mac, ip+"/24")
		oA[h].Plug("br-int", name)
	}

	var wTimes, oTimes [2][]time.Duration // by the hypervisor b is plugged on
	var entries []uint64
	b.ResetTimer()
	for i := range pairs {
		ip := fmt.Sprintf("10.0.0.%d", 10+i)
		at := 1 - i%2 // b's hypervisor: hv2 first, then hv1
		// Wyvern: the port exists; plug its VM.
		id, mac := wPort(ip)
		vm := wHVs[at].NewVM(mac, ip+"/24")
		before := w.appliedIndex(1)
		wTimes[at] = append(wTimes[at], bindToReply(b, wA[1-at], vm, id))
		ovstest.Eventually(b, 10*time.Second, "b ACTIVE", func() bool {
			var out struct {
				Port struct {
					Status string `json:"status"`
				} `json:"port"`
			}
			_, _ = w.call("GET", 1, "/v2.0/ports/"+id, nil, &out)
			return out.Port.Status == "ACTIVE"
		})
		entries = append(entries, w.appliedIndex(1)-before)
		// OVN: the same.
		name := fmt.Sprintf("b%d", i)
		omac := fmt.Sprintf("0a:00:00:00:01:%02x", i)
		o.switchPort("ls0", name, omac, ip)
		ovm := oHVs[at].NewVM(omac, ip+"/24")
		oTimes[at] = append(oTimes[at], bindToReply(b, oA[1-at], ovm, name))
	}
	b.StopTimer()
	wAll, oAll := append(append([]time.Duration{}, wTimes[0]...), wTimes[1]...), append(append([]time.Duration{}, oTimes[0]...), oTimes[1]...)
	wm, om := median(wAll), median(oAll)
	b.ReportMetric(float64(wm.Microseconds())/1000, "wyvern-ms")
	b.ReportMetric(float64(om.Microseconds())/1000, "ovn-ms")
	b.ReportMetric(float64(wm)/float64(om), "wyvern/ovn")
	b.Logf("bind → first echo reply, %d pairs: Wyvern median %s, %s median %s; ratio %.2f",
		pairs, wm.Round(100*time.Microsecond), peer, om.Round(100*time.Microsecond), float64(wm)/float64(om))
	for at, where := range []string{"hv1 (raft leader; OVN's southbound)", "hv2"} {
		if len(wTimes[at]) == 0 {
			continue
		}
		b.Logf("  b plugged on %s: Wyvern median %s (all %v), OVN median %s (all %v)", where,
			median(wTimes[at]).Round(100*time.Microsecond), round(wTimes[at]),
			median(oTimes[at]).Round(100*time.Microsecond), round(oTimes[at]))
	}
	b.Logf("raft entries per plugged VM (after its create; applied index on hv2): %v; leader %s", entries, w.leader())
	for i, n := range entries {
		if n != 1 {
			b.Errorf("plugging VM %d took %d raft entries, want 1 (binding and ACTIVE together)", i, n)
		}
	}
	b.Logf("flows on br-int: Wyvern hv1 %d, hv2 %d; OVN hv1 %d, hv2 %d",
		flowCount(b, wHVs[0]), flowCount(b, wHVs[1]), o.flowCount(0), o.flowCount(1))
}

func round(d []time.Duration) []time.Duration {
	out := make([]time.Duration, len(d))
	for i, x := range d {
		out[i] = x.Round(100 * time.Microsecond)
	}
	return out
}

// benchLogLevel is wyvernd's log level in the lab (WYVERN_BENCH_LOG, for
// finding where time goes; default warn).
func benchLogLevel() string {
	if l := os.Getenv("WYVERN_BENCH_LOG"); l != "" {
		return l
	}
	return "warn"
}
