package main

import (
	"encoding/binary"
	"math/rand"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
)

// floodRate is what the flooding VM sends: frames per second, each to a
// random unknown unicast MAC.
const floodRate = 50000

// TestFloodingVMDoesNotStarveOthers: one VM sends 50,000 frames/s to
// random unknown MACs. Meanwhile another VM on the same chassis pings VMs
// on another chassis for the first time (its ARP and its first packet
// both punt, on both chassis): it answers in under 50 ms, the API keeps
// answering, and the flooder's punts are cut by its own meter in the
// datapath, not by anybody else's.
//
// The victim pings three new destinations before the flood and three
// during it; the fastest during the flood must be under 50 ms, or, on a
// machine so loaded that even the quiet first pings are slow, under four
// times the fastest quiet one (if not, three more, which must be). A starved punt path makes every ping slow
// or lost; one slow sample is a loaded 2-core machine's scheduling (the
// single-ping version failed at 71 ms with the meter doing its job).
func TestFloodingVMDoesNotStarveOthers(t *testing.T) {
	tb := newTestbed(t, 2)
	hv1, hv2 := tb.hvs[0], tb.hvs[1]
	var floodTook time.Duration
	a := tb.network("A", "vxlan", 100, "10.0.0.0/24")
	flooder, pf := tb.vm(hv1, a, "")
	victim, pv := tb.vm(hv1, a, "")
	var targets []*ovstest.VM
	ids := []string{pf, pv}
	for range 9 {
		vm, id := tb.vm(hv2, a, "")
		targets, ids = append(targets, vm), append(ids, id)
	}
	tb.waitActive(ids...)

	quiet := fastestFirstPing(t, victim, targets[:3], "before the flood")

	stop := make(chan struct{})
	var sent atomic.Uint64
	floodDone := make(chan error, 1)
	go func() {
		start := time.Now()
		err := flood(flooder, floodRate, stop, &sent)
		floodTook = time.Since(start)
		floodDone <- err
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}()
	time.Sleep(time.Second) // the flood is in full swing

	during := fastestFirstPing(t, victim, targets[3:6], "during the flood")
	if during >= 50*time.Millisecond && during >= 4*quiet {
		// Once more, to three other new destinations: under make test a
		// neighbouring package's tests may take the cores for a while (the
		// three first pings of one run all took 115-124 ms, none did alone).
		// A starved punt path is slow both times.
		t.Logf("the fastest of three first pings took %s during the flood (%s before it); three more", during, quiet)
		during = fastestFirstPing(t, victim, targets[6:], "during the flood, again")
	}
	if during >= 50*time.Millisecond && during >= 4*quiet {
		t.Errorf("the fastest of three first pings took %s during the flood (%s before it), twice, want < 50 ms or < 4x",
			during.Round(time.Microsecond), quiet.Round(time.Microsecond))
	}

	// The controller stays responsive: a write through hv1's API.
	start := time.Now()
	var created map[string]any
	if code, err := tb.call("POST", "/v2.0/ports", map[string]any{"port": map[string]any{"network_id": a, "name": "during-flood"}}, &created); err != nil || code != 201 {
		t.Fatalf("port create during the flood: %d %v", code, err)
	}
	apiTook := time.Since(start)
	t.Logf("port create through the API during the flood: %s", apiTook.Round(time.Microsecond))
	if apiTook > time.Second {
		t.Errorf("the API took %s during the flood", apiTook)
	}
	time.Sleep(time.Second)
	close(stop)
	if err := <-floodDone; err != nil {
		t.Fatal(err)
	}
	rate := float64(sent.Load()) / floodTook.Seconds()
	t.Logf("flooder sent %d frames in %s (%.0f/s)", sent.Load(), floodTook.Round(time.Millisecond), rate)
	if rate < 0.8*floodRate {
		t.Errorf("the flooder managed only %.0f frames/s, want about %d", rate, floodRate)
	}

	// Where the flood was cut: the flooder's own meter dropped most of
	// its punts in the datapath; the victim's punts all got through.
	punts := tb.punts(hv1)
	sw := punts.Switches[0]
	var flooderMeterPackets, flooderMeterDrops, flooderPunts, victimDropped uint64
	for _, m := range sw.Meters {
		if m.PortID == pf {
			flooderMeterPackets, flooderMeterDrops = m.Packets, m.Dropped
			t.Logf("flooder's meter on hv1: %d packets, %d dropped in the datapath", m.Packets, m.Dropped)
		}
	}
	for _, s := range sw.Sources {
		switch s.PortID {
		case pf:
			flooderPunts = s.Received
		case pv:
			victimDropped = s.Dropped
		}
	}
	t.Logf("hv1's controller received %d punts in all, %d of them the flooder's", punts.Received, flooderPunts)
	// Of the frames that reached the punt flow (a loaded userspace
	// datapath loses some before), the meter dropped nearly all, and
	// the controller saw a trickle of what was sent.
	if flooderMeterPackets < 1000 || flooderMeterDrops < flooderMeterPackets*9/10 || flooderPunts > sent.Load()/20 {
		t.Errorf("the flooder's meter dropped %d of the %d frames it saw (%d sent), and the controller got %d of its punts; the punt path was not cut in the datapath",
			flooderMeterDrops, flooderMeterPackets, sent.Load(), flooderPunts)
	}
	if victimDropped != 0 {
		t.Errorf("%d of the victim's punts were dropped", victimDropped)
	}
}

// fastestFirstPing pings each target once from vm, the first packets
// between them, and returns the fastest round trip.
func fastestFirstPing(t *testing.T, vm *ovstest.VM, targets []*ovstest.VM, when string) time.Duration {
	t.Helper()
	best := time.Duration(1<<63 - 1)
	for _, target := range targets {
		out, err := vm.Exec("ping", "-c", "1", "-W", "1", ipOf(target))
		if err != nil {
			t.Fatalf("the victim's first ping to %s failed %s: %v\n%s", ipOf(target), when, err, out)
		}
		m := regexp.MustCompile(`time=([0-9.]+) ms`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no RTT in ping output:\n%s", out)
		}
		ms, _ := strconv.ParseFloat(m[1], 64)
		rtt := time.Duration(ms * float64(time.Millisecond))
		t.Logf("victim's first ping to %s (ARP and echo punted on both chassis) %s: %s", ipOf(target), when, rtt.Round(time.Microsecond))
		best = min(best, rtt)
	}
	return best
}

// flood sends frames from the VM's eth0 at rate per second until stop:
// IPv4/UDP from the VM's own MAC and address (so port security lets them
// through) to a random locally administered unicast MAC each.
func flood(vm *ovstest.VM, rate int, stop <-chan struct{}, sent *atomic.Uint64) error {
	var fd int
	err := vm.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		proto := int(htons(syscall.ETH_P_ALL))
		if fd, err = syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, proto); err != nil {
			return err
		}
		return syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_ALL), Ifindex: ifi.Index})
	})
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	src, _ := net.ParseMAC(vm.MAC)
	srcIP := netip.MustParsePrefix(vm.IP).Addr().As4()
	frame := make([]byte, 60)
	copy(frame[6:], src)
	binary.BigEndian.PutUint16(frame[12:], 0x0800)
	ip := frame[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17 // IPv4, TTL 64, UDP
	binary.BigEndian.PutUint16(ip[2:], 46)
	copy(ip[12:], srcIP[:])
	copy(ip[16:], []byte{10, 0, 0, 250})
	binary.BigEndian.PutUint16(ip[20:], 9999) // UDP ports
	binary.BigEndian.PutUint16(ip[22:], 9)
	binary.BigEndian.PutUint16(ip[24:], 26)
	// A valid header checksum: the port's firewall (conntrack) drops an
	// invalid packet before it could be switched, or punted.
	binary.BigEndian.PutUint16(ip[10:], ipv4Checksum(ip[:20]))
	rng := rand.New(rand.NewSource(1))
	start := time.Now()
	for n := 0; ; {
		select {
		case <-stop:
			return nil
		default:
		}
		due := int(time.Since(start).Seconds() * float64(rate))
		for ; n < due; n++ {
			frame[0] = 0x02 // locally administered unicast: nobody's
			binary.BigEndian.PutUint32(frame[1:], rng.Uint32())
			frame[5] = byte(n)
			if _, err := syscall.Write(fd, frame); err != nil && err != syscall.ENOBUFS {
				return err
			}
			sent.Add(1)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
