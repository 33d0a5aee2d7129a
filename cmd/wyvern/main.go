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
	"sort"
	"strings"
	"text/tabwriter"
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
func (c *client) resolve(k kind, ref string) (string, error) {
	if _, err := c.do("GET", k.route()+"/"+url.PathEscape(ref), nil); err == nil {
		return ref, nil
	}
	out, err := c.do("GET", k.route()+"?"+url.QueryEscape(k.alias)+"="+url.QueryEscape(ref), nil)
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

// cell renders one value for a table.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return fmt.Sprint(x)
	case bool:
		return fmt.Sprint(x)
	case map[string]any:
		if x["network_id"] != nil { // a router's external_gateway_info
			return cell(x["network_id"]) + " " + cell(x["external_fixed_ips"])
		}
	case []any:
		var parts []string
		for _, e := range x {
			if m, ok := e.(map[string]any); ok {
				switch {
				case m["ip_address"] != nil:
					parts = append(parts, cell(m["ip_address"]))
				case m["start"] != nil:
					parts = append(parts, cell(m["start"])+"-"+cell(m["end"]))
				default:
					b, _ := json.Marshal(m)
					parts = append(parts, string(b))
				}
				continue
			}
			parts = append(parts, cell(e))
		}
		return strings.Join(parts, ",")
	}
	b, _ := json.Marshal(v)
	return string(b)
}

type printer struct {
	out    io.Writer
	format string
}

func (p printer) json(v any) error {
	enc := json.NewEncoder(p.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (p printer) table(columns []string, rows []map[string]any) error {
	if p.format == "json" {
		return p.json(rows)
	}
	w := tabwriter.NewWriter(p.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, strings.ToUpper(strings.Join(columns, "\t")))
	for _, r := range rows {
		vals := make([]string, len(columns))
		for i, c := range columns {
			vals[i] = cell(r[c])
		}
		fmt.Fprintln(w, strings.Join(vals, "\t"))
	}
	return w.Flush()
}

func (p printer) object(v map[string]any) error {
	if p.format == "json" {
		return p.json(v)
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w := tabwriter.NewWriter(p.out, 0, 4, 2, ' ', 0)
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%s\n", k, cell(v[k]))
	}
	return w.Flush()
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	var apiURL, format, caFile string
	c := &client{http: &http.Client{Timeout: 30 * time.Second}}
	p := &printer{out: stdout}
	root := &cobra.Command{
		Use:           "wyvern",
		Short:         "Client of Wyvern's Neutron-shaped API",
		Version:       buildinfo.Version(),
		SilenceUsage:  true,
		SilenceErrors: true,
		// With no arguments: help. Args is left nil so that cobra's
		// legacy check refuses an unknown command (with suggestions).
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
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
			if format != "table" && format != "json" {
				return fmt.Errorf("-o %q: want table or json", format)
			}
			p.format = format
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate(buildinfo.String("wyvern") + "\n")
	root.PersistentFlags().StringVar(&apiURL, "api", "", "API URL (env WYVERN_API, default http://127.0.0.1:9696)")
	root.PersistentFlags().StringVarP(&format, "output", "o", "table", "table or json")
	root.PersistentFlags().StringVar(&c.token, "os-token", "", "Keystone token sent as X-Auth-Token (env OS_TOKEN), for a node with --auth keystone")
	root.PersistentFlags().StringVar(&caFile, "cacert", "", "CA certificate (PEM) that signed the API's certificate, for https:// (env OS_CACERT)")

	root.AddCommand(
		resourceCmd(c, p, networkKind, networkCreate(c, p)),
		resourceCmd(c, p, subnetKind, subnetCreate(c, p)),
		portCmd(c, p),
		routerCmd(c, p),
		resourceCmd(c, p, floatingIPKind, floatingIPCreate(c, p)),
		securityGroupCmd(c, p),
		chassisCmd(c, p),
		clusterCmd(c, p),
		traceCmd(c, p), flowsCmd(c, p), puntsCmd(c, p), bundleCmd(c), // trace.go, flows.go, bundle.go
		&cobra.Command{Use: "version", Short: "Print the version of this client", Args: cobra.NoArgs,
			// No API involved: skip the root's checks of --api and -o.
			PersistentPreRun: func(*cobra.Command, []string) {},
			RunE: func(cmd *cobra.Command, _ []string) error {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), buildinfo.String("wyvern"))
				return err
			}},
	)
	return root
}

// resourceCmd builds list/show/delete plus the given create.
func resourceCmd(c *client, p *printer, k kind, create *cobra.Command) *cobra.Command {
	ref := "ID|" + strings.ToUpper(strings.TrimPrefix(k.alias, "floating_ip_"))
	cmd := &cobra.Command{Use: k.singular, Short: "Manage " + k.plural}
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
			var rows []map[string]any
			for _, it := range out[k.plural].([]any) {
				rows = append(rows, it.(map[string]any))
			}
			return p.table(k.columns, rows)
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
			_, err = c.do("DELETE", k.route()+"/"+url.PathEscape(id), nil)
			if err == nil && p.format == "table" {
				fmt.Fprintf(p.out, "deleted %s %s\n", k.singular, id)
			}
			return err
		}}
	cmd.AddCommand(create, list, show, del)
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
				var ap []map[string]string
				for _, pr := range pairs {
					ip, m, _ := strings.Cut(pr, ",")
					e := map[string]string{"ip_address": ip}
					if m != "" {
						e["mac_address"] = m
					}
					ap = append(ap, e)
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
	cmd.Flags().StringArrayVar(&pairs, "allowed-address", nil, "IP_OR_CIDR[,MAC], repeatable")
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

func chassisCmd(c *client, p *printer) *cobra.Command {
	cmd := &cobra.Command{Use: "chassis", Short: "Registered chassis"}
	cmd.AddCommand(&cobra.Command{Use: "list", Short: "List chassis", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			out, err := c.do("GET", "/v2.0/chassis", nil)
			if err != nil {
				return err
			}
			var rows []map[string]any
			for _, it := range out["chassis"].([]any) {
				rows = append(rows, it.(map[string]any))
			}
			return p.table(chassisKind.columns, rows)
		}})
	return cmd
}

func clusterCmd(c *client, p *printer) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "The controller cluster"}
	cmd.AddCommand(&cobra.Command{Use: "status", Short: "Members, leader and applied index", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			out, err := c.do("GET", "/v2.0/cluster", nil)
			if err != nil {
				return err
			}
			cl := out["cluster"].(map[string]any)
			if p.format == "json" {
				return p.json(cl)
			}
			fmt.Fprintf(p.out, "leader: %s   applied index: %v   commit index: %v\n", cell(cl["leader"]), cl["applied_index"], cl["commit_index"])
			var rows []map[string]any
			for _, m := range cl["members"].([]any) {
				rows = append(rows, m.(map[string]any))
			}
			return p.table([]string{"id", "suffrage", "state", "raft_address", "api_address"}, rows)
		}})
	return cmd
}
