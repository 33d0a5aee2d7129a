package deploy

import (
	"encoding/json"
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

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// service is an installed unit's ExecStart run as systemd would run it:
// in the unit's WorkingDirectory (created, as StateDirectory= has systemd
// do), chrooted into the fresh root (the binaries are static), inside a
// network namespace.
type service struct {
	t         *testing.T
	name      string
	cmd       *exec.Cmd
	exited    chan error
	waited    bool
	log       string // the process's output
	workDir   string // in the fresh root
	execStart []string
}

// startUnit starts unit (a path under root; a template's instance given
// as instance, the %i) in ns.
func startUnit(t *testing.T, root string, ns *ovstest.NetNS, unit, instance string) *service {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, unit))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, line := range strings.Split(strings.ReplaceAll(string(b), "%i", instance), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			keys[k] = v
		}
	}
	s := &service{t: t, name: filepath.Base(unit), exited: make(chan error, 1), execStart: strings.Fields(keys["ExecStart"])}
	if instance != "" {
		s.name = strings.Replace(s.name, "@", "@"+instance, 1)
	}
	wd := keys["WorkingDirectory"]
	if len(s.execStart) == 0 || wd == "" || keys["StateDirectory"] != strings.TrimPrefix(wd, "/var/lib/") {
		t.Fatalf("%s: ExecStart %q, WorkingDirectory %q, StateDirectory %q", s.name, keys["ExecStart"], wd, keys["StateDirectory"])
	}
	s.workDir = filepath.Join(root, wd)
	if err := os.MkdirAll(s.workDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// A file, not a buffer: read while the process still writes.
	s.log = filepath.Join(t.TempDir(), "wyvernd.log")
	logFile, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	s.cmd = ns.Command(append([]string{"unshare", "--root=" + root, "--wd=" + wd}, s.execStart...)...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if !s.waited {
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
	return s
}

func (s *service) output() string { b, _ := os.ReadFile(s.log); return string(b) }

// ready waits for GET /readyz at api (inside ns) to answer 200.
func (s *service) ready(ns *ovstest.NetNS, api string) {
	s.t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: ns.DialContext}}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-s.exited:
			s.waited = true
			s.t.Fatalf("%s %v exited: %v\n%s", s.name, s.execStart, err, s.output())
		case <-time.After(100 * time.Millisecond):
		}
		if resp, err := client.Get("http://" + api + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	s.t.Fatalf("%s %v: %s/readyz not 200 within 30s\n%s", s.name, s.execStart, api, s.output())
}

// stop sends SIGTERM (the units' KillSignal) and wants a clean exit; it
// returns the raft log the node wrote under its working directory.
func (s *service) stop() string {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case err := <-s.exited:
		s.waited = true
		if err != nil {
			s.t.Fatalf("%s after SIGTERM: %v\n%s", s.name, err, s.output())
		}
	case <-time.After(30 * time.Second):
		s.t.Fatalf("%s: still running 30s after SIGTERM", s.name)
	}
	wal, _ := filepath.Glob(filepath.Join(s.workDir, "wyvern-data/*/raft-wal/*.wal"))
	if len(wal) == 0 {
		s.t.Fatalf("%s: no raft log under %s/wyvern-data\n%s", s.name, s.workDir, s.output())
	}
	return wal[0]
}

// clusterMembers is GET /v2.0/cluster's members at api: "ID RAFT-ADDRESS",
// sorted.
func clusterMembers(t *testing.T, ns *ovstest.NetNS, api string) []string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: ns.DialContext}}
	resp, err := client.Get("http://" + api + "/v2.0/cluster")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Cluster struct {
			Members []struct {
				ID          string `json:"id"`
				RaftAddress string `json:"raft_address"`
			} `json:"members"`
		} `json:"cluster"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/v2.0/cluster: %d, %v", api, resp.StatusCode, err)
	}
	var members []string
	for _, m := range body.Cluster.Members {
		members = append(members, m.ID+" "+m.RaftAddress)
	}
	slices.Sort(members)
	return members
}

// instanceConfig writes /etc/wyvern/NAME.yaml for wyvernd@NAME: the
// shipped example with the node's own name and join, and every loopback
// listen address it sets (raft, API, OpenFlow, any other) moved up by
// n*1000, so instances on one machine never share a port; it returns the
// file's settings of raft-addr and api-addr.
func instanceConfig(t *testing.T, root, name string, n int, join string) (raftAddr, apiAddr string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "usr/share/doc/wyvern/examples/wyvernd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	listen := regexp.MustCompile(`(?m)^([a-z-]+): ((?:tcp:)?127\.0\.0\.1:)([0-9]+)$`)
	moved := map[string]string{}
	conf := listen.ReplaceAllStringFunc(string(b), func(line string) string {
		m := listen.FindStringSubmatch(line)
		port, _ := strconv.Atoi(m[3])
		moved[m[1]] = m[2] + strconv.Itoa(port+1000*n)
		return m[1] + ": " + moved[m[1]]
	})
	joinKey := regexp.MustCompile(`(?m)^join: .*$`)
	if moved["raft-addr"] == "" || moved["api-addr"] == "" || moved["openflow-addr"] == "" || !joinKey.MatchString(conf) {
		t.Fatalf("the example configuration does not set raft-addr, api-addr, openflow-addr on 127.0.0.1 and join: %v", moved)
	}
	conf = joinKey.ReplaceAllString(conf, "join: "+join)
	conf += "node-id: " + name + "\n"
	if err := os.WriteFile(filepath.Join(root, "etc/wyvern", name+".yaml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return moved["raft-addr"], moved["api-addr"]
}

// TestTemplateUnitFollowsTheUnit: wyvernd@.service is wyvernd.service but
// for the instance's name in its description, settings file and state
// directory, so hardening added to one is not missing from the other.
func TestTemplateUnitFollowsTheUnit(t *testing.T) {
	body := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		i := strings.Index(s, "[Unit]\n")
		if i < 0 {
			t.Fatalf("%s: no [Unit]", path)
		}
		return s[i:] // past the header comment
	}
	unit, template := body("systemd/wyvernd.service"), body("systemd/wyvernd@.service")
	for _, r := range [][2]string{
		{"Description=Wyvern SDN controller for Open vSwitch\n", "Description=Wyvern SDN controller for Open vSwitch, node %i\n"},
		{"ExecStart=/usr/bin/wyvernd --config /etc/wyvern/wyvernd.yaml\n", "ExecStart=/usr/bin/wyvernd --config /etc/wyvern/%i.yaml\n"},
		{"StateDirectory=wyvern\n", "StateDirectory=wyvern/%i\n"},
		{"WorkingDirectory=/var/lib/wyvern\n", "WorkingDirectory=/var/lib/wyvern/%i\n"},
	} {
		if strings.Count(unit, r[0]) != 1 {
			t.Fatalf("wyvernd.service has no line %q", r[0])
		}
		unit = strings.Replace(unit, r[0], r[1], 1)
	}
	if unit != template {
		t.Errorf("wyvernd@.service is not wyvernd.service per instance; want:\n%s", unit)
	}
}
