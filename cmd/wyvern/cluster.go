package main

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// The chassis, the controller cluster and its members, and a node's punt
// counters: what an operator asks of the cluster itself.

var memberColumns = []string{"id", "suffrage", "state", "raft_address", "api_address", "openflow_address"}

func chassisCmd(c *client, p *printer) *cobra.Command {
	cmd := &cobra.Command{Use: "chassis", Short: "Registered chassis", Long: "Registered chassis. List them with: wyvern chassis list"}
	cmd.AddCommand(&cobra.Command{Use: "list", Short: "List chassis", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			out, err := c.do("GET", "/v2.0/chassis", nil)
			if err != nil {
				return err
			}
			return p.table(chassisKind.columns, items(out, "chassis"))
		}},
		&cobra.Command{Use: "delete NAME", Short: "Take a chassis out of service (admin)",
			Long: `Take a chassis out of service (admin): the cluster forgets it, its tunnels and
the flows of its ports go from every other bridge, and its ports stay, unplugged
(binding:host_id kept). A chassis a member node runs is refused until that member
is removed (wyvern cluster member remove), or the node would register it again.`,
			Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, args []string) error {
				if _, err := c.do("DELETE", "/v2.0/chassis/"+url.PathEscape(args[0]), nil); err != nil {
					return err
				}
				p.say("deleted chassis %s\n", args[0])
				return nil
			}},
		chassisJoinCmd(c, p))
	return cmd
}

// cluster is GET /v2.0/cluster's object.
func (c *client) cluster() (map[string]any, error) {
	out, err := c.do("GET", "/v2.0/cluster", nil)
	if err != nil {
		return nil, err
	}
	cl, ok := out["cluster"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("GET /v2.0/cluster: no cluster in the answer")
	}
	return cl, nil
}

func clusterCmd(c *client, p *printer) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "The controller cluster",
		Long: "The controller cluster. Its members and leader: wyvern cluster status"}
	cmd.AddCommand(&cobra.Command{Use: "status", Short: "Members, leader and applied index", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cl, err := c.cluster()
			if err != nil {
				return err
			}
			if p.format != "table" || len(p.columns) > 0 {
				return p.object(cl)
			}
			fmt.Fprintf(p.out, "leader: %s   applied index: %v   commit index: %v\n", cell(cl["leader"]), cl["applied_index"], cl["commit_index"])
			return p.table(memberColumns, items(cl, "members"))
		}})
	member := &cobra.Command{Use: "member", Short: "The cluster's members",
		Long: "The cluster's members. List them with: wyvern cluster member list"}
	member.AddCommand(&cobra.Command{Use: "list", Short: "List the members", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			cl, err := c.cluster()
			if err != nil {
				return err
			}
			return p.table(memberColumns, items(cl, "members"))
		}},
		&cobra.Command{Use: "remove ID", Short: "Remove a member from the cluster (admin)",
			Long: `Remove a member from the cluster (admin): it no longer votes or receives the log.
A node whose data directory is lost is removed this way, then joins again as new
(start it with an empty data directory and --join).`,
			Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, args []string) error {
				id := args[0]
				// The API answers 204 to the removal of an id it does not
				// know (raft has nothing to remove): ask first, so that a
				// mistyped id is not taken for a removal.
				cl, err := c.cluster()
				if err != nil {
					return fmt.Errorf("removing member %s: %w", id, err)
				}
				var ids []string
				for _, m := range items(cl, "members") {
					ids = append(ids, cell(m["id"]))
				}
				if !slices.Contains(ids, id) {
					return fmt.Errorf("removing member %s: no such member of the cluster (members: %s)", id, strings.Join(ids, ", "))
				}
				if _, err := c.do("DELETE", "/v2.0/cluster/members/"+url.PathEscape(id), nil); err != nil {
					return fmt.Errorf("removing member %s: %w", id, err)
				}
				p.say("removed member %s from the cluster; to join again it needs an empty data directory and --join\n", id)
				return nil
			}})
	cmd.AddCommand(member)
	return cmd
}

func puntsCmd(c *client, p *printer) *cobra.Command {
	return &cobra.Command{Use: "punts", Short: "The node's punt counters, and per bridge its sources, meters and rejected flows (admin)",
		Long: `The punt counters of the node the API address names (GET /debug/punts), and per
bridge connected to it: what each source punted and what the controller's fair
queue dropped, what each punt meter let through and dropped in the datapath, and
the flows the switch rejected. -f json or -f yaml gives the answer as it is;
-c picks the node's counters.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			out, err := c.do("GET", "/debug/punts", nil)
			if err != nil {
				return err
			}
			if p.format != "table" || len(p.columns) > 0 {
				return p.object(out)
			}
			return p.punts(out)
		}}
}

// punts shows GET /debug/punts as tables.
func (p printer) punts(out map[string]any) error {
	fmt.Fprintf(p.out, "node: %s\n\n", cell(out["node"]))
	var counters []map[string]any
	for k, v := range out {
		if k != "node" && k != "switches" {
			counters = append(counters, map[string]any{"counter": k, "value": v})
		}
	}
	sort.Slice(counters, func(i, j int) bool { return counters[i]["counter"].(string) < counters[j]["counter"].(string) })
	if err := p.table([]string{"counter", "value"}, counters); err != nil {
		return err
	}
	switches := items(out, "switches")
	if len(switches) == 0 {
		fmt.Fprintln(p.out, "\nno bridge connected to this node")
	}
	for _, sw := range switches {
		var facts []string
		for _, k := range sortedKeys(sw) {
			switch sw[k].(type) {
			case []any, map[string]any:
			default:
				if k != "dpid" {
					facts = append(facts, k+" "+cell(sw[k]))
				}
			}
		}
		fmt.Fprintf(p.out, "\nbridge %s: %s\n", cell(sw["dpid"]), strings.Join(facts, ", "))
		if srcs := items(sw, "sources"); len(srcs) > 0 {
			fmt.Fprintln(p.out, "\npunt sources (fair queue):")
			if err := p.table(columnsOf(srcs, "port_id", "port_key", "in_port", "received", "dropped"), srcs); err != nil {
				return err
			}
		}
		if ms := items(sw, "meters"); len(ms) > 0 {
			fmt.Fprintln(p.out, "\npunt meters (datapath):")
			if err := p.table(columnsOf(ms, "meter_id", "serves", "port_id", "packets", "dropped"), ms); err != nil {
				return err
			}
		}
		if err := p.rejected(sw["rejected_flows"]); err != nil {
			return err
		}
	}
	return nil
}

// rejected shows the flows a switch refused: flow to error, or a list of
// objects.
func (p printer) rejected(v any) error {
	var rows []map[string]any
	cols := []string{"flow", "error"}
	switch x := v.(type) {
	case map[string]any:
		for _, f := range sortedKeys(x) {
			rows = append(rows, map[string]any{"flow": f, "error": x[f]})
		}
	case []any:
		for _, e := range x {
			if m, ok := e.(map[string]any); ok {
				rows = append(rows, m)
			} else {
				rows = append(rows, map[string]any{"flow": e})
			}
		}
		cols = columnsOf(rows, "flow", "error")
	}
	if len(rows) == 0 {
		fmt.Fprintln(p.out, "\nrejected flows: none")
		return nil
	}
	fmt.Fprintf(p.out, "\nrejected (quarantined) flows: %d\n", len(rows))
	return p.table(cols, rows)
}

// columnsOf are the columns wanted that some row has, then any other.
func columnsOf(rows []map[string]any, wanted ...string) []string {
	var cols, rest []string
	for _, r := range rows {
		for k := range r {
			if !slices.Contains(wanted, k) && !slices.Contains(rest, k) {
				rest = append(rest, k)
			}
		}
	}
	for _, w := range wanted {
		for _, r := range rows {
			if _, ok := r[w]; ok {
				cols = append(cols, w)
				break
			}
		}
	}
	sort.Strings(rest)
	return append(cols, rest...)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
