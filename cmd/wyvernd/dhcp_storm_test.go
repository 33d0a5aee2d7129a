package main

import (
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// dhcpDiscover is a minimal DHCPDISCOVER from mac, broadcast, as a client
// with no address sends it.
func dhcpDiscover(mac net.HardwareAddr, xid uint32) []byte {
	bootp := make([]byte, 240, 300)
	bootp[0], bootp[1], bootp[2] = 1, 1, 6 // BOOTREQUEST, Ethernet, 6-byte address
	binary.BigEndian.PutUint32(bootp[4:], xid)
	copy(bootp[28:], mac)
	copy(bootp[236:], []byte{99, 130, 83, 99})
	bootp = append(bootp, 53, 1, 1, 55, 3, 1, 3, 6, 255)
	for len(bootp) < 300 {
		bootp = append(bootp, 0)
	}
	udp := make([]byte, 8, 8+len(bootp))
	binary.BigEndian.PutUint16(udp[0:], 68)
	binary.BigEndian.PutUint16(udp[2:], 67)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(bootp)))
	udp = append(udp, bootp...) // UDP checksum 0: none, as IPv4 allows
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	binary.BigEndian.PutUint16(ip[10:], ipv4Checksum(ip[:20]))
	frame := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac...)
	frame = append(frame, 0x08, 0x00)
	return append(append(frame, ip...), udp...)
}

// rawSocket opens an AF_PACKET socket for IPv4 on a namespace's eth0.
func rawSocket(ns *ovstest.NetNS) (int, error) {
	var fd int
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		if fd, err = syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(syscall.ETH_P_IP))); err != nil {
			return err
		}
		return syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_IP), Ifindex: ifi.Index})
	})
	return fd, err
}

// dhcpFlood sends DISCOVERs from a VM at rate per second until stop.
func dhcpFlood(vm *ovstest.VM, rate int, stop <-chan struct{}, sent *atomic.Uint64) error {
	fd, err := rawSocket(vm.NetNS)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	mac, _ := net.ParseMAC(vm.MAC)
	start := time.Now()
	for n := 0; ; {
		select {
		case <-stop:
			return nil
		default:
		}
		for due := int(time.Since(start).Seconds() * float64(rate)); n < due; n++ {
			if _, err := syscall.Write(fd, dhcpDiscover(mac, uint32(n))); err != nil && !errors.Is(err, syscall.ENOBUFS) {
				return err
			}
			sent.Add(1)
		}
		time.Sleep(500 * time.Microsecond)
	}
}

// TestDHCPStormDelaysNoOneElse: one VM sends 1,000 DISCOVERs a second;
// another VM on the same chassis still gets its lease from a real client
// in under a second. The storm is spent on its own port's meter.
func TestDHCPStormDelaysNoOneElse(t *testing.T) {
	tb := newTestbed(t, 1)
	hv1 := tb.hvs[0]
	n := tb.create("/v2.0/networks", map[string]any{"network": map[string]any{"name": "A"}})
	tb.create("/v2.0/subnets", map[string]any{"subnet": map[string]any{"network_id": n["id"], "cidr": "10.40.0.0/24"}})
	stormer, ps := tb.bareVM(hv1, map[string]any{"network_id": n["id"]})
	victim, pv := tb.bareVM(hv1, map[string]any{"network_id": n["id"]})
	tb.waitActive(ps["id"].(string), pv["id"].(string))

	stop := make(chan struct{})
	var sent atomic.Uint64
	done := make(chan error, 1)
	go func() { done <- dhcpFlood(stormer, 1000, stop, &sent) }()
	time.Sleep(1500 * time.Millisecond) // the storm is under way
	before := sent.Load()
	start := time.Now()
	out, err := victim.Exec("busybox", "udhcpc", "-i", "eth0", "-q", "-n", "-t", "3", "-T", "1", "-s", "/bin/true")
	took := time.Since(start)
	during := sent.Load() - before
	time.Sleep(500 * time.Millisecond)
	close(stop)
	if ferr := <-done; ferr != nil {
		t.Fatalf("the storm: %v", ferr)
	}
	if err != nil || !strings.Contains(out, "lease of "+fixedIP(pv)+" obtained") {
		t.Fatalf("the other VM's udhcpc during the storm: %v\n%s", err, out)
	}
	rate := float64(during) / took.Seconds()
	t.Logf("lease during a storm of %.0f DISCOVER/s from another VM: %v", rate, took.Round(time.Millisecond))
	if rate < 800 {
		t.Errorf("the storm ran at %.0f/s, want about 1,000", rate)
	}
	if took > time.Second {
		t.Errorf("the other VM waited %v for its lease, want < 1 s", took)
	}
	// The storm went through its port's meter, which dropped most of it.
	punts := tb.punts(hv1)
	found := false
	for _, m := range punts.Switches[0].Meters {
		if m.PortID == ps["id"] {
			found = true
			t.Logf("the stormer's meter: %d packets, %d dropped in the datapath, of %d sent", m.Packets, m.Dropped, sent.Load())
			if m.Dropped < sent.Load()/2 {
				t.Errorf("the stormer's meter dropped %d of %d DISCOVERs; want most", m.Dropped, sent.Load())
			}
		}
	}
	if !found {
		t.Errorf("no meter for the stormer's port: %+v", punts)
	}
}

// ipv4Checksum is the header checksum of an IPv4 header whose checksum
// field is zero.
func ipv4Checksum(hdr []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(hdr); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(hdr[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
