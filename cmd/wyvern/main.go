// Command wyvern is the command-line client of Wyvern's northbound API:
// networks, subnets, ports, routers, floating IPs, chassis and the
// cluster, as tables for people or JSON for scripts.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wyvern-sdn/wyvern/internal/buildinfo"
)

func main() {
	if err := newRoot(os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "wyvern:", err)
		os.Exit(1)
	}
}

// client talks to one API endpoint.
type client struct {
	base  string
	token string // X-Auth-Token, with --auth keystone
	http  *http.Client
}

// apiError is a Neutron error answer.
type apiError struct {
	Status  int
	Type    string
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d): %s", e.Type, e.Status, e.Message) }

func (c *client) do(method, path string, body any) (map[string]any, error) {
	return c.send(method, path, body, nil)
}

// send is do with extra request headers (If-Match).
func (c *client) send(method, path string, body any, header http.Header) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("X-Auth-Token", c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, fmt.Errorf("%s %s: %d, not JSON: %.200s", method, path, resp.StatusCode, b)
		}
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode, Type: http.StatusText(resp.StatusCode)}
		if ne, ok := out["NeutronError"].(map[string]any); ok {
			e.Type, _ = ne["type"].(string)
			e.Message, _ = ne["message"].(string)
		}
		return nil, e
	}
	return out, nil
}

// kind describes a resource for the generic commands.
type kind struct {
	singular, plural string
	columns          []string
	// alias is the field a reference may give instead of the id: the
	// name, or what names an object that has none.
	alias string
}

// route is the collection's URL path: the plural, hyphenated as Neutron
// spells its paths (security-groups).
func (k kind) route() string { return "/v2.0/" + strings.ReplaceAll(k.plural, "_", "-") }

var (
	networkKind = kind{"network", "networks", []string{"id", "name", "provider:network_type", "provider:segmentation_id", "router:external", "mtu", "subnets", "status"}, "name"}
	subnetKind  = kind{"subnet", "subnets", []string{"id", "name", "network_id", "cidr", "gateway_ip", "allocation_pools"}, "name"}
	portKind    = kind{"port", "ports", []string{"id", "name", "network_id", "mac_address", "fixed_ips", "binding:host_id", "status"}, "name"}
	routerKind  = kind{"router", "routers", []string{"id", "name", "admin_state_up", "external_gateway_info", "status"}, "name"}
	// A floating IP has no name; its address names it.
	floatingIPKind = kind{"floatingip", "floatingips", []string{"id", "floating_ip_address", "fixed_ip_address", "port_id", "router_id", "status"}, "floating_ip_address"}
	chassisKind    = kind{"chassis", "chassis", []string{"name", "encap_ip", "encaps", "dvr_mac", "datapath_id", "node_id", "connected"}, "name"}
)

// resolve accepts an id or a unique name (or address, for a floating IP).
// It reads consistently: an object just created through another node is
// found (the node applies what the leader had committed first).
func (c *client) resolve(k kind, ref string) (string, error) {
	if _, err := c.do("GET", k.route()+"/"+url.PathEscape(ref)+"?consistent=true", nil); err == nil {
		return ref, nil
	}
	out, err := c.do("GET", k.route()+"?consistent=true&"+url.QueryEscape(k.alias)+"="+url.QueryEscape(ref), nil)
	if err != nil {
		return "", err
	}
	items, _ := out[k.plural].([]any)
	switch len(items) {
	case 0:
		return "", fmt.Errorf("no %s with id or %s %q", k.singular, strings.ReplaceAll(k.alias, "_", " "), ref)
	case 1:
		return items[0].(map[string]any)["id"].(string), nil
	}
	return "", fmt.Errorf("%d %s have %s %q; use the id", len(items), k.plural, strings.ReplaceAll(k.alias, "_", " "), ref)
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	var apiURL, format, oldFormat, caFile string
	c := &client{http: &http.Client{Timeout: 30 * time.Second}}
	p := &printer{out: stdout}
	root := &cobra.Command{
		Use:           "wyvern",
		Short:         "Client of Wyvern's Neutron-shaped API",
		Version:       buildinfo.Version(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if apiURL == "" {
				apiURL = os.Getenv("WYVERN_API")
			}
			if apiURL == "" {
				apiURL = "http://127.0.0.1:9696"
			}
			if !strings.Contains(apiURL, "://") {
				apiURL = "http://" + apiURL
			}
			c.base = strings.TrimRight(apiURL, "/")
			if c.token == "" {
				c.token = os.Getenv("OS_TOKEN")
			}
			if caFile == "" {
				caFile = os.Getenv("OS_CACERT")
			}
			if caFile != "" {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("--cacert: %w", err)
				}
				roots := x509.NewCertPool()
				if !roots.AppendCertsFromPEM(pem) {
					return fmt.Errorf("--cacert %s: no PEM certificate", caFile)
				}
				c.http.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
			}
			if cmd.Flags().Changed("output") && !cmd.Flags().Changed("format") {
				format = oldFormat
			}
			if !slices.Contains(formats, format) {
				return fmt.Errorf("-f %q: want one of %s", format, strings.Join(formats, ", "))
			}
			p.format = format
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate(buildinfo.String("wyvern") + "\n")
	pf := root.PersistentFlags()
	pf.StringVar(&apiURL, "api", "", "API URL (env WYVERN_API, default http://127.0.0.1:9696)")
	pf.StringVarP(&format, "format", "f", "table", "output format: "+strings.Join(formats, ", "))
	pf.StringArrayVarP(&p.columns, "column", "c", nil, "show only this field (repeatable, in the order given); an unknown one is an error")
	pf.StringVarP(&oldFormat, "output", "o", "table", "the older name of -f")
	_ = pf.MarkHidden("output")
	pf.StringVar(&c.token, "os-token", "", "Keystone token sent as X-Auth-Token (env OS_TOKEN), for a node with --auth keystone")
	pf.StringVar(&caFile, "cacert", "", "CA certificate (PEM) that signed the API's certificate, for https:// (env OS_CACERT)")

	root.AddCommand(
		resourceCmd(c, p, networkKind, networkCreate(c, p), networkSet(c, p)),
		resourceCmd(c, p, subnetKind, subnetCreate(c, p), subnetSet(c, p)),
		portCmd(c, p),
		routerCmd(c, p),
		floatingIPCmd(c, p),
		securityGroupCmd(c, p),
		chassisCmd(c, p),
		clusterCmd(c, p),
		puntsCmd(c, p), traceCmd(c, p), flowsCmd(c, p), bundleCmd(c), // trace.go, flows.go, bundle.go
		&cobra.Command{Use: "version", Short: "Print the version of this client", Args: cobra.NoArgs,
			// No API involved: skip the root's checks of --api and -f.
			PersistentPreRun: func(*cobra.Command, []string) {},
			RunE: func(cmd *cobra.Command, _ []string) error {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), buildinfo.String("wyvern"))
				return err
			}},
	)
	// help of an unknown command is an error too (cobra's would show the
	// root's help once the root checks its own arguments).
	root.SetHelpCommand(&cobra.Command{Use: "help [command]", Short: "Help about any command",
		PersistentPreRun: func(*cobra.Command, []string) {},
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := cmd.Root().Find(args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return fmt.Errorf("unknown help topic %q", strings.Join(args, " "))
			}
			return target.Help()
		}})
	root.InitDefaultCompletionCmd() // here, so that strict covers it too
	strict(root)
	return root
}

// strict makes every command refuse what it does not know, with exit 1:
// a command with subcommands and nothing to run of its own prints its
// help when called alone, and calls any argument an unknown command
// (cobra would print the help and exit 0); an argument count wrong for
// a command is an error with its usage line.
func strict(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		strict(sub)
	}
	if cmd.HasSubCommands() && !cmd.Runnable() {
		cmd.Args = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "; did you mean " + strings.Join(s, " or ") + "?"
			}
			return fmt.Errorf("%s (wyvern %s --help lists them)", msg, strings.TrimPrefix(cmd.CommandPath(), "wyvern "))
		}
		cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		return
	}
	if check := cmd.Args; check != nil {
		cmd.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return fmt.Errorf("%w\nusage: %s", err, cmd.UseLine())
			}
			return nil
		}
	}
}

// items are the objects of a list answer.
func items(out map[string]any, plural string) []map[string]any {
	rows := []map[string]any{}
	list, _ := out[plural].([]any)
	for _, it := range list {
		if m, ok := it.(map[string]any); ok {
			rows = append(rows, m)
		}
	}
	return rows
}

// refArg names what a command takes to name an object: its id or alias.
func refArg(k kind) string {
	return "ID|" + strings.ToUpper(strings.TrimPrefix(k.alias, "floating_ip_"))
}

// resourceCmd builds list/show/delete plus the given create.
func resourceCmd(c *client, p *printer, k kind, create, set *cobra.Command) *cobra.Command {
	ref := refArg(k)
	plural := strings.ReplaceAll(k.plural, "_", " ")
	cmd := &cobra.Command{Use: k.singular, Short: "Manage " + plural,
		Long: "Manage " + plural + ". List them with: wyvern " + k.singular + " list"}
	var filters []string
	list := &cobra.Command{Use: "list", Short: "List " + k.plural + " (--filter field=value)", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			q := url.Values{}
			for _, f := range filters {
				key, val, ok := strings.Cut(f, "=")
				if !ok {
					return fmt.Errorf("--filter %q: want field=value", f)
				}
				q.Add(key, val)
			}
			path := k.route()
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			out, err := c.do("GET", path, nil)
			if err != nil {
				return err
			}
			return p.table(k.columns, items(out, k.plural))
		}}
	list.Flags().StringArrayVar(&filters, "filter", nil, "field=value, repeatable")
	show := &cobra.Command{Use: "show " + ref, Short: "Show one " + k.singular, Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			id, err := c.resolve(k, args[0])
			if err != nil {
				return err
			}
			out, err := c.do("GET", k.route()+"/"+url.PathEscape(id), nil)
			if err != nil {
				return err
			}
			return p.object(out[k.singular].(map[string]any))
		}}
	del := &cobra.Command{Use: "delete " + ref, Short: "Delete a " + k.singular, Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			id, err := c.resolve(k, args[0])
			if err != nil {
				return err
			}
			if _, err := c.do("DELETE", k.route()+"/"+url.PathEscape(id), nil); err != nil {
				return err
			}
			p.say("deleted %s %s\n", strings.ReplaceAll(k.singular, "_", " "), id)
			return nil
		}}
	cmd.AddCommand(create, list, show, del, set)
	return cmd
}

func createAndShow(c *client, p *printer, k kind, body map[string]any) error {
	out, err := c.do("POST", k.route(), map[string]any{k.singular: body})
	if err != nil {
		return err
	}
	return p.object(out[k.singular].(map[string]any))
}

func networkCreate(c *client, p *printer) *cobra.Command {
	var typ, physnet string
	var segID, mtu int
	var external bool
	cmd := &cobra.Command{Use: "create NAME", Short: "Create a network", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"name": args[0], "provider:network_type": typ}
			if cmd.Flags().Changed("segmentation-id") {
				body["provider:segmentation_id"] = segID
			}
			if physnet != "" {
				body["provider:physical_network"] = physnet
			}
			if external {
				body["router:external"] = true
			}
			if cmd.Flags().Changed("mtu") {
				body["mtu"] = mtu
			}
			return createAndShow(c, p, networkKind, body)
		}}
	cmd.Flags().StringVar(&typ, "type", "vxlan", "vxlan, gre, flat or vlan")
	cmd.Flags().StringVar(&physnet, "physical-network", "", "physical network of a flat or vlan network (a name in the chassis' --bridge-mappings)")
	cmd.Flags().IntVar(&segID, "segmentation-id", 0, "VNI or GRE key (allocated when absent), or the VLAN id of a vlan network")
	cmd.Flags().IntVar(&mtu, "mtu", 0, "MTU (1450 for vxlan, 1458 for gre, 1500 for flat and vlan when absent)")
	cmd.Flags().BoolVar(&external, "external", false, "router:external: routers' gateways and floating IPs use it")
	return cmd
}

func subnetCreate(c *client, p *printer) *cobra.Command {
	var network, cidr, name, gateway string
	var dhcp bool
	cmd := &cobra.Command{Use: "create --network NET --cidr CIDR", Short: "Create a subnet", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nid, err := c.resolve(networkKind, network)
			if err != nil {
				return err
			}
			body := map[string]any{"network_id": nid, "cidr": cidr, "ip_version": 4, "name": name, "enable_dhcp": dhcp}
			switch {
			case gateway == "none":
				body["gateway_ip"] = nil
			case gateway != "":
				body["gateway_ip"] = gateway
			}
			return createAndShow(c, p, subnetKind, body)
		}}
	cmd.Flags().StringVar(&network, "network", "", "network id or name (required)")
	cmd.Flags().StringVar(&cidr, "cidr", "", "IPv4 CIDR (required)")
	cmd.Flags().StringVar(&name, "name", "", "subnet name")
	cmd.Flags().StringVar(&gateway, "gateway", "", "gateway IP, or none (default: first host)")
	cmd.Flags().BoolVar(&dhcp, "dhcp", true, "answer its ports' DHCP (--dhcp=false for an external network's subnet)")
	_ = cmd.MarkFlagRequired("network")
	_ = cmd.MarkFlagRequired("cidr")
	return cmd
}

func portCreate(c *client, p *printer) *cobra.Command {
	var network, name, mac, host string
	var fixedIPs, pairs, groups []string
	var noSecurity, noGroups bool
	cmd := &cobra.Command{Use: "create --network NET", Short: "Create a port", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nid, err := c.resolve(networkKind, network)
			if err != nil {
				return err
			}
			body := map[string]any{"network_id": nid, "name": name}
			if mac != "" {
				body["mac_address"] = mac
			}
			if host != "" {
				body["binding:host_id"] = host
			}
			if noSecurity {
				body["port_security_enabled"] = false
			}
			if err := c.securityGroups(body, groups, noGroups); err != nil {
				return err
			}
			if len(fixedIPs) > 0 {
				f, err := c.fixedIPs(fixedIPs)
				if err != nil {
					return err
				}
				body["fixed_ips"] = f
			}
			if len(pairs) > 0 {
				ap, err := addressPairs(pairs)
				if err != nil {
					return err
				}
				body["allowed_address_pairs"] = ap
			}
			return createAndShow(c, p, portKind, body)
		}}
	cmd.Flags().StringVar(&network, "network", "", "network id or name (required)")
	cmd.Flags().StringVar(&name, "name", "", "port name")
	cmd.Flags().StringVar(&mac, "mac", "", "MAC address (allocated when absent)")
	cmd.Flags().StringVar(&host, "host", "", "binding:host_id")
	cmd.Flags().StringArrayVar(&fixedIPs, "fixed-ip", nil, "subnet=SUBNET[,ip=IP], repeatable")
	cmd.Flags().StringArrayVar(&pairs, "allowed-address", nil, "ip-address=IP_OR_CIDR[,mac-address=MAC] (or IP_OR_CIDR[,MAC]), repeatable")
	cmd.Flags().BoolVar(&noSecurity, "no-port-security", false, "disable port security (and so security groups: give --no-security-group too)")
	cmd.Flags().StringArrayVar(&groups, "security-group", nil, "security group id or name, repeatable (default: the project's default group)")
	cmd.Flags().BoolVar(&noGroups, "no-security-group", false, "no security group at all")
	_ = cmd.MarkFlagRequired("network")
	return cmd
}

// fixedIPs reads --fixed-ip subnet=SUBNET,ip=IP flags (either part may be
// left out) as Neutron's fixed_ips.
func (c *client) fixedIPs(specs []string) ([]map[string]string, error) {
	var f []map[string]string
	for _, spec := range specs {
		e := map[string]string{}
		for _, kv := range strings.Split(spec, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "subnet":
				sid, err := c.resolve(subnetKind, v)
				if err != nil {
					return nil, err
				}
				e["subnet_id"] = sid
			case "ip":
				e["ip_address"] = v
			default:
				return nil, fmt.Errorf("--fixed-ip %q: want subnet=SUBNET,ip=IP", spec)
			}
		}
		f = append(f, e)
	}
	return f, nil
}
