package main

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// flowsAnswer is /debug/flows as the CLI reads it.
type flowsAnswer struct {
	Node      string         `json:"node"`
	Chassis   string         `json:"chassis"`
	DPID      string         `json:"dpid"`
	Round     uint16         `json:"round"`
	Mode      string         `json:"mode"`
	Compared  bool           `json:"compared"`
	DumpError string         `json:"dump_error"`
	Counts    map[string]int `json:"counts"`
	Flows     []struct {
		Table     uint8  `json:"table"`
		Stage     string `json:"stage"`
		Priority  uint16 `json:"priority"`
		App       string `json:"app"`
		Object    string `json:"object"`
		Flow      string `json:"flow"`
		State     string `json:"state"`
		Installed string `json:"installed"`
	} `json:"flows"`
}

func flowsCmd(c *client, p *printer) *cobra.Command {
	var port, chassis string
	cmd := &cobra.Command{Use: "flows [--port P | --chassis C]", Short: "The flows serving a port or a chassis (asked of the node managing it), app and object decoded, desired against installed",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if port != "" && chassis != "" {
				return fmt.Errorf("--port or --chassis, not both")
			}
			q := url.Values{}
			node := c
			if port != "" {
				pid, err := c.resolve(portKind, port)
				if err != nil {
					return err
				}
				q.Set("port", pid)
				node = c.managing(c.portChassis(pid))
			}
			if chassis != "" {
				q.Set("chassis", chassis)
				node = c.managing(chassis)
			}
			var a flowsAnswer
			raw, err := node.getInto("/debug/flows?"+q.Encode(), &a)
			if err != nil {
				return err
			}
			if p.format == "json" {
				return p.json(raw)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "chassis %s (node %s, dpid %s, %s, round %d)", a.Chassis, a.Node, a.DPID, a.Mode, a.Round)
			if !a.Compared {
				fmt.Fprintf(w, "; installed flows not compared: %s", a.DumpError)
			}
			var counts []string
			for k, n := range a.Counts {
				counts = append(counts, fmt.Sprintf("%s %d", k, n))
			}
			sort.Strings(counts)
			fmt.Fprintf(w, "\n%s\n\n", strings.Join(counts, ", "))
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TABLE\tSTAGE\tPRIO\tAPP\tOBJECT\tSTATE\tFLOW")
			for _, f := range a.Flows {
				fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\n", f.Table, f.Stage, f.Priority, f.App, f.Object, f.State, f.Flow)
				if f.Installed != "" {
					fmt.Fprintf(tw, "\t\t\t\t\tinstalled\t%s\n", f.Installed)
				}
			}
			return tw.Flush()
		}}
	cmd.Flags().StringVar(&port, "port", "", "a port (id or name): the flows whose cookie names it")
	cmd.Flags().StringVar(&chassis, "chassis", "", "a chassis (default: the node's own)")
	return cmd
}

// managing is a client of the node that manages a chassis — the node of
// its node_id, at its api_address in the cluster status, over the same
// scheme and token — or c itself when that cannot be found out.
func (c *client) managing(chassis string) *client {
	if chassis == "" {
		return c
	}
	ch, err := c.do("GET", "/v2.0/chassis/"+url.PathEscape(chassis), nil)
	if err != nil {
		return c
	}
	m, _ := ch["chassis"].(map[string]any)
	node, _ := m["node_id"].(string)
	st, err := c.do("GET", "/v2.0/cluster", nil)
	if err != nil || node == "" {
		return c
	}
	cl, _ := st["cluster"].(map[string]any)
	if self, _ := cl["node"].(string); self == node {
		return c
	}
	members, _ := cl["members"].([]any)
	for _, x := range members {
		mm, _ := x.(map[string]any)
		if id, _ := mm["id"].(string); id == node {
			if api, _ := mm["api_address"].(string); api != "" {
				scheme, _, _ := strings.Cut(c.base, "://")
				return &client{base: scheme + "://" + api, token: c.token, http: c.http}
			}
		}
	}
	return c
}

// portChassis is the chassis a port is bound to ("" when none).
func (c *client) portChassis(id string) string {
	p, err := c.do("GET", "/v2.0/ports/"+url.PathEscape(id), nil)
	if err != nil {
		return ""
	}
	m, _ := p["port"].(map[string]any)
	host, _ := m["binding:host_id"].(string)
	return host
}
