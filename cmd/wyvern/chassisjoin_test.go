package main

import (
	"net/http"
	"strings"
	"testing"
)

func TestRoutableOpenFlowTarget(t *testing.T) {
	for target, want := range map[string]bool{
		"tcp:172.31.0.1:6653":    true,
		"ssl:10.0.0.5:6653":      true,
		"tcp:[2001:db8::1]:6653": true,
		"tcp:ctl1.example:6653":  true,
		"tcp:127.0.0.1:6653":     false, // --openflow-addr's default
		"tcp:[::1]:6653":         false,
		"tcp:localhost:6653":     false,
		"tcp:0.0.0.0:6653":       false,
		"unix:/run/wyvern.sock":  false,
		"":                       false,
	} {
		if got := routable(target); got != want {
			t.Errorf("routable(%q) = %v, want %v", target, got, want)
		}
	}
}

func TestMasterOf(t *testing.T) {
	targets := []string{"tcp:10.0.0.1:6653", "tcp:10.0.0.2:6653"}
	listing := `"tcp:10.0.0.1:6653",slave,true
"tcp:10.0.0.2:6653",master,true
"tcp:10.9.9.9:6653",master,true`
	if got := masterOf(listing, targets); got != "tcp:10.0.0.2:6653" {
		t.Errorf("master %q", got)
	}
	// A master not connected, or not a member, is none.
	if got := masterOf(`"tcp:10.0.0.1:6653",master,false`+"\n"+`"tcp:10.9.9.9:6653",master,true`, targets); got != "" {
		t.Errorf("master %q, want none", got)
	}
}

func TestChassisJoinRefusesBadFlags(t *testing.T) {
	good := chassisJoin{name: "hv4", encapIP: "172.31.0.4", bridge: "br-int", datapathType: "system", encaps: []string{"vxlan", "gre"}}
	for name, mutate := range map[string]func(*chassisJoin){
		"--encap-ip":       func(j *chassisJoin) { j.encapIP = "hv4" },
		"--bridge":         func(j *chassisJoin) { j.bridge = "br-int -- del-br br-ex" },
		"--datapath-type":  func(j *chassisJoin) { j.datapathType = "dpdk" },
		"--encap":          func(j *chassisJoin) { j.encaps = []string{"geneve"} },
		"--bridge-mapping": func(j *chassisJoin) { j.mappings = []string{"physnet1"} },
	} {
		j := good
		mutate(&j)
		if _, err := j.check(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want an error naming the flag", name, err)
		}
	}
	m, err := (&chassisJoin{name: "hv4", encapIP: "172.31.0.4", bridge: "br-int", datapathType: "netdev", encaps: []string{"gre"},
		mappings: []string{"physnet1:br-ex"}}).check()
	if err != nil || m["physnet1"] != "br-ex" {
		t.Errorf("a good join: %v %v", m, err)
	}
}

// TestChassisJoinNeedsReachableMembers: against a node whose OpenFlow
// address is loopback (a remote bridge could not reach it) the join
// refuses, naming the member and the flag, before it touches OVS (the
// ovs-vsctl it is given does not exist) or registers anything.
func TestChassisJoinNeedsReachableMembers(t *testing.T) {
	api := startDaemon(t)
	_, errOut, err := run(t, "http://"+api, "chassis", "join", "hv9", "--encap-ip", "172.31.0.9", "--ovs-vsctl", "/nonexistent/ovs-vsctl")
	if err == nil || !strings.Contains(err.Error(), "cli (") || !strings.Contains(err.Error(), "--openflow-addr") {
		t.Fatalf("join against a loopback member: %v %s", err, errOut)
	}
	resp, err := http.Get("http://" + api + "/v2.0/chassis/hv9")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a refused join registered hv9 (%d)", resp.StatusCode)
	}
}
