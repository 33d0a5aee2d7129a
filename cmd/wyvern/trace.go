package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/wyvern-sdn/wyvern/trace"
)

// errLiveDiffers makes `wyvern trace --live` exit non-zero when OVS and
// the walk in Go disagree.
var errLiveDiffers = errors.New("the live trace differs from the walk in Go")

// traceAnswer is /debug/trace as the CLI reads it.
type traceAnswer struct {
	Node        string   `json:"node"`
	Chassis     string   `json:"chassis"`
	Mode        string   `json:"mode"`
	Assumptions []string `json:"assumptions"`
	Packet      struct {
		InPort  uint32 `json:"in_port"`
		Port    string `json:"port"`
		EthSrc  string `json:"eth_src"`
		EthDst  string `json:"eth_dst"`
		IPSrc   string `json:"ip_src"`
		IPDst   string `json:"ip_dst"`
		Proto   string `json:"proto"`
		DstPort uint16 `json:"dst_port"`
	} `json:"packet"`
	Hops []trace.Hop `json:"hops"`
	End  trace.End   `json:"end"`
	Live *struct {
		Command         string   `json:"command"`
		DatapathActions string   `json:"datapath_actions"`
		FinalFlow       string   `json:"final_flow"`
		Agrees          bool     `json:"agrees"`
		Differences     []string `json:"differences"`
		Raw             string   `json:"raw"`
	} `json:"live"`
}

// getInto GETs a path and decodes its JSON answer into out.
func (c *client) getInto(path string, out any) (map[string]any, error) {
	m, err := c.do("GET", path, nil)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return m, json.Unmarshal(b, out)
}

func traceCmd(c *client, p *printer) *cobra.Command {
	var from, to, srcIP, ct string
	var tcp, udp int
	var live, flows bool
	cmd := &cobra.Command{Use: "trace --from PORT --to IP|MAC", Short: "Walk a packet through its chassis' flows, stage by stage (--live: and through OVS's ofproto/trace)",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return fmt.Errorf("--from and --to are required")
			}
			if tcp != 0 && udp != 0 {
				return fmt.Errorf("--tcp or --udp, not both")
			}
			pid, err := c.resolve(portKind, from)
			if err != nil {
				return err
			}
			q := url.Values{"from": {pid}, "to": {to}}
			if tcp != 0 {
				q.Set("tcp", strconv.Itoa(tcp))
			}
			if udp != 0 {
				q.Set("udp", strconv.Itoa(udp))
			}
			if srcIP != "" {
				q.Set("src_ip", srcIP)
			}
			if live {
				q.Set("live", "true")
			}
			if ct != "" {
				q.Set("ct", ct)
			}
			var a traceAnswer
			// The port's chassis is explained by the node that manages it.
			raw, err := c.managing(c.portChassis(pid)).getInto("/debug/trace?"+q.Encode(), &a)
			if err != nil {
				return err
			}
			if p.format == "json" {
				if err := p.json(raw); err != nil {
					return err
				}
			} else {
				printTrace(cmd, a, flows)
			}
			if a.Live != nil && !a.Live.Agrees {
				return errLiveDiffers
			}
			return nil
		}}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "source port (id or name)")
	f.StringVar(&to, "to", "", "destination: an IPv4 address or a MAC")
	f.IntVar(&tcp, "tcp", 0, "a TCP packet to this port")
	f.IntVar(&udp, "udp", 0, "a UDP packet to this port")
	f.StringVar(&srcIP, "src-ip", "", "source address instead of the port's own (a spoofed one)")
	f.BoolVar(&live, "live", false, "also run ofproto/trace on the port's chassis and flag differences (exit 1 on any)")
	f.StringVar(&ct, "ct", "", "conntrack state assumed at every ct(): new (default) or est")
	f.BoolVar(&flows, "flows", false, "print the flow each hop matched")
	return cmd
}

func printTrace(cmd *cobra.Command, a traceAnswer, flows bool) {
	w := cmd.OutOrStdout()
	pk := a.Packet
	proto := pk.Proto
	if pk.DstPort != 0 {
		proto += " " + strconv.Itoa(int(pk.DstPort))
	}
	fmt.Fprintf(w, "chassis %s (node %s, %s): from port %s (in_port %d)\n  %s > %s, %s > %s, %s\n", a.Chassis, a.Node, a.Mode,
		pk.Port, pk.InPort, pk.EthSrc, pk.EthDst, pk.IPSrc, pk.IPDst, proto)
	for _, s := range a.Assumptions {
		fmt.Fprintf(w, "  assumes %s\n", s)
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, trace.Format(trace.Result{Hops: a.Hops, End: a.End}, flows))
	if l := a.Live; l != nil {
		fmt.Fprintf(w, "\nlive: %s\n  datapath actions: %s\n  final flow: %s\n", l.Command, l.DatapathActions, l.FinalFlow)
		if l.Agrees {
			fmt.Fprintln(w, "  OVS agrees with the walk in Go")
		} else {
			fmt.Fprintf(w, "  DIFFERS:\n    %s\n", strings.Join(l.Differences, "\n    "))
		}
	}
}
