package explain

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/digitalocean/go-openvswitch/ovs"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
	"github.com/wyvern-sdn/wyvern/trace"
)

// LiveTrace is ofproto/trace's word on the same packet, and where it
// differs from the walk in Go.
type LiveTrace struct {
	Command         string    `json:"command"`
	DatapathActions string    `json:"datapath_actions"`
	FinalFlow       string    `json:"final_flow"`
	Tables          []LiveHop `json:"tables"`
	Agrees          bool      `json:"agrees"`
	Differences     []string  `json:"differences,omitempty"`
	Raw             string    `json:"raw"`
}

// LiveHop is one table lookup ofproto/trace reports.
type LiveHop struct {
	Table    int    `json:"table"`
	Priority int    `json:"priority,omitempty"`
	Cookie   string `json:"cookie,omitempty"`
	Match    string `json:"match"`
}

var (
	liveHopRe  = regexp.MustCompile(`^\s*(\d+)\. (.*?)(?:, priority (\d+))?(?:, cookie (0x[0-9a-f]+))?\s*$`)
	bridgeRe   = regexp.MustCompile(`^bridge\("(.*)"\)$`)
	dpActRe    = regexp.MustCompile(`(?m)^Datapath actions: (.*)$`)
	finalRe    = regexp.MustCompile(`(?m)^Final flow: (.*)$`)
	tunKeyRe   = regexp.MustCompile(`(?:tun_id|vni|key)=0x([0-9a-f]+)`)
	dpOutputRe = regexp.MustCompile(`(?:^|,)(\d+)(?:,|$)|out_port\(`)
)

// appctlTarget finds the control socket of the ovs-vswitchd that serves
// the node's OVSDB: with a unix: OVSDB socket, the *.ctl socket next to
// it that answers as ovs-vswitchd (a packaged OVS keeps both in its run
// directory, tests in one directory each); else ovs-appctl's default.
func (s *Service) appctlTarget(ctx context.Context) string {
	s.targetMu.Lock()
	defer s.targetMu.Unlock()
	if s.target != "" {
		return s.target // found once; looked for again until then
	}
	path, ok := strings.CutPrefix(s.cfg.OVSDB, "unix:")
	if !ok {
		return ""
	}
	ctls, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.ctl"))
	for _, c := range ctls {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		out, err := exec.CommandContext(cctx, "ovs-appctl", "-t", c, "version").CombinedOutput()
		cancel()
		if err == nil && strings.HasPrefix(string(out), "ovs-vswitchd") {
			s.target = c
			break
		}
	}
	return s.target
}

// live runs ofproto/trace through go-openvswitch and compares its
// verdict with the walk's.
func (s *Service) live(ctx context.Context, pkt trace.Packet, req TraceRequest, r trace.Result) (*LiveTrace, error) {
	target := s.appctlTarget(ctx)
	var raw []byte
	var mu sync.Mutex
	client := ovs.New(ovs.Exec(func(cmd string, args ...string) ([]byte, error) {
		if target != "" && cmd == "ovs-appctl" {
			args = append([]string{"-t", target}, args...)
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c := exec.CommandContext(cctx, cmd, args...)
		c.Env = os.Environ()
		out, err := c.CombinedOutput()
		mu.Lock()
		raw = out
		mu.Unlock()
		return out, err
	}))
	proto := ovs.ProtocolICMPv4
	matches := []ovs.Match{ovs.InPortMatch(int(pkt.InPort)), ovs.DataLinkSource(pkt.EthSrc.String()),
		ovs.DataLinkDestination(pkt.EthDst.String()), ovs.NetworkSource(pkt.IPSrc.String()),
		ovs.NetworkDestination(pkt.IPDst.String()), ovs.NetworkTTL(64)}
	switch pkt.Proto {
	case of.IPProtoTCP:
		proto = ovs.ProtocolTCPv4
		matches = append(matches, ovs.TransportSourcePort(pkt.SrcPort), ovs.TransportDestinationPort(pkt.DstPort))
	case of.IPProtoUDP:
		proto = ovs.ProtocolUDPv4
		matches = append(matches, ovs.TransportSourcePort(pkt.SrcPort), ovs.TransportDestinationPort(pkt.DstPort))
	default:
		matches = append(matches, ovs.ICMPType(8))
	}
	var params []string
	if req.CTEst {
		params = append(params, "--ct-next", "trk,est")
	}
	pt, err := client.App.ProtoTrace(s.cfg.Bridge, proto, matches, params...)
	mu.Lock()
	text := string(raw)
	mu.Unlock()
	var oe *ovs.Error
	if err != nil && (errors.As(err, &oe) || text == "") {
		return nil, fmt.Errorf("%w: ofproto/trace on %s: %v", trace.ErrUnavailable, s.cfg.Bridge, err)
	}
	lt := &LiveTrace{Raw: text}
	if pt != nil {
		lt.Command = pt.CommandStr
	} else {
		lt.Command = "ovs-appctl ofproto/trace " + s.cfg.Bridge + " (go-openvswitch could not parse its output: " + err.Error() + ")"
	}
	if m := dpActRe.FindAllStringSubmatch(text, -1); len(m) > 0 {
		lt.DatapathActions = strings.TrimSpace(m[len(m)-1][1])
	}
	if m := finalRe.FindAllStringSubmatch(text, -1); len(m) > 0 {
		lt.FinalFlow = strings.TrimSpace(m[len(m)-1][1])
	}
	lt.Tables = liveHops(text, s.cfg.Bridge)
	lt.Differences = compare(r, lt)
	lt.Agrees = len(lt.Differences) == 0
	return lt, nil
}

// liveHops are the table lookups ofproto/trace reports on the bridge,
// in order, across recirculations (a patch port's peer bridge aside).
func liveHops(text, bridge string) []LiveHop {
	var out []LiveHop
	on := false
	for _, line := range strings.Split(text, "\n") {
		if m := bridgeRe.FindStringSubmatch(line); m != nil {
			on = m[1] == bridge
			continue
		}
		m := liveHopRe.FindStringSubmatch(line)
		if !on || m == nil {
			continue
		}
		h := LiveHop{Match: m[2], Cookie: m[4]}
		h.Table, _ = strconv.Atoi(m[1])
		h.Priority, _ = strconv.Atoi(m[3])
		out = append(out, h)
	}
	return out
}

// goTables are the tables the walk looked the packet up in, less the
// lookups whose punt the controller answered by re-injecting the packet
// (a switch that has the answer's flows goes straight on).
func goTables(r trace.Result) []int {
	var out []int
	for _, h := range r.Hops {
		if h.Punt != nil && h.Punt.Resumed != nil {
			continue
		}
		out = append(out, int(h.Table))
	}
	return out
}

// compare says where ofproto/trace's verdict differs from the walk's:
// the end (drop, punt, output), a tunnel's key and destination, the
// frame's addresses as it leaves.
func compare(r trace.Result, lt *LiveTrace) []string {
	var diffs []string
	dp := lt.DatapathActions
	ovsDrop := dp == "" || dp == "drop"
	ovsPunt := strings.Contains(dp, "userspace(") && strings.Contains(dp, "controller")
	ovsTunnel := strings.Contains(dp, "tnl_push(") || strings.Contains(dp, "tunnel(")
	final := finalFields(lt.FinalFlow)

	switch r.End.Kind {
	case trace.EndDrop:
		if !ovsDrop {
			diffs = append(diffs, fmt.Sprintf("Go drops the packet in %s; OVS's datapath actions are %q", r.End.Stage, dp))
		} else if n := len(lt.Tables); n > 0 && len(r.Hops) > 0 {
			if last := r.Hops[len(r.Hops)-1]; lt.Tables[n-1].Table != int(last.Table) {
				diffs = append(diffs, fmt.Sprintf("Go drops in table %d (%s); OVS's last lookup is in table %d", last.Table, last.Stage, lt.Tables[n-1].Table))
			}
		}
	case trace.EndPunt:
		if !ovsPunt {
			diffs = append(diffs, fmt.Sprintf("Go sends the packet to the controller (%s); OVS's datapath actions are %q", r.End.Reason, dp))
		}
	case trace.EndOutput:
		if ovsPunt {
			diffs = append(diffs, fmt.Sprintf("OVS sends the packet to the controller (%q): the flows a punt installs (reactive) are not on the switch yet, or expired; the first packet installs them", dp))
			break
		}
		if ovsDrop {
			diffs = append(diffs, fmt.Sprintf("Go sends the packet out (%s); OVS drops it", trace.FormatOutput(r.End.Outputs[0])))
			break
		}
		o := r.End.Outputs[len(r.End.Outputs)-1]
		if o.TunID != nil {
			if !ovsTunnel {
				diffs = append(diffs, fmt.Sprintf("Go sends the packet into tunnel %s; OVS's datapath actions %q hold no tunnel", o.Name, dp))
			} else {
				if m := tunKeyRe.FindStringSubmatch(dp); m == nil || m[1] != strconv.FormatUint(*o.TunID, 16) {
					diffs = append(diffs, fmt.Sprintf("tun_id: Go %#x, OVS's datapath actions %q", *o.TunID, dp))
				}
				if !strings.Contains(dp, "dst="+o.TunDst+",") && !strings.Contains(dp, "dst="+o.TunDst+")") {
					diffs = append(diffs, fmt.Sprintf("tun_dst: Go %s, OVS's datapath actions %q", o.TunDst, dp))
				}
			}
		} else if ovsTunnel {
			diffs = append(diffs, fmt.Sprintf("Go sends the packet out %s port %s; OVS into a tunnel: %q", o.Kind, o.Name, dp))
		} else if !dpOutputRe.MatchString(dp) {
			diffs = append(diffs, fmt.Sprintf("Go sends the packet out port %s; OVS's datapath actions %q output nothing", o.Name, dp))
		}
		if v, ok := final["dl_src"]; ok && len(r.End.Outputs) == 1 && v != o.EthSrc {
			diffs = append(diffs, fmt.Sprintf("eth_src: Go %s, OVS %s", o.EthSrc, v))
		}
		if v, ok := final["dl_dst"]; ok && len(r.End.Outputs) == 1 && v != o.EthDst {
			diffs = append(diffs, fmt.Sprintf("eth_dst: Go %s, OVS %s", o.EthDst, v))
		}
	}
	var ovsTables []int
	for _, h := range lt.Tables {
		ovsTables = append(ovsTables, h.Table)
	}
	if g := goTables(r); !slices.Equal(g, ovsTables) {
		diffs = append(diffs, fmt.Sprintf("tables: Go looks the packet up in %v, OVS in %v", g, ovsTables))
	}
	return diffs
}

// finalFields reads ofproto/trace's final flow (key=value,...); an
// "unchanged" one has none.
func finalFields(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if k == "dl_src" || k == "dl_dst" {
			if _, err := netip.ParseAddr(v); err == nil {
				continue
			}
		}
		out[k] = v
	}
	return out
}
