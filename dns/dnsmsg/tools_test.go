package dnsmsg

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// zone answers as the controller would for one network: vm1 has
// 10.0.0.5, vm2 has two addresses, and 10.0.0.5's PTR is vm1.
func zone(q Question) Answer {
	const ttl = 300
	switch q.Name {
	case "vm1.example.org", "vm2.example.org":
		addrs := []netip.Addr{netip.MustParseAddr("10.0.0.5")}
		if q.Name == "vm2.example.org" {
			addrs = []netip.Addr{netip.MustParseAddr("10.0.0.6"), netip.MustParseAddr("10.0.0.7")}
		}
		if q.Type == TypeA {
			return Answer{Addrs: addrs, TTL: ttl}
		}
		return Answer{TTL: ttl} // NODATA
	}
	if ip, ok := ParseReverse(q.Name); ok && ip == netip.MustParseAddr("10.0.0.5") {
		if q.Type == TypePTR {
			return Answer{PTR: []string{"vm1.example.org"}, TTL: ttl}
		}
		return Answer{}
	}
	return Answer{RCode: RCodeNameError}
}

// serveDNS answers UDP queries on 127.0.0.1 with the DNS payload of
// Reply's frame: each datagram is wrapped in the frame a VM would have
// sent, parsed, answered from zone, and unwrapped.
func serveDNS(t *testing.T) int {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			frame := udpFrame(vmMAC, gwMAC, nil, from.Addr(), netip.MustParseAddr("127.0.0.1"), from.Port(), 53, buf[:n])
			q, err := ParseQuery(frame)
			if err != nil {
				t.Errorf("ParseQuery of dig's query: %v\n%x", err, buf[:n])
				continue
			}
			f, err := Reply(q, zone(q.Question))
			if err != nil {
				t.Errorf("Reply: %v", err)
				continue
			}
			ip := f[14:]
			udp := ip[20:binary.BigEndian.Uint16(ip[2:4])]
			if _, err := conn.WriteToUDPAddrPort(udp[8:], from); err != nil {
				t.Errorf("write: %v", err)
			}
		}
	}()
	return conn.LocalAddr().(*net.UDPAddr).Port
}

// TestDigAcceptsReplies: the real dig reads Reply's answers — status,
// flags, records and EDNS — without complaint.
func TestDigAcceptsReplies(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig not installed (Debian package dnsutils)")
	}
	port := serveDNS(t)
	for _, c := range []struct {
		name string
		args []string
		want []string // regexps over dig's output
	}{
		{"A", []string{"vm1.example.org", "A"}, []string{
			`status: NOERROR`, `flags: qr aa rd ra; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1`,
			`; EDNS: version: 0, flags:; udp: 1232`, `(?m)^vm1\.example\.org\.\s+300\s+IN\s+A\s+10\.0\.0\.5$`}},
		{"two A, no EDNS", []string{"+noedns", "VM2.example.org", "A"}, []string{
			`status: NOERROR`, `ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 0`,
			`(?m)^VM2\.example\.org\.\s+300\s+IN\s+A\s+10\.0\.0\.6$`, `(?m)^VM2\.example\.org\.\s+300\s+IN\s+A\s+10\.0\.0\.7$`}},
		{"PTR", []string{"-x", "10.0.0.5"}, []string{
			`status: NOERROR`, `(?m)^5\.0\.0\.10\.in-addr\.arpa\.\s+300\s+IN\s+PTR\s+vm1\.example\.org\.$`}},
		{"NODATA", []string{"vm1.example.org", "AAAA"}, []string{`status: NOERROR`, `ANSWER: 0, AUTHORITY: 0`}},
		{"NXDOMAIN", []string{"nope.example.org", "A"}, []string{`status: NXDOMAIN`, `ANSWER: 0, AUTHORITY: 0`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			args := append([]string{"@127.0.0.1", "-p", strconv.Itoa(port), "+tries=1", "+time=2"}, c.args...)
			out, err := exec.CommandContext(ctx, dig, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			for _, w := range c.want {
				if !regexp.MustCompile(w).Match(out) {
					t.Errorf("dig output lacks %q:\n%s", w, out)
				}
			}
			for _, bad := range []string{"WARNING", "Warning", "malformed", "mismatch", "timed out"} {
				if strings.Contains(string(out), bad) {
					t.Errorf("dig output has %q:\n%s", bad, out)
				}
			}
			t.Logf("dig %s:\n%s", strings.Join(c.args, " "), answerLines(out))
		})
	}
}

// answerLines is the header and answer lines of dig's output, for the log.
func answerLines(out []byte) string {
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, ";; ->>HEADER") || strings.HasPrefix(l, ";; flags") || (l != "" && !strings.HasPrefix(l, ";")) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestTcpdumpDecodesReplies: tcpdump, reading the golden replies from a
// pcap, finds both checksums correct and decodes the DNS answers.
func TestTcpdumpDecodesReplies(t *testing.T) {
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Skip("tcpdump not installed")
	}
	var frames [][]byte
	for _, c := range goldenCases(t) {
		f, err := Reply(c.q, c.a)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
	}
	path := filepath.Join(t.TempDir(), "replies.pcap")
	writePcap(t, path, frames)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, tcpdump, "-e", "-nn", "-vv", "-r", path).CombinedOutput()
	if err != nil {
		t.Fatalf("tcpdump: %v\n%s", err, out)
	}
	s := string(out)
	if n := strings.Count(s, "[udp sum ok]"); n != len(frames) {
		t.Errorf("%d of %d replies have [udp sum ok]:\n%s", n, len(frames), s)
	}
	for _, w := range []string{
		"10.0.0.1.53 > 10.0.0.5.54902: [udp sum ok] 26157* q: A? vm1.example.org. 1/0/0 vm1.example.org. A 10.0.0.5 (49)",
		"10.0.0.1.53 > 10.0.0.5.60695: [udp sum ok] 28393* q: A? vm1.example.org. 2/0/1 vm1.example.org. A 10.0.0.5, vm1.example.org. A 10.0.0.6 ar: . OPT UDPsize=1232 (76)",
		"10.0.0.1.53 > 10.0.0.5.40000: [udp sum ok] 20560* q: PTR? 5.0.0.10.in-addr.arpa. 1/0/0 5.0.0.10.in-addr.arpa. PTR vm1.example.org. (68)",
		"10.0.0.1.53 > 10.0.0.5.60695: [udp sum ok] 28393 NXDomain* q: A? vm1.example.org. 0/0/1 ar: . OPT UDPsize=1232 (44)",
		"10.0.0.1.53 > 10.0.0.5.40000: [udp sum ok] 43690* q: AAAA? vm1.example.org. 0/0/1 ar: . OPT UDPsize=1232 (44)",
		"fa:16:3e:00:00:01 > fa:16:3e:00:00:05, ethertype 802.1Q (0x8100), length 95: vlan 100, p 1, ethertype IPv4 (0x0800)",
	} {
		if !strings.Contains(s, w) {
			t.Errorf("tcpdump output lacks %q:\n%s", w, s)
		}
	}
	if strings.Contains(s, "bad") {
		t.Errorf("tcpdump reports something bad:\n%s", s)
	}
	t.Logf("tcpdump -vv:\n%s", s)
}
