package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// set (alias update): a PUT holding only the fields whose flags were
// given, so that what the command does not name stays as it is.

// fields are a set command's flags, each filling one field of the body.
type fields struct {
	cmd   *cobra.Command
	names []string // the flags, for "nothing to change"
	adds  []func(c *client, body map[string]any) error
}

// flag registers what the flag given adds to the body.
func (f *fields) flag(name string, add func(c *client, body map[string]any) error) {
	f.names = append(f.names, "--"+name)
	f.adds = append(f.adds, func(c *client, body map[string]any) error {
		if !f.cmd.Flags().Changed(name) {
			return nil
		}
		return add(c, body)
	})
}

func (f *fields) str(name, field, usage string) {
	v := f.cmd.Flags().String(name, "", usage)
	f.flag(name, func(_ *client, b map[string]any) error { b[field] = *v; return nil })
}

func (f *fields) integer(name, field, usage string) {
	v := f.cmd.Flags().Int(name, 0, usage)
	f.flag(name, func(_ *client, b map[string]any) error { b[field] = *v; return nil })
}

// toggle is a pair of flags setting a boolean field, as --enable and
// --disable set admin_state_up.
func (f *fields) toggle(on, off, field, usage string) {
	vOn := f.cmd.Flags().Bool(on, false, "set "+field+" true: "+usage)
	vOff := f.cmd.Flags().Bool(off, false, "set "+field+" false")
	f.cmd.MarkFlagsMutuallyExclusive(on, off)
	f.flag(on, func(_ *client, b map[string]any) error { b[field] = *vOn; return nil })
	f.flag(off, func(_ *client, b map[string]any) error { b[field] = !*vOff; return nil })
}

// list is a repeatable flag whose values, together, replace a list field,
// and a flag that empties it.
func (f *fields) list(name, none, field, usage string, parse func(c *client, specs []string) (any, error)) {
	v := f.cmd.Flags().StringArray(name, nil, usage+", repeatable; the values given replace the "+field)
	clear := f.cmd.Flags().Bool(none, false, "empty the "+field)
	f.cmd.MarkFlagsMutuallyExclusive(name, none)
	f.flag(name, func(c *client, b map[string]any) error {
		x, err := parse(c, *v)
		if err != nil {
			return err
		}
		b[field] = x
		return nil
	})
	f.flag(none, func(_ *client, b map[string]any) error {
		if *clear {
			b[field] = []any{}
		}
		return nil
	})
}

// keyValues reads "k1=v1,k2=v2" with the keys allowed, as the flag's
// error names them.
func keyValues(flag, spec string, keys ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !slices.Contains(keys, k) {
			return nil, fmt.Errorf("--%s %q: want %s", flag, spec, strings.Join(keys, "=...,")+"=...")
		}
		out[k] = v
	}
	return out, nil
}

// setCmd is one set command: use names its arguments, target turns them
// into the object's URL path, key is the body's wrapper (the singular).
func setCmd(c *client, p *printer, use, what, key string, nargs int, target func(args []string) (string, error), declare func(f *fields)) *cobra.Command {
	var rev uint64
	cmd := &cobra.Command{Use: "set " + use, Aliases: []string{"update"},
		Short: "Change a " + what + ": only the attributes given, the others stay as they are",
		Args:  cobra.ExactArgs(nargs)}
	f := &fields{cmd: cmd}
	declare(f)
	cmd.Flags().Uint64Var(&rev, "if-revision", 0, "change it only if its revision_number is still `N` (sends If-Match: revision_number=N)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		body := map[string]any{}
		for _, add := range f.adds {
			if err := add(c, body); err != nil {
				return err
			}
		}
		if len(body) == 0 {
			return fmt.Errorf("nothing to change: give at least one of %s", strings.Join(f.names, ", "))
		}
		path, err := target(args)
		if err != nil {
			return err
		}
		var h http.Header
		if cmd.Flags().Changed("if-revision") {
			h = http.Header{"If-Match": {"revision_number=" + strconv.FormatUint(rev, 10)}}
		}
		out, err := c.send("PUT", path, map[string]any{key: body}, h)
		if err != nil {
			return err
		}
		obj, _ := out[key].(map[string]any)
		return p.object(obj)
	}
	return cmd
}

// setKind is setCmd for an object of a top-level collection, named by
// id or name.
func setKind(c *client, p *printer, k kind, declare func(f *fields)) *cobra.Command {
	return setCmd(c, p, refArg(k), strings.ReplaceAll(k.singular, "_", " "), k.singular, 1, func(args []string) (string, error) {
		id, err := c.resolve(k, args[0])
		if err != nil {
			return "", err
		}
		return k.route() + "/" + url.PathEscape(id), nil
	}, declare)
}

// common are the name and description nearly everything has.
func (f *fields) common() {
	f.str("name", "name", "new name")
	f.str("description", "description", "new description")
}

func networkSet(c *client, p *printer) *cobra.Command {
	return setKind(c, p, networkKind, func(f *fields) {
		f.common()
		f.toggle("enable", "disable", "admin_state_up", "the network forwards")
		f.integer("mtu", "mtu", "MTU")
		f.toggle("external", "internal", "router:external", "routers' gateways and floating IPs may use it")
		f.toggle("share", "no-share", "shared", "every project may use it")
		f.toggle("enable-port-security", "disable-port-security", "port_security_enabled", "the default of its new ports")
		f.str("dns-domain", "dns_domain", "DNS domain")
	})
}

func subnetSet(c *client, p *printer) *cobra.Command {
	return setKind(c, p, subnetKind, func(f *fields) {
		f.common()
		gw := f.cmd.Flags().String("gateway", "", "gateway IP, or none")
		f.flag("gateway", func(_ *client, b map[string]any) error {
			if *gw == "none" {
				b["gateway_ip"] = nil
			} else {
				b["gateway_ip"] = *gw
			}
			return nil
		})
		f.toggle("dhcp", "no-dhcp", "enable_dhcp", "answer its ports' DHCP")
		f.list("dns-nameserver", "no-dns-nameservers", "dns_nameservers", "DNS server IP", func(_ *client, specs []string) (any, error) {
			return specs, nil
		})
		f.list("allocation-pool", "no-allocation-pools", "allocation_pools", "start=IP,end=IP", func(_ *client, specs []string) (any, error) {
			var pools []map[string]string
			for _, s := range specs {
				kv, err := keyValues("allocation-pool", s, "start", "end")
				if err != nil {
					return nil, err
				}
				pools = append(pools, kv)
			}
			return pools, nil
		})
		f.list("host-route", "no-host-routes", "host_routes", "destination=CIDR,gateway=IP", hostRoutes("host-route"))
	})
}

// hostRoutes reads destination=CIDR,gateway=IP flags as Neutron's routes.
func hostRoutes(flag string) func(*client, []string) (any, error) {
	return func(_ *client, specs []string) (any, error) {
		var routes []map[string]string
		for _, s := range specs {
			kv, err := keyValues(flag, s, "destination", "gateway")
			if err != nil {
				return nil, err
			}
			routes = append(routes, map[string]string{"destination": kv["destination"], "nexthop": kv["gateway"]})
		}
		return routes, nil
	}
}

func portSet(c *client, p *printer) *cobra.Command {
	return setKind(c, p, portKind, func(f *fields) {
		f.common()
		f.toggle("enable", "disable", "admin_state_up", "the port forwards")
		f.str("host", "binding:host_id", "binding:host_id: the chassis the port is plugged on")
		f.str("dns-name", "dns_name", "DNS name")
		f.str("device-owner", "device_owner", "device_owner")
		f.str("device-id", "device_id", "device_id")
		f.toggle("enable-port-security", "disable-port-security", "port_security_enabled", "anti-spoofing and security groups")
		f.list("fixed-ip", "no-fixed-ip", "fixed_ips", "subnet=SUBNET[,ip=IP]", func(c *client, specs []string) (any, error) {
			return c.fixedIPs(specs)
		})
		f.list("allowed-address", "no-allowed-address", "allowed_address_pairs", "ip-address=IP_OR_CIDR[,mac-address=MAC] (or IP_OR_CIDR[,MAC])", func(_ *client, specs []string) (any, error) {
			return addressPairs(specs)
		})
		f.list("security-group", "no-security-group", "security_groups", "security group id or name", func(c *client, refs []string) (any, error) {
			body := map[string]any{}
			err := c.securityGroups(body, refs, false)
			return body["security_groups"], err
		})
		// extra_dhcp_opts merge on the server: each option given is added
		// or changed, one without a value removed; the others stay.
		dhcpOpts := f.cmd.Flags().StringArray("extra-dhcp-option", nil,
			"name=NAME[,value=VALUE][,ip-version=4|6], repeatable: adds or changes the option, or without a value removes it; the port's other options stay")
		f.flag("extra-dhcp-option", func(_ *client, b map[string]any) error {
			var opts []map[string]any
			for _, s := range *dhcpOpts {
				kv, err := keyValues("extra-dhcp-option", s, "name", "value", "ip-version")
				if err != nil {
					return err
				}
				o := map[string]any{"opt_name": kv["name"], "opt_value": nil}
				if v, ok := kv["value"]; ok {
					o["opt_value"] = v
				}
				if v, ok := kv["ip-version"]; ok {
					n, err := strconv.Atoi(v)
					if err != nil {
						return fmt.Errorf("--extra-dhcp-option %q: ip-version is 4 or 6", s)
					}
					o["ip_version"] = n
				}
				opts = append(opts, o)
			}
			b["extra_dhcp_opts"] = opts
			return nil
		})
	})
}

func routerSet(c *client, p *printer) *cobra.Command {
	return setKind(c, p, routerKind, func(f *fields) {
		f.common()
		f.toggle("enable", "disable", "admin_state_up", "the router routes")
		f.toggle("distributed", "centralized", "distributed", "a distributed router (admin)")
		f.list("route", "no-route", "routes", "destination=CIDR,gateway=IP", hostRoutes("route"))
		// The gateway: --external-gateway names its network; SNAT and its
		// addresses go with it. --no-external-gateway removes it.
		gwNet := f.cmd.Flags().String("external-gateway", "", "external network (id or name) of the router's gateway")
		snat := f.cmd.Flags().Bool("enable-snat", false, "with --external-gateway: SNAT the router's subnets (admin)")
		noSNAT := f.cmd.Flags().Bool("disable-snat", false, "with --external-gateway: no SNAT (admin)")
		gwIPs := f.cmd.Flags().StringArray("fixed-ip", nil, "with --external-gateway: subnet=SUBNET[,ip=IP] on it, repeatable (admin)")
		noGW := f.cmd.Flags().Bool("no-external-gateway", false, "remove the router's gateway")
		f.cmd.MarkFlagsMutuallyExclusive("enable-snat", "disable-snat")
		f.cmd.MarkFlagsMutuallyExclusive("external-gateway", "no-external-gateway")
		f.names = append(f.names, "--enable-snat", "--disable-snat", "--fixed-ip")
		f.flag("external-gateway", func(c *client, b map[string]any) error {
			nid, err := c.resolve(networkKind, *gwNet)
			if err != nil {
				return err
			}
			gw := map[string]any{"network_id": nid}
			switch {
			case f.cmd.Flags().Changed("enable-snat"):
				gw["enable_snat"] = *snat
			case f.cmd.Flags().Changed("disable-snat"):
				gw["enable_snat"] = !*noSNAT
			}
			if len(*gwIPs) > 0 {
				ips, err := c.fixedIPs(*gwIPs)
				if err != nil {
					return err
				}
				gw["external_fixed_ips"] = ips
			}
			b["external_gateway_info"] = gw
			return nil
		})
		f.flag("no-external-gateway", func(_ *client, b map[string]any) error {
			if *noGW {
				b["external_gateway_info"] = nil
			}
			return nil
		})
		f.adds = append(f.adds, func(*client, map[string]any) error {
			fl := f.cmd.Flags()
			if !fl.Changed("external-gateway") && (fl.Changed("enable-snat") || fl.Changed("disable-snat") || fl.Changed("fixed-ip")) {
				return fmt.Errorf("--enable-snat, --disable-snat and --fixed-ip go with --external-gateway NETWORK")
			}
			return nil
		})
	})
}

func floatingIPSet(c *client, p *printer) *cobra.Command {
	return setKind(c, p, floatingIPKind, func(f *fields) {
		f.str("description", "description", "new description")
		port := f.cmd.Flags().String("port", "", "associate it with this port (id or name)")
		f.flag("port", func(c *client, b map[string]any) error {
			pid, err := c.resolve(portKind, *port)
			b["port_id"] = pid
			return err
		})
		f.str("fixed-ip-address", "fixed_ip_address", "which of the port's addresses (default its first)")
		noPort := f.cmd.Flags().Bool("no-port", false, "disassociate it from its port")
		f.cmd.MarkFlagsMutuallyExclusive("port", "no-port")
		f.flag("no-port", func(_ *client, b map[string]any) error {
			if *noPort {
				b["port_id"] = nil
			}
			return nil
		})
	})
}

func securityGroupSet(c *client, p *printer) *cobra.Command {
	return setKind(c, p, securityGroupKind, func(f *fields) {
		f.common()
		f.toggle("stateful", "stateless", "stateful", "replies are let through by themselves")
	})
}

// portForwardingFields are the flags of a port forwarding, for create
// and set alike.
func portForwardingFields(f *fields) {
	f.str("protocol", "protocol", "tcp or udp")
	f.integer("external-protocol-port", "external_port", "port on the floating IP")
	f.integer("internal-protocol-port", "internal_port", "port on the internal address")
	f.str("internal-ip-address", "internal_ip_address", "the internal port's address")
	port := f.cmd.Flags().String("port", "", "internal port (id or name)")
	f.flag("port", func(c *client, b map[string]any) error {
		pid, err := c.resolve(portKind, *port)
		b["internal_port_id"] = pid
		return err
	})
	f.str("description", "description", "description")
}

// addressPairs reads --allowed-address flags as Neutron's
// allowed_address_pairs: ip-address=IP[,mac-address=MAC] as the openstack
// CLI spells them, or IP[,MAC].
func addressPairs(specs []string) ([]map[string]string, error) {
	var pairs []map[string]string
	for _, s := range specs {
		var ip, mac string
		if strings.Contains(s, "=") {
			kv, err := keyValues("allowed-address", s, "ip-address", "mac-address")
			if err != nil {
				return nil, err
			}
			ip, mac = kv["ip-address"], kv["mac-address"]
		} else {
			ip, mac, _ = strings.Cut(s, ",")
		}
		if ip == "" {
			return nil, fmt.Errorf("--allowed-address %q: no IP address", s)
		}
		e := map[string]string{"ip_address": ip}
		if mac != "" {
			e["mac_address"] = mac
		}
		pairs = append(pairs, e)
	}
	return pairs, nil
}
