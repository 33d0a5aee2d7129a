package controller

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/wyvern-sdn/wyvern/internal/ovstest"
	"github.com/wyvern-sdn/wyvern/ofctl"
	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/pipeline"
)

// goldenLines reads a golden file of the pipeline package.
func goldenLines(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "pipeline", "testdata", name+".golden"))
	if err != nil {
		t.Fatal(err)
	}
	return of.NormalizeDump(string(b))
}

// startNode runs a node, its listener opened inside the hypervisor's
// namespace, until the test ends.
func startNode(t *testing.T, ns *ovstest.NetNS, addr string, mode pipeline.Mode) *Node {
	t.Helper()
	var n *Node
	err := ns.Do(func() (err error) {
		n, err = NewNode(NodeConfig{NodeID: "test", OpenFlowAddr: addr, Mode: mode}, zaptest.NewLogger(t))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	runNode(t, n)
	return n
}

func waitForFlows(t *testing.T, o *ovstest.OVS, bridge string, want []string) {
	t.Helper()
	var got []string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		got, _ = o.DumpFlowsErr(bridge)
		if strings.Join(got, "\n") == strings.Join(want, "\n") {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("bridge %s flows differ from the golden file:\n--- got\n%s\n--- want\n%s", bridge,
		strings.Join(got, "\n"), strings.Join(want, "\n"))
}

// TestBasePipelineOnRealBridge connects a netdev bridge to the node over
// tcp and over unix, and compares ovs-ofctl's own dump, with table names,
// to the golden file the model produced.
func TestBasePipelineOnRealBridge(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode pipeline.Mode
	}{{"tcp", pipeline.Reactive}, {"unix", pipeline.Proactive}} {
		t.Run(tc.name, func(t *testing.T) {
			o := ovstest.Start(t)
			var target string
			if tc.name == "tcp" {
				n := startNode(t, o.NS, "tcp:127.0.0.1:0", tc.mode)
				target = "tcp:" + n.OpenFlowAddr()
			} else {
				sock := filepath.Join(o.Dir, "wyvern.sock")
				startNode(t, o.NS, "unix:"+sock, tc.mode)
				target = "unix:" + sock
			}
			br := ovstest.Name("br")
			o.AddBridge(br, ovstest.BridgeOptions{Controller: target})
			waitForFlows(t, o, br, goldenLines(t, "base_"+tc.mode.String()))
			// Table names are on the switch itself, not just in our text.
			out := o.Ofctl("dump-table-features", br)
			for _, s := range pipeline.Stages {
				if !strings.Contains(out, `"`+s.Name+`"`) {
					t.Errorf("table %d is not named %q on the switch", s.First, s.Name)
				}
			}
		})
	}
}

// arpPuntHandler answers ARP requests for one IP with a PACKET_OUT.
type arpPuntHandler struct {
	rec    *Reconciler
	ip     netip.Addr
	mac    net.HardwareAddr
	mu     sync.Mutex
	punted int
	match  of.Match // pipeline fields of the last punt
}

func (h *arpPuntHandler) Connected(ctx context.Context, sw *ofctl.Switch) { _ = h.rec.Run(ctx, sw) }

func (h *arpPuntHandler) PacketIn(ctx context.Context, sw *ofctl.Switch, pi ofctl.PacketIn) {
	req, ok := parseARPRequest(pi.Data)
	if !ok || req.tpa != h.ip {
		return
	}
	h.mu.Lock()
	h.punted++
	h.match = pi.Match
	h.mu.Unlock()
	reply := buildARPReply(h.mac, h.ip, req.sha, req.spa)
	_ = sw.PacketOut(ctx, ofctl.PacketOut{
		InPort:  of.PortController,
		Actions: []of.Action{of.Output{Port: pi.InPort()}},
		Data:    reply,
	})
}

type arpRequest struct {
	sha      net.HardwareAddr
	spa, tpa netip.Addr
}

func parseARPRequest(frame []byte) (arpRequest, bool) {
	if len(frame) < 42 || binary.BigEndian.Uint16(frame[12:]) != of.EthTypeARP {
		return arpRequest{}, false
	}
	a := frame[14:]
	if binary.BigEndian.Uint16(a[6:]) != of.ARPRequest {
		return arpRequest{}, false
	}
	return arpRequest{
		sha: net.HardwareAddr(append([]byte(nil), a[8:14]...)),
		spa: netip.AddrFrom4([4]byte(a[14:18])),
		tpa: netip.AddrFrom4([4]byte(a[24:28])),
	}, true
}

func buildARPReply(mac net.HardwareAddr, ip netip.Addr, dstMAC net.HardwareAddr, dstIP netip.Addr) []byte {
	var b bytes.Buffer
	b.Write(dstMAC)
	b.Write(mac)
	_ = binary.Write(&b, binary.BigEndian, uint16(of.EthTypeARP))
	_ = binary.Write(&b, binary.BigEndian, []uint16{1, of.EthTypeIPv4})
	b.Write([]byte{6, 4})
	_ = binary.Write(&b, binary.BigEndian, uint16(of.ARPReply))
	b.Write(mac)
	s := ip.As4()
	b.Write(s[:])
	b.Write(dstMAC)
	d := dstIP.As4()
	b.Write(d[:])
	return b.Bytes()
}

// TestARPAnsweredByPuntHandler sends an ARP request from a VM namespace
// through the pipeline (Classifier → PortSecurity → ServiceClassifier →
// ARPResponder, whose miss punts); a punt handler answers with a
// PACKET_OUT and the VM's neighbour table learns the answered MAC.
func TestARPAnsweredByPuntHandler(t *testing.T) {
	o := ovstest.Start(t)
	br := ovstest.Name("br")
	sock := filepath.Join(o.Dir, "wyvern.sock")
	vmMAC, _ := net.ParseMAC("fa:16:3e:00:00:01")
	var vmPort uint32
	var portMu sync.Mutex
	const netKey, portKey = 7, 1
	desired := func(uint64) []of.Flow {
		portMu.Lock()
		p := vmPort
		portMu.Unlock()
		if p == 0 {
			return nil
		}
		ck := pipeline.NewCookie(0, pipeline.AppTest, portKey)
		return []of.Flow{
			{Table: pipeline.Table(pipeline.Classifier), Priority: 100, Cookie: ck, Match: of.Match{}.InPort(p),
				Actions: []of.Action{of.SetReg(pipeline.SrcPortKey, portKey),
					of.WriteMetadata{Value: netKey}, of.GotoTable{Table: pipeline.Table(pipeline.PortSecurity)}}},
			{Table: pipeline.Table(pipeline.PortSecurity), Priority: 100, Cookie: ck,
				Match:   of.Match{}.Reg(pipeline.SrcPortKey, portKey).EthSrc(vmMAC),
				Actions: []of.Action{of.GotoTable{Table: pipeline.Table(pipeline.ServiceClassifier)}}},
			{Table: pipeline.Table(pipeline.ServiceClassifier), Priority: 100, Cookie: ck,
				Match:   of.Match{}.EthType(of.EthTypeARP),
				Actions: []of.Action{of.GotoTable{Table: pipeline.Table(pipeline.ARPResponder)}}},
		}
	}
	log := zaptest.NewLogger(t)
	h := &arpPuntHandler{
		rec: NewReconciler(ReconcilerConfig{Mode: pipeline.Reactive, Desired: desired}, log),
		ip:  netip.MustParseAddr("10.0.0.99"),
		mac: net.HardwareAddr{0xfa, 0x16, 0x3e, 0, 0, 0x99},
	}
	srv, err := ofctl.Listen(ofctl.Config{Addr: "unix:" + sock, TableNames: pipeline.TableNames()}, h, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-served })

	o.AddBridge(br, ovstest.BridgeOptions{Controller: "unix:" + sock})
	vm := o.AddVM(br, "port-1", vmMAC.String(), "10.0.0.1/24")
	portMu.Lock()
	vmPort = uint32(vm.OFPort)
	portMu.Unlock()
	ovstest.Eventually(t, 10*time.Second, "switch connected", func() bool { return len(srv.Switches()) == 1 })
	h.rec.Update()
	ovstest.Eventually(t, 10*time.Second, "VM flows installed", func() bool {
		for _, l := range o.DumpFlows(br) {
			if strings.Contains(l, "in_port="+vm.Tap) {
				return true
			}
		}
		return false
	})

	// ping makes the kernel ARP for 10.0.0.99; the ICMP itself goes
	// unanswered, the neighbour entry is what we check.
	_, _ = vm.Exec("ping", "-c", "1", "-W", "1", "10.0.0.99")
	var neigh string
	ovstest.Eventually(t, 10*time.Second, "neighbour entry for 10.0.0.99", func() bool {
		neigh, _ = vm.Exec("ip", "neigh", "show", "10.0.0.99", "dev", "eth0")
		return strings.Contains(neigh, "lladdr fa:16:3e:00:00:99")
	})
	h.mu.Lock()
	punted, m := h.punted, h.match
	h.mu.Unlock()
	if punted == 0 {
		t.Fatalf("the neighbour entry appeared without a punt: %s", neigh)
	}
	// The punt carries the pipeline state the Classifier set.
	reg6, _ := m.Get(of.FieldReg6)
	md, _ := m.Get(of.FieldMetadata)
	inPort, _ := m.Get(of.FieldInPort)
	if reg6.Value != portKey || md.Value != netKey || inPort.Value != uint64(vm.OFPort) {
		t.Fatalf("punt pipeline fields reg6=%d metadata=%d in_port=%d, want %d %d %d",
			reg6.Value, md.Value, inPort.Value, portKey, netKey, vm.OFPort)
	}
	t.Logf("neighbour: %s (after %d punt(s))", strings.TrimSpace(neigh), punted)
}
