package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/internal/tlsconfig/tlstest"
)

// TestClusterOverTLS runs three hypervisors whose wyvernds share one CA:
// the API over HTTPS, raft and the internal channel over mutual TLS, each
// bridge over ssl:. VMs ping across it. openssl s_client shows the API and
// raft really speak TLS (and raft wants a client certificate);
// ovs-vsctl get-ssl shows each OVS holds the node's files. A node whose
// certificate comes from a foreign CA cannot join.
func TestClusterOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "cloud")
	var ips []string
	for i := 1; i <= 4; i++ {
		ips = append(ips, fmt.Sprintf("172.31.0.%d", i)) // ovstest.Underlay.IP(i)
	}
	files := ca.Issue(t, "member", ips...)
	tb := newTestbed(t, 3, "--tls-cert", files.Cert, "--tls-key", files.Key, "--tls-ca", files.CA,
		"--openflow-addr", "ssl:127.0.0.1:6653")
	hv1, hv2, hv3 := tb.hvs[0], tb.hvs[1], tb.hvs[2]
	a := tb.network("A", "vxlan", 100, "10.0.0.0/24")
	v1, p1 := tb.vm(hv1, a, "")
	v2, p2 := tb.vm(hv2, a, "")
	v3, p3 := tb.vm(hv3, a, "")
	tb.waitActive(p1, p2, p3)
	for _, pair := range [][2]int{{0, 1}, {1, 2}, {2, 0}} {
		vms := []string{ipOf(v1), ipOf(v2), ipOf(v3)}
		from := []*ovstest.VM{v1, v2, v3}[pair[0]]
		if err := ping(from, vms[pair[1]]); err != nil {
			t.Errorf("ping %s -> %s over the TLS cluster: %v", vms[pair[0]], vms[pair[1]], err)
		}
	}

	for _, h := range tb.hvs {
		got := strings.TrimSpace(h.ovs.Vsctl("get-ssl"))
		if !strings.Contains(got, "Private key: "+files.Key) || !strings.Contains(got, "Certificate: "+files.Cert) ||
			!strings.Contains(got, "CA Certificate: "+files.CA) {
			t.Errorf("hv%d get-ssl:\n%s", h.n, got)
		}
		if ctl := strings.TrimSpace(h.ovs.Vsctl("get-controller", "br-int")); ctl != "ssl:127.0.0.1:6653" {
			t.Errorf("hv%d controller %q, want ssl:127.0.0.1:6653", h.n, ctl)
		}
	}

	sClient := func(addr string, args ...string) string {
		cmd := hv1.ovs.NS.Command(append([]string{"openssl", "s_client", "-connect", addr, "-CAfile", files.CA, "-verify_return_error"}, args...)...)
		cmd.Stdin = strings.NewReader("")
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	api := sClient(hv1.api)
	if !strings.Contains(api, "Verify return code: 0 (ok)") || !strings.Contains(api, "CN = member") {
		t.Errorf("openssl s_client to the API:\n%s", api)
	}
	raftAddr := ips[0] + ":7946"
	// Raft wants a certificate: without one, the server ends the session.
	bare := hv1.ovs.NS.Command("sh", "-c", "sleep 1 | openssl s_client -connect "+raftAddr+" -CAfile "+files.CA)
	out, _ := bare.CombinedOutput()
	if !strings.Contains(string(out), "certificate required") && !strings.Contains(string(out), "alert") {
		t.Errorf("raft took a TLS client without a certificate:\n%s", out)
	}
	if with := sClient(raftAddr, "-cert", files.Cert, "-key", files.Key); !strings.Contains(with, "Verify return code: 0 (ok)") {
		t.Errorf("openssl s_client to raft with a member's certificate:\n%s", with)
	}

	// The doors this cluster leaves open, and only those, are named at
	// start: --auth none on a non-loopback API.
	log1 := readFile(t, hv1.m.logPath)
	if !strings.Contains(log1, "--auth none: every API request is an admin's") {
		t.Error("no warning for --auth none on a non-loopback API")
	}
	if strings.Contains(log1, "accept any peer") || strings.Contains(log1, "plain tcp") {
		t.Error("a warning for a door TLS closes")
	}

	// A node with a certificate from a foreign CA. It trusts ours, so it
	// finds the cluster through the API; the members refuse it.
	foreign := tlstest.NewCA(t, dir, "foreign").Issue(t, "intruder", ips...)
	intruder := &member{ns: hv1.ovs.NS, id: "intruder", api: ips[0] + ":9697", logPath: filepath.Join(tb.c.dir, "intruder.log")}
	intruder.args = []string{"--node-id", "intruder", "--data-dir", filepath.Join(dir, "intruder"),
		"--raft-addr", ips[0] + ":7947", "--api-addr", intruder.api, "--openflow-addr", "tcp:127.0.0.1:6654",
		"--tls-cert", foreign.Cert, "--tls-key", foreign.Key, "--tls-ca", files.CA, "--join", "https://" + hv1.api}
	intruder.start(t)
	t.Cleanup(intruder.kill)
	time.Sleep(3 * time.Second)
	var doc struct {
		Cluster struct {
			Members []struct{ ID string } `json:"members"`
		} `json:"cluster"`
	}
	if _, err := tb.call("GET", "/v2.0/cluster", nil, &doc); err != nil || len(doc.Cluster.Members) != 3 {
		t.Errorf("cluster after the intruder tried: %+v %v", doc, err)
	}
	if log := readFile(t, intruder.logPath); !strings.Contains(log, "join attempt failed") || !strings.Contains(log, "certificate") {
		t.Errorf("the intruder's log does not say why it could not join:\n%s", log)
	}
	if log := readFile(t, hv1.m.logPath); !strings.Contains(log, "refused a connection on the raft address") {
		t.Errorf("hv1 did not refuse the intruder's certificate:\n%s", log)
	}
	// And straight at the internal channel, past the API, presenting the
	// foreign certificate whatever the member asks for: refused.
	cert, err := tls.LoadX509KeyPair(foreign.Cert, foreign.Key)
	if err != nil {
		t.Fatal(err)
	}
	forced, _ := files.Client() // verifies the member against our CA
	forced.Certificates = nil
	forced.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	knock := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: cluster.InternalDialer(hv1.ovs.NS.DialContext, nil, forced)}}
	if resp, err := knock.Get("http://" + raftAddr + "/internal/read-index"); err == nil {
		resp.Body.Close()
		t.Errorf("the internal channel answered a foreign certificate: %d", resp.StatusCode)
	} else {
		t.Logf("foreign certificate on the internal channel: %v", err)
	}
	mc, _ := files.Client()
	ok := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: cluster.InternalDialer(hv1.ovs.NS.DialContext, nil, mc)}}
	resp, err := ok.Get("http://" + raftAddr + "/internal/read-index")
	if err != nil {
		t.Fatalf("a member's certificate on the internal channel: %v", err)
	}
	resp.Body.Close()
}

func readFile(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
