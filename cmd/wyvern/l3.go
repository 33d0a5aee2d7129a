package main

import (
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// Routers, their gateways, and floating IPs: the commands of Neutron's L3.

func routerCmd(c *client, p *printer) *cobra.Command {
	create := &cobra.Command{Use: "create NAME", Short: "Create a distributed router", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return createAndShow(c, p, routerKind, map[string]any{"name": args[0]})
		}}
	cmd := resourceCmd(c, p, routerKind, create, routerSet(c, p))
	iface := func(use, action string) *cobra.Command {
		return &cobra.Command{Use: use + " ROUTER SUBNET", Short: strings.ReplaceAll(action, "_", " "), Args: cobra.ExactArgs(2),
			RunE: func(_ *cobra.Command, args []string) error {
				rid, err := c.resolve(routerKind, args[0])
				if err != nil {
					return err
				}
				sid, err := c.resolve(subnetKind, args[1])
				if err != nil {
					return err
				}
				out, err := c.do("PUT", "/v2.0/routers/"+url.PathEscape(rid)+"/"+action, map[string]any{"subnet_id": sid})
				if err != nil {
					return err
				}
				return p.object(out)
			}}
	}
	cmd.AddCommand(iface("add-interface", "add_router_interface"), iface("remove-interface", "remove_router_interface"),
		routerSetGateway(c, p), routerClearGateway(c, p))
	return cmd
}

// updateRouter PUTs a router body and shows the router.
func (c *client) updateRouter(p *printer, ref string, body map[string]any) error {
	rid, err := c.resolve(routerKind, ref)
	if err != nil {
		return err
	}
	out, err := c.do("PUT", "/v2.0/routers/"+url.PathEscape(rid), map[string]any{"router": body})
	if err != nil {
		return err
	}
	return p.object(out["router"].(map[string]any))
}

func routerSetGateway(c *client, p *printer) *cobra.Command {
	var snat bool
	var fixedIPs []string
	cmd := &cobra.Command{Use: "set-gateway ROUTER NETWORK", Short: "Give a router its gateway on an external network", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			nid, err := c.resolve(networkKind, args[1])
			if err != nil {
				return err
			}
			gw := map[string]any{"network_id": nid}
			if cmd.Flags().Changed("enable-snat") {
				gw["enable_snat"] = snat
			}
			if len(fixedIPs) > 0 {
				f, err := c.fixedIPs(fixedIPs)
				if err != nil {
					return err
				}
				gw["external_fixed_ips"] = f
			}
			return c.updateRouter(p, args[0], map[string]any{"external_gateway_info": gw})
		}}
	cmd.Flags().BoolVar(&snat, "enable-snat", true, "SNAT the router's subnets to the gateway address (admin; the default is true)")
	cmd.Flags().StringArrayVar(&fixedIPs, "fixed-ip", nil, "subnet=SUBNET[,ip=IP] on the external network, repeatable (admin; allocated when absent)")
	return cmd
}

func routerClearGateway(c *client, p *printer) *cobra.Command {
	return &cobra.Command{Use: "clear-gateway ROUTER", Short: "Remove a router's gateway", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			return c.updateRouter(p, args[0], map[string]any{"external_gateway_info": nil})
		}}
}

func floatingIPCmd(c *client, p *printer) *cobra.Command {
	cmd := resourceCmd(c, p, floatingIPKind, floatingIPCreate(c, p), floatingIPSet(c, p))
	cmd.AddCommand(portForwardingCmd(c, p))
	return cmd
}

func floatingIPCreate(c *client, p *printer) *cobra.Command {
	var port, fixed, address, subnet string
	cmd := &cobra.Command{Use: "create NETWORK", Short: "Take a floating IP from an external network", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			nid, err := c.resolve(networkKind, args[0])
			if err != nil {
				return err
			}
			body := map[string]any{"floating_network_id": nid}
			if port != "" {
				pid, err := c.resolve(portKind, port)
				if err != nil {
					return err
				}
				body["port_id"] = pid
			}
			if subnet != "" {
				sid, err := c.resolve(subnetKind, subnet)
				if err != nil {
					return err
				}
				body["subnet_id"] = sid
			}
			if fixed != "" {
				body["fixed_ip_address"] = fixed
			}
			if address != "" {
				body["floating_ip_address"] = address
			}
			return createAndShow(c, p, floatingIPKind, body)
		}}
	cmd.Flags().StringVar(&port, "port", "", "port to associate (id or name)")
	cmd.Flags().StringVar(&fixed, "fixed-ip-address", "", "which of the port's addresses (default its first)")
	cmd.Flags().StringVar(&address, "address", "", "the floating address (admin; allocated when absent)")
	cmd.Flags().StringVar(&subnet, "subnet", "", "the external network's subnet to allocate from")
	return cmd
}

var portForwardingColumns = []string{"id", "protocol", "external_port", "internal_ip_address", "internal_port", "internal_port_id", "description"}

// portForwardingCmd: a floating IP's port forwardings, each a port of
// the floating address sent on to a port of an internal address.
func portForwardingCmd(c *client, p *printer) *cobra.Command {
	cmd := &cobra.Command{Use: "port-forwarding", Short: "Port forwardings of a floating IP",
		Long: "Port forwardings of a floating IP. List them with: wyvern floatingip port-forwarding list FLOATING_IP"}
	under := func(fip string) (string, error) {
		fid, err := c.resolve(floatingIPKind, fip)
		if err != nil {
			return "", err
		}
		return floatingIPKind.route() + "/" + url.PathEscape(fid) + "/port_forwardings", nil
	}
	create := &cobra.Command{Use: "create FLOATING_IP", Short: "Forward a port of a floating IP to a port's address", Args: cobra.ExactArgs(1)}
	f := &fields{cmd: create}
	portForwardingFields(f)
	for _, req := range []string{"protocol", "external-protocol-port", "internal-protocol-port", "port"} {
		_ = create.MarkFlagRequired(req)
	}
	create.RunE = func(_ *cobra.Command, args []string) error {
		body := map[string]any{}
		for _, add := range f.adds {
			if err := add(c, body); err != nil {
				return err
			}
		}
		path, err := under(args[0])
		if err != nil {
			return err
		}
		out, err := c.do("POST", path, map[string]any{"port_forwarding": body})
		if err != nil {
			return err
		}
		obj, _ := out["port_forwarding"].(map[string]any)
		return p.object(obj)
	}
	list := &cobra.Command{Use: "list FLOATING_IP", Short: "List a floating IP's port forwardings", Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			path, err := under(args[0])
			if err != nil {
				return err
			}
			out, err := c.do("GET", path, nil)
			if err != nil {
				return err
			}
			return p.table(portForwardingColumns, items(out, "port_forwardings"))
		}}
	show := &cobra.Command{Use: "show FLOATING_IP ID", Short: "Show one port forwarding", Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			path, err := under(args[0])
			if err != nil {
				return err
			}
			out, err := c.do("GET", path+"/"+url.PathEscape(args[1]), nil)
			if err != nil {
				return err
			}
			obj, _ := out["port_forwarding"].(map[string]any)
			return p.object(obj)
		}}
	del := &cobra.Command{Use: "delete FLOATING_IP ID", Short: "Delete a port forwarding", Args: cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			path, err := under(args[0])
			if err != nil {
				return err
			}
			if _, err := c.do("DELETE", path+"/"+url.PathEscape(args[1]), nil); err != nil {
				return err
			}
			p.say("deleted port forwarding %s\n", args[1])
			return nil
		}}
	set := setCmd(c, p, "FLOATING_IP ID", "port forwarding", "port_forwarding", 2, func(args []string) (string, error) {
		path, err := under(args[0])
		return path + "/" + url.PathEscape(args[1]), err
	}, portForwardingFields)
	cmd.AddCommand(create, list, show, del, set)
	return cmd
}
