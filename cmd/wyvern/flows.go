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
	cmd := &cobra.Command{Use: "flows [--port P | --chassis C]", Short: "The flows serving a port or a chassis, app and object decoded, desired against installed",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if port != "" && chassis != "" {
				return fmt.Errorf("--port or --chassis, not both")
			}
			q := url.Values{}
			if port != "" {
				pid, err := c.resolve(portKind, port)
				if err != nil {
					return err
				}
				q.Set("port", pid)
			}
			if chassis != "" {
				q.Set("chassis", chassis)
			}
			var a flowsAnswer
			raw, err := c.getInto("/debug/flows?"+q.Encode(), &a)
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

func puntsCmd(c *client, p *printer) *cobra.Command {
	return &cobra.Command{Use: "punts", Short: "The node's punt counters (/debug/punts)", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			out, err := c.do("GET", "/debug/punts", nil)
			if err != nil {
				return err
			}
			return p.json(out)
		}}
}
