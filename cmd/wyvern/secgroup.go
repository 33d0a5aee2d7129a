package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// Security groups, their rules, and the groups of a port.

var (
	securityGroupKind = kind{"security_group", "security_groups", []string{"id", "name", "description", "project_id", "stateful"}, "name"}
	ruleKind          = kind{"security_group_rule", "security_group_rules", []string{"id", "direction", "protocol", "port_range_min", "port_range_max",
		"remote_ip_prefix", "remote_group_id", "description"}, "id"}
)

func securityGroupCmd(c *client, p *printer) *cobra.Command {
	var description string
	var stateless bool
	create := &cobra.Command{Use: "create NAME", Short: "Create a security group (it lets its ports send anything out)", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			body := map[string]any{"name": args[0], "description": description}
			if stateless {
				body["stateful"] = false
			}
			return createAndShow(c, p, securityGroupKind, body)
		}}
	create.Flags().StringVar(&description, "description", "", "description")
	create.Flags().BoolVar(&stateless, "stateless", false, "stateless: replies are not let through by themselves")
	cmd := resourceCmd(c, p, securityGroupKind, create, securityGroupSet(c, p))
	cmd.Use, cmd.Short = "security-group", "Manage security groups and their rules"
	cmd.Long = cmd.Short + ". List them with: wyvern security-group list; a group's rules: wyvern security-group rules GROUP"
	cmd.AddCommand(ruleCreate(c, p), ruleList(c, p), ruleDelete(c, p))
	return cmd
}

func ruleCreate(c *client, p *printer) *cobra.Command {
	var protocol, ports, remoteIP, remoteGroup, description string
	var egress bool
	var icmpType, icmpCode int
	cmd := &cobra.Command{Use: "add-rule GROUP", Short: "Admit traffic into (or, with --egress, out of) a group's ports", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			gid, err := c.resolve(securityGroupKind, args[0])
			if err != nil {
				return err
			}
			body := map[string]any{"security_group_id": gid, "direction": "ingress", "ethertype": "IPv4"}
			if egress {
				body["direction"] = "egress"
			}
			if protocol != "" && protocol != "any" {
				body["protocol"] = protocol
			}
			if ports != "" {
				lo, hi, ok := strings.Cut(ports, ":")
				if !ok {
					hi = lo
				}
				min, err1 := strconv.Atoi(lo)
				max, err2 := strconv.Atoi(hi)
				if err1 != nil || err2 != nil {
					return fmt.Errorf("--port %q: want PORT or MIN:MAX", ports)
				}
				body["port_range_min"], body["port_range_max"] = min, max
			}
			if cmd.Flags().Changed("icmp-type") {
				body["port_range_min"] = icmpType
			}
			if cmd.Flags().Changed("icmp-code") {
				body["port_range_max"] = icmpCode
			}
			if remoteIP != "" {
				body["remote_ip_prefix"] = remoteIP
			}
			if remoteGroup != "" {
				rid, err := c.resolve(securityGroupKind, remoteGroup)
				if err != nil {
					return err
				}
				body["remote_group_id"] = rid
			}
			if description != "" {
				body["description"] = description
			}
			return createAndShow(c, p, ruleKind, body)
		}}
	cmd.Flags().BoolVar(&egress, "egress", false, "a rule for traffic the ports send (default: traffic they receive)")
	cmd.Flags().StringVar(&protocol, "protocol", "", "tcp, udp, icmp, another name Neutron knows, or a number 0..255 (default any)")
	cmd.Flags().StringVar(&ports, "port", "", "destination port or MIN:MAX (tcp, udp, udplite, sctp, dccp)")
	cmd.Flags().IntVar(&icmpType, "icmp-type", 0, "ICMP type (with --protocol icmp)")
	cmd.Flags().IntVar(&icmpCode, "icmp-code", 0, "ICMP code (with --icmp-type)")
	cmd.Flags().StringVar(&remoteIP, "remote-ip", "", "the other end's prefix (default anywhere)")
	cmd.Flags().StringVar(&remoteGroup, "remote-group", "", "the other end: the members of this group (id or name)")
	cmd.Flags().StringVar(&description, "description", "", "description")
	return cmd
}

func ruleList(c *client, p *printer) *cobra.Command {
	return &cobra.Command{Use: "rules GROUP", Short: "List a group's rules", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			gid, err := c.resolve(securityGroupKind, args[0])
			if err != nil {
				return err
			}
			out, err := c.do("GET", ruleKind.route()+"?security_group_id="+url.QueryEscape(gid), nil)
			if err != nil {
				return err
			}
			return p.table(ruleKind.columns, items(out, ruleKind.plural))
		}}
}

func ruleDelete(c *client, p *printer) *cobra.Command {
	return &cobra.Command{Use: "delete-rule RULE", Short: "Delete a rule", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if _, err := c.do("DELETE", ruleKind.route()+"/"+url.PathEscape(args[0]), nil); err != nil {
				return err
			}
			p.say("deleted security group rule %s\n", args[0])
			return nil
		}}
}

// portCmd is the generic port commands and set-groups.
func portCmd(c *client, p *printer) *cobra.Command {
	cmd := resourceCmd(c, p, portKind, portCreate(c, p), portSet(c, p))
	cmd.AddCommand(&cobra.Command{Use: "set-groups PORT [GROUP...]", Short: "Give a port exactly these security groups (none: no group)", Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			pid, err := c.resolve(portKind, args[0])
			if err != nil {
				return err
			}
			body := map[string]any{}
			if err := c.securityGroups(body, args[1:], len(args) == 1); err != nil {
				return err
			}
			out, err := c.do("PUT", portKind.route()+"/"+url.PathEscape(pid), map[string]any{"port": body})
			if err != nil {
				return err
			}
			return p.object(out["port"].(map[string]any))
		}})
	return cmd
}

// securityGroups puts the groups named (ids or names) in a port body:
// none named leaves the field out, unless none is asked for.
func (c *client) securityGroups(body map[string]any, refs []string, none bool) error {
	if none {
		body["security_groups"] = []string{}
		return nil
	}
	if len(refs) == 0 {
		return nil
	}
	ids := make([]string, 0, len(refs))
	for _, r := range refs {
		id, err := c.resolve(securityGroupKind, r)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	body["security_groups"] = ids
	return nil
}
