package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/keystonetest"
	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// TestHijackIsRefused replays the hijack of issue #12: a stranger who can
// reach a node registers a chassis "evil" with its own tunnel address and
// binds the victim's port to it, so that hv1 would tunnel the victim's
// traffic to the stranger. The nodes run as in production: Keystone and a
// cluster secret. The stranger tries the public API without a token and
// with a tenant's, then the internal channel with no cluster secret, then
// with a forged proof. Each is refused; a ping running across the attack
// loses nothing; no flow on hv1 names the stranger's address. A control
// with the right secret shows the channel itself is reachable, so the
// refusals are the guard's.
func TestHijackIsRefused(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "cluster-secret")
	secret := []byte("3f0c9a5b7e2d41c8a6f19b0e5d7c2a48")
	if err := os.WriteFile(secretFile, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	ks := keystonetest.Start(t, keystonetest.Options{})
	user, password, project := ks.ServiceUser(t)
	conf := filepath.Join(dir, "wyvernd.yaml")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "keystone:\n  username: %s\n  password: %s\n  project_name: %s\n", user, password, project), 0o600); err != nil {
		t.Fatal(err)
	}
	mallory := ks.CreateProject(t, "mallory")
	ks.CreateUser(t, "mallory", "mallory-pw", mallory, "member")
	tenant, _ := ks.Token(t, "mallory", "mallory-pw", "mallory")
	// Keystone listens on the test's loopback; each hypervisor reaches it
	// at its own 127.0.0.1:5000.
	ksAddr := strings.TrimSuffix(strings.TrimPrefix(ks.URL(), "http://"), "/v3")
	tb := newTestbedWith(t, 2, testbedOptions{token: ks.AdminToken(), prepare: func(h *hypervisor) {
		h.ovs.NS.Forward(t, "127.0.0.1:5000", ksAddr)
	}}, "--cluster-secret-file", secretFile, "--auth", "keystone", "--keystone-url", "http://127.0.0.1:5000/v3", "--config", conf)
	hv1, hv2 := tb.hvs[0], tb.hvs[1]
	net1 := tb.network("A", "vxlan", 100, "10.0.0.0/24")
	victim, victimPort := tb.vm(hv1, net1, "")
	peer, peerPort := tb.vm(hv2, net1, "")
	tb.waitActive(victimPort, peerPort)
	if err := ping(victim, ipOf(peer)); err != nil {
		t.Fatal(err)
	}
	evilIP := tb.underlay.IP(9) // an underlay address no one holds

	pinger := victim.Command("ping", "-i", "0.05", "-w", "6", "-W", "1", ipOf(peer))
	var pingOut bytes.Buffer
	pinger.Stdout = &pingOut
	if err := pinger.Start(); err != nil {
		t.Fatal(err)
	}

	// 1. The public API: nothing without a token; with a tenant's, no
	// chassis, binding or membership writes.
	api := "http://" + hv1.api
	as := func(token, method, path string, body any) int {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, api+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("X-Auth-Token", token)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: hv1.ovs.NS.DialContext}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		token        string
		method, path string
		body         any
		want         int
	}{
		{"", "PUT", "/v2.0/chassis/evil", map[string]any{"chassis": map[string]any{"encap_ip": evilIP}}, http.StatusUnauthorized},
		{"", "PUT", "/v2.0/ports/" + victimPort, map[string]any{"port": map[string]any{"binding:host_id": "evil"}}, http.StatusUnauthorized},
		{"", "DELETE", "/v2.0/cluster/members/hv2", nil, http.StatusUnauthorized},
		{tenant, "PUT", "/v2.0/chassis/evil", map[string]any{"chassis": map[string]any{"encap_ip": evilIP}}, http.StatusMethodNotAllowed},
		{tenant, "POST", "/v2.0/chassis", map[string]any{"chassis": map[string]any{"name": "evil", "encap_ip": evilIP, "datapath_id": "e71"}}, http.StatusForbidden},
		{tenant, "PUT", "/v2.0/chassis/evil/bindings", map[string]any{"bindings": []any{map[string]any{"port_id": victimPort}}}, http.StatusNotFound},
		{tenant, "POST", "/v2.0/cluster/members", map[string]any{"id": "evil", "raft_address": evilIP + ":7946", "api_address": evilIP + ":9696"}, http.StatusNotFound},
		{tenant, "PUT", "/v2.0/ports/" + victimPort, map[string]any{"port": map[string]any{"binding:host_id": "hv2"}}, http.StatusNotFound},
		{tenant, "DELETE", "/v2.0/cluster/members/hv2", nil, http.StatusForbidden},
	} {
		if code := as(tc.token, tc.method, tc.path, tc.body); code != tc.want {
			t.Errorf("public API %s %s (token %t): %d, want %d", tc.method, tc.path, tc.token != "", code, tc.want)
		}
	}

	// 2. The internal channel, spoken without the secret: the guard reads
	// the request's first bytes as a challenge and the rest as a wrong
	// answer, and hangs up.
	raftAddr := tb.underlay.IP(1) + ":7946"
	plain := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := hv1.ovs.NS.DialContext(ctx, network, addr)
			if err == nil {
				_, err = c.Write([]byte{0x02}) // the internal channel's protocol byte
			}
			return c, err
		}}}
	register := proposal(t, cluster.CmdChassisRegister, cluster.ChassisReg{Spec: topology.ChassisSpec{Name: "evil", EncapIP: evilIP}})
	bind := proposal(t, cluster.CmdChassisPorts, cluster.ChassisPorts{Chassis: "evil",
		Bindings: []topology.Binding{{PortID: victimPort}}})
	for _, body := range [][]byte{register, bind} {
		resp, err := plain.Post("http://"+raftAddr+"/internal/propose", "application/json", bytes.NewReader(body))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Errorf("the internal channel answered a stranger: %d %s", resp.StatusCode, b)
		}
	}

	// 3. A forged proof: the stranger plays the handshake but cannot
	// compute the answer; the guard never acknowledges it.
	conn, err := hv1.ovs.NS.DialContext(context.Background(), "tcp", raftAddr)
	if err != nil {
		t.Fatal(err)
	}
	hello := make([]byte, 17)
	hello[0] = 0x02
	_, _ = rand.Read(hello[1:])
	_, _ = conn.Write(hello)
	challenge := make([]byte, 16) // the member's nonce, and nothing to guess the secret from
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(conn, challenge); err != nil {
		t.Fatalf("no challenge from the guard: %v", err)
	}
	forged := make([]byte, 32)
	_, _ = rand.Read(forged)
	_, _ = conn.Write(append(forged, register...))
	if b, err := io.ReadAll(conn); len(b) != 0 {
		t.Errorf("the guard answered a forged proof with %q (%v)", b, err)
	}
	conn.Close()

	// The control: with the secret, the same channel answers.
	member := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: cluster.InternalDialer(hv1.ovs.NS.DialContext, secret, nil)}}
	resp, err := member.Get("http://" + raftAddr + "/internal/read-index")
	if err != nil {
		t.Fatalf("a member with the secret: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a member with the secret: %d", resp.StatusCode)
	}

	// The victim's traffic never noticed.
	if err := pinger.Wait(); err != nil {
		t.Logf("ping: %v", err)
	}
	m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`).FindStringSubmatch(pingOut.String())
	if m == nil || m[1] != m[2] || m[1] == "0" {
		t.Errorf("the running ping lost packets during the attack:\n%s", pingOut.String())
	} else {
		t.Logf("running ping: %s of %s answered", m[2], m[1])
	}
	var chassis struct {
		Chassis []struct{ Name string } `json:"chassis"`
	}
	if _, err := tb.call("GET", "/v2.0/chassis?consistent=true", nil, &chassis); err != nil {
		t.Fatal(err)
	}
	for _, c := range chassis.Chassis {
		if c.Name == "evil" {
			t.Error("chassis evil was registered")
		}
	}
	var port struct {
		Port map[string]any `json:"port"`
	}
	if _, err := tb.call("GET", "/v2.0/ports/"+victimPort, nil, &port); err != nil || port.Port["binding:host_id"] != "hv1" {
		t.Errorf("the victim's port is bound to %v (%v), want hv1", port.Port["binding:host_id"], err)
	}
	for _, f := range hv1.ovs.DumpFlows("br-int") {
		if strings.Contains(f, evilIP) {
			t.Errorf("hv1 has a flow towards the stranger: %s", f)
		}
	}
}

// proposal is an internal-channel command body.
func proposal(t *testing.T, typ cluster.CommandType, payload any) []byte {
	p, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"type": typ, "payload": json.RawMessage(p)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIdleConnectionsDoNotStarveTheAPI: 2,000 connections held open on a
// node's API from eight hosts (loopback addresses), half silent and half
// stopped mid-header (slowloris), do not stop a normal request from
// answering within a second.
func TestIdleConnectionsDoNotStarveTheAPI(t *testing.T) {
	c := newCluster(t)
	m := c.add("auto")
	waitHealthy(t, m)
	var conns []net.Conn
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	for i := range 2000 {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%8))}}
		conn, err := d.Dial("tcp", m.api)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if i%2 == 1 {
			_, _ = conn.Write([]byte("GET /v2.0/networks HTTP/1.1\r\nHost: x\r\nX-Slow: "))
		}
		conns = append(conns, conn)
	}
	start := time.Now()
	code, err := call("GET", m.api, "/v2.0/networks", nil, nil)
	took := time.Since(start)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET with 2,000 idle connections open: %d %v", code, err)
	}
	t.Logf("GET /v2.0/networks with 2,000 idle connections open: %v", took)
	if took > time.Second {
		t.Errorf("GET took %v with 2,000 idle connections open, want < 1 s", took)
	}
}
