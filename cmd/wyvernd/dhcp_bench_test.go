package main

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// discoverToOffer sends one DISCOVER from a raw socket and waits for the
// OFFER with its xid.
func discoverToOffer(fd int, mac net.HardwareAddr, xid uint32) (time.Duration, error) {
	frame := dhcpDiscover(mac, xid)
	start := time.Now()
	if _, err := syscall.Write(fd, frame); err != nil {
		return 0, err
	}
	buf := make([]byte, 2048)
	for {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		f := buf[:n]
		// Ethernet | IPv4 (20) | UDP 67→68 | BOOTP reply with our xid
		if n > 14+20+8+8 && f[14+9] == 17 && binary.BigEndian.Uint16(f[14+20:]) == 67 &&
			f[14+28] == 2 && binary.BigEndian.Uint32(f[14+28+4:]) == xid {
			return time.Since(start), nil
		}
	}
}

// measureOffers measures b.N DISCOVER → OFFER exchanges from a namespace.
func measureOffers(b *testing.B, ns *ovstest.NetNS, macStr string) []time.Duration {
	fd, err := rawSocket(ns)
	if err != nil {
		b.Fatal(err)
	}
	tv := syscall.Timeval{Sec: 2}
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	defer syscall.Close(fd)
	mac, _ := net.ParseMAC(macStr)
	// Warm up: the server may still be starting.
	for try := 0; ; try++ {
		if _, err := discoverToOffer(fd, mac, uint32(0x5600000+try)); err == nil {
			break
		} else if try == 10 {
			b.Fatalf("no OFFER to a warm-up DISCOVER: %v", err)
		}
	}
	var out []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := discoverToOffer(fd, mac, uint32(0x5700000+i))
		if err != nil {
			b.Fatalf("DISCOVER %d: %v", i, err)
		}
		out = append(out, d)
		time.Sleep(20 * time.Millisecond) // well under the port's punt meter
	}
	b.StopTimer()
	return out
}

func reportLatency(b *testing.B, d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkDHCPDiscoverToOffer: DISCOVER → OFFER, as a VM's raw socket
// sees it, through real OVS: Wyvern (punt, answer from the flow's own
// data, packet-out) against the peer, busybox udhcpd, a DHCP server
// process on the other end of a veth pair, in the same run.
func BenchmarkDHCPDiscoverToOffer(b *testing.B) {
	b.Run("wyvern", func(b *testing.B) {
		tb := newTestbed(b, 1)
		n := tb.create("/v2.0/networks", map[string]any{"network": map[string]any{"name": "A"}})
		tb.create("/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": n["id"], "cidr": "10.60.0.0/24"}})
		vm, p := tb.bareVM(tb.hvs[0], map[string]any{"network_id": n["id"]})
		tb.waitActive(p["id"].(string))
		reportLatency(b, measureOffers(b, vm.NetNS, vm.MAC))
	})
	b.Run("udhcpd", func(b *testing.B) {
		ovstest.Require(b)
		srv, cli := ovstest.NewNetNS(b, "dsrv"), ovstest.NewNetNS(b, "dcli")
		if out, err := exec.Command("ip", "link", "add", "eth0", "netns", cli.Name, "type", "veth", "peer", "name", "eth0", "netns", srv.Name).CombinedOutput(); err != nil {
			b.Fatalf("veth: %v %s", err, out)
		}
		mac := "fa:16:3e:55:00:01"
		for _, c := range [][]string{{"ip", "link", "set", "eth0", "address", mac}, {"ip", "link", "set", "eth0", "up"}} {
			if _, err := cli.Exec(c...); err != nil {
				b.Fatal(err)
			}
		}
		for _, c := range [][]string{{"ip", "addr", "add", "10.61.0.1/24", "dev", "eth0"}, {"ip", "link", "set", "eth0", "up"}} {
			if _, err := srv.Exec(c...); err != nil {
				b.Fatal(err)
			}
		}
		dir := b.TempDir()
		conf := filepath.Join(dir, "udhcpd.conf")
		if err := os.WriteFile(conf, []byte("start 10.61.0.10\nend 10.61.0.200\ninterface eth0\nlease_file "+filepath.Join(dir, "leases")+
			"\nopt subnet 255.255.255.0\nopt router 10.61.0.1\nopt dns 10.61.0.1\nopt lease 86400\n"), 0o644); err != nil {
			b.Fatal(err)
		}
		d := srv.Command("busybox", "udhcpd", "-f", conf)
		if err := d.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = d.Process.Kill(); _ = d.Wait() })
		time.Sleep(300 * time.Millisecond)
		reportLatency(b, measureOffers(b, cli, mac))
	})
}
