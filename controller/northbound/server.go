// Package northbound is the Neutron-shaped JSON API: routes, strict
// decoding of request bodies, rendering, and the mapping of errors to HTTP
// statuses (here and nowhere else). Writes become cluster commands,
// proposed through the cluster on whichever node took the request; reads
// come from the node's own applied topology.
//
// It imports the cluster package (commands, results, status) and the
// topology store, through the small Cluster interface.
package northbound

import (
	"context"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"net"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Cluster is what the API needs of the replicated topology.
type Cluster interface {
	Propose(ctx context.Context, t cluster.CommandType, payload any) (cluster.Result, error)
	Consistent(ctx context.Context) error
	Read(fn func(s *topology.Store))
	Ready() bool
	AppliedIndex() uint64
	Status() (cluster.Status, error)
	RaftAddress() string
	RemoveMember(ctx context.Context, id string) error
	Feed() *cluster.Feed
	NodeID() string
}

// Options are the API's collaborators beyond the cluster.
type Options struct {
	// Debug, if set, answers GET /debug/punts: the node's punt counters.
	Debug func(ctx context.Context) any
	// Auth, if set, authenticates every request but the public ones by
	// its X-Auth-Token (--auth keystone); nil makes every caller an admin
	// (--auth none).
	Auth Authenticator
	// KeystoneURI is where a client refused with 401 gets a token (the
	// WWW-Authenticate header).
	KeystoneURI string
	// Unready, if set, names what keeps the node from being ready beyond
	// the cluster (its local chassis: OVSDB, bridge, registration), one
	// "part: reason" each; none is ready. GET /readyz asks it.
	Unready func() []string
	// Registry is where the API's request metrics are registered (nil:
	// nowhere); Metrics, if set, answers GET /metrics (admin only: with
	// --auth none, anyone who reaches the API).
	Registry prometheus.Registerer
	Metrics  http.Handler
	// Explain, if set, answers /debug/flows, /debug/trace, /debug/ovsdb
	// and /debug/logs (debug_trace.go).
	Explain Explainer
}

// Server is the northbound API of one node.
type Server struct {
	cluster Cluster
	opts    Options
	log     *zap.Logger
	http    *http.Server
	stats   *apiMetrics
}

// New builds the API.
func New(c Cluster, opts Options, log *zap.Logger) *Server {
	s := &Server{cluster: c, opts: opts, log: log.Named("northbound"), stats: newAPIMetrics(opts.Registry)}
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		pattern := rt.method + " " + rt.path
		mux.HandleFunc(pattern, routed(pattern, rt.handler))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, &apiError{http.StatusMethodNotAllowed, "HTTPMethodNotAllowed",
				fmt.Sprintf("The method %s is not allowed for %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))})
			return
		}
		writeError(w, &apiError{http.StatusNotFound, "HTTPNotFound", "The resource could not be found: " + r.Method + " " + r.URL.Path})
	})
	s.http = &http.Server{ // bounds.go: every limit
		Handler:           s.stats.instrument(checkLine(s.authenticate(readBody(jsonSuffix(mux))))),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ConnState:         newConnShedder(MaxConns).ConnState,
		ErrorLog:          zap.NewStdLog(s.log),
	}
	return s
}

// jsonSuffix takes Neutron's format suffix: /v2.0/networks.json is
// /v2.0/networks (JSON is the only format), as older clients, tempest's
// quota details among them, ask.
func jsonSuffix(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := strings.CutSuffix(r.URL.Path, ".json"); ok && strings.HasPrefix(p, "/v2.0/") {
			r2 := r.Clone(r.Context())
			r2.URL.Path, r2.URL.RawPath = p, ""
			h.ServeHTTP(w, r2)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// allowedMethods are the methods a path is served with, when the
// request's own is not one of them: Neutron answers 405, not 404, for a
// known path asked with another method (PATCH, say).
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
			out = append(out, m)
		}
	}
	return out
}

// Handler is the API as an http.Handler.
func (s *Server) Handler() http.Handler { return s.http.Handler }

// Serve answers requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.http.Serve(ln) }

// Shutdown stops taking requests and finishes those in flight.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }

// route is one API endpoint; docs/openapi.yaml must describe each.
type route struct {
	method, path string
	handler      http.HandlerFunc
}

// routes is the API, declared once.
func (s *Server) routes() []route {
	return append([]route{
		{"GET", "/{$}", s.versions},
		{"GET", "/v2.0", s.resources},
		{"GET", "/v2.0/{$}", s.resources},
		{"GET", "/v2.0/extensions", s.extensions},
		{"GET", "/v2.0/extensions/{alias}", s.extension},
		{"GET", "/livez", s.livez},
		{"GET", "/readyz", s.readyz},
		{"GET", "/healthz", s.readyz}, // the older name of /readyz
		{"GET", "/v2.0/networks", s.read(lister(s, "networks", (*topology.Store).Networks))},
		{"GET", "/v2.0/networks/{id}", s.read(shower(s, "network", "id", "NetworkNotFound", "Network", (*topology.Store).Network))},
		{"POST", "/v2.0/networks", s.write(creator[networkReq, topology.NetworkSpec, topology.Network](s, networks, cluster.CmdNetworksCreate, func(x []topology.NetworkSpec) any { return cluster.NetworksCreate{Specs: x} }))},
		{"PUT", "/v2.0/networks/{id}", s.write(updater[networkReq, topology.NetworkSpec, topology.Network](s, networks, cluster.CmdNetworkUpdate, func(x topology.NetworkSpec) any { return cluster.NetworkUpdate{Spec: x} }))},
		{"DELETE", "/v2.0/networks/{id}", s.write(s.deleteBy(networks, cluster.CmdNetworkDelete))},
		{"GET", "/v2.0/subnets", s.read(lister(s, "subnets", (*topology.Store).Subnets))},
		{"GET", "/v2.0/subnets/{id}", s.read(shower(s, "subnet", "id", "SubnetNotFound", "Subnet", (*topology.Store).Subnet))},
		{"POST", "/v2.0/subnets", s.write(creator[subnetReq, topology.SubnetSpec, topology.Subnet](s, subnets, cluster.CmdSubnetsCreate, func(x []topology.SubnetSpec) any { return cluster.SubnetsCreate{Specs: x} }))},
		{"PUT", "/v2.0/subnets/{id}", s.write(updater[subnetReq, topology.SubnetSpec, topology.Subnet](s, subnets, cluster.CmdSubnetUpdate, func(x topology.SubnetSpec) any { return cluster.SubnetUpdate{Spec: x} }))},
		{"DELETE", "/v2.0/subnets/{id}", s.write(s.deleteBy(subnets, cluster.CmdSubnetDelete))},
		{"GET", "/v2.0/ports", s.read(lister(s, "ports", (*topology.Store).Ports))},
		{"GET", "/v2.0/ports/{id}", s.read(shower(s, "port", "id", "PortNotFound", "Port", (*topology.Store).Port))},
		{"POST", "/v2.0/ports", s.write(creator[portReq, topology.PortSpec, topology.Port](s, ports, cluster.CmdPortsCreate, func(x []topology.PortSpec) any { return cluster.PortsCreate{Specs: x} }))},
		{"PUT", "/v2.0/ports/{id}", s.write(updater[portReq, topology.PortSpec, topology.Port](s, ports, cluster.CmdPortUpdate, func(x topology.PortSpec) any { return cluster.PortUpdate{Spec: x} }))},
		{"DELETE", "/v2.0/ports/{id}", s.write(s.deleteBy(ports, cluster.CmdPortDelete))},
		{"GET", "/v2.0/routers", s.read(lister(s, "routers", (*topology.Store).Routers))},
		{"GET", "/v2.0/routers/{id}", s.read(shower(s, "router", "id", "RouterNotFound", "Router", (*topology.Store).Router))},
		{"POST", "/v2.0/routers", s.write(creator[routerReq, topology.RouterSpec, topology.Router](s, routers, cluster.CmdRoutersCreate, func(x []topology.RouterSpec) any { return cluster.RoutersCreate{Specs: x} }))},
		{"PUT", "/v2.0/routers/{id}", s.write(updater[routerReq, topology.RouterSpec, topology.Router](s, routers, cluster.CmdRouterUpdate, func(x topology.RouterSpec) any { return cluster.RouterUpdate{Spec: x} }))},
		{"DELETE", "/v2.0/routers/{id}", s.write(s.deleteBy(routers, cluster.CmdRouterDelete))},
		{"PUT", "/v2.0/routers/{id}/add_router_interface", s.write(s.routerInterface(cluster.CmdRouterInterfaceAttach, cluster.CmdRouterInterfaceAdd))},
		{"PUT", "/v2.0/routers/{id}/remove_router_interface", s.write(s.routerInterface(cluster.CmdRouterInterfaceDetach, cluster.CmdRouterInterfaceRemove))},
		{"GET", "/v2.0/floatingips", s.read(lister(s, "floatingips", (*topology.Store).FloatingIPs))},
		{"GET", "/v2.0/floatingips/{id}", s.read(shower(s, "floatingip", "id", "FloatingIPNotFound", "Floating IP", (*topology.Store).FloatingIP))},
		{"POST", "/v2.0/floatingips", s.write(s.floatingIPCreate)},
		{"PUT", "/v2.0/floatingips/{id}", s.write(updater[floatingIPReq, topology.FloatingIPSpec, topology.FloatingIP](s, floatingips, cluster.CmdFloatingIPUpdate, func(x topology.FloatingIPSpec) any { return cluster.FloatingIPUpdate{Spec: x} }))},
		{"DELETE", "/v2.0/floatingips/{id}", s.write(s.deleteBy(floatingips, cluster.CmdFloatingIPDelete))},
		{"GET", "/v2.0/floatingips/{id}/port_forwardings", s.read(s.portForwardingList)},
		{"GET", "/v2.0/floatingips/{id}/port_forwardings/{pf_id}", s.read(s.portForwardingShow)},
		{"POST", "/v2.0/floatingips/{id}/port_forwardings", s.write(s.portForwardingCreate)},
		{"PUT", "/v2.0/floatingips/{id}/port_forwardings/{pf_id}", s.write(s.portForwardingUpdate)},
		{"DELETE", "/v2.0/floatingips/{id}/port_forwardings/{pf_id}", s.write(s.portForwardingDelete)},
		{"GET", "/v2.0/security-groups", s.read(s.securityGroupList)},
		{"GET", "/v2.0/security-groups/{id}", s.read(shower(s, "security_group", "id", "SecurityGroupNotFound", "Security group", (*topology.Store).SecurityGroup))},
		{"POST", "/v2.0/security-groups", s.write(creator[securityGroupReq, topology.SecurityGroupSpec, topology.SecurityGroup](s, securityGroups, cluster.CmdSecurityGroupCreate, func(x []topology.SecurityGroupSpec) any { return cluster.SecurityGroupCreate{Specs: x} }))},
		{"PUT", "/v2.0/security-groups/{id}", s.write(updater[securityGroupReq, topology.SecurityGroupSpec, topology.SecurityGroup](s, securityGroups, cluster.CmdSecurityGroupUpdate, func(x topology.SecurityGroupSpec) any { return cluster.SecurityGroupUpdate{Spec: x} }))},
		{"DELETE", "/v2.0/security-groups/{id}", s.write(s.securityGroupDelete)},
		{"GET", "/v2.0/security-group-rules", s.read(s.securityGroupRuleList)},
		{"GET", "/v2.0/security-group-rules/{id}", s.read(shower(s, "security_group_rule", "id", "SecurityGroupRuleNotFound", "Security group rule", (*topology.Store).SecurityGroupRule))},
		{"POST", "/v2.0/security-group-rules", s.write(s.securityGroupRuleCreate)},
		{"PUT", "/v2.0/security-group-rules/{id}", s.write(s.securityGroupRuleUpdate)},
		{"DELETE", "/v2.0/security-group-rules/{id}", s.write(s.deleteBy(securityGroupRules, cluster.CmdSecurityGroupRuleDelete))},
		{"GET", "/v2.0/subnetpools", s.read(lister(s, "subnetpools", (*topology.Store).SubnetPools))},
		{"GET", "/v2.0/subnetpools/{id}", s.read(shower(s, "subnetpool", "id", "SubnetPoolNotFound", "Subnet pool", (*topology.Store).SubnetPool))},
		{"POST", "/v2.0/subnetpools", s.write(s.subnetPoolCreate)},
		{"PUT", "/v2.0/subnetpools/{id}", s.write(updater[subnetPoolReq, topology.SubnetPoolSpec, topology.SubnetPool](s, subnetPools, cluster.CmdSubnetPoolUpdate, func(x topology.SubnetPoolSpec) any { return cluster.SubnetPoolUpdate{Spec: x} }))},
		{"DELETE", "/v2.0/subnetpools/{id}", s.write(s.deleteBy(subnetPools, cluster.CmdSubnetPoolDelete))},
		{"GET", "/v2.0/service-providers", s.read(s.serviceProviders)},
		{"GET", "/v2.0/agents", s.read(s.agentList)},
		{"GET", "/v2.0/agents/{id}", s.read(s.agentShow)},
		{"GET", "/v2.0/chassis", adminOnly(s.read(lister(s, "chassis", (*topology.Store).Chassis)))},
		{"GET", "/v2.0/chassis/{name}", adminOnly(s.read(shower(s, "chassis", "name", "ChassisNotFound", "Chassis", (*topology.Store).ChassisByName)))},
		{"POST", "/v2.0/chassis", adminOnly(s.write(s.chassisRegister))},
		{"DELETE", "/v2.0/chassis/{name}", adminOnly(s.write(s.chassisDelete))},
		{"DELETE", "/v2.0/agents/{id}", adminOnly(s.write(s.agentDelete))},
		{"GET", "/v2.0/cluster", adminOnly(s.clusterStatus)},
		{"GET", "/v2.0/cluster/raft-address", s.raftAddress},
		{"DELETE", "/v2.0/cluster/members/{id}", adminOnly(s.write(s.deleteMember))},
		{"GET", "/v2.0/events", adminOnly(s.events)},
		{"GET", "/debug/punts", adminOnly(s.debugPunts)},
		{"GET", "/metrics", adminOnly(s.metrics)},
		{"GET", "/debug/flows", adminOnly(s.debugFlows)},
		{"GET", "/debug/trace", adminOnly(s.debugTrace)},
		{"GET", "/debug/ovsdb", adminOnly(s.debugOVSDB)},
		{"GET", "/debug/logs", adminOnly(s.debugLogs)},
	}, append(s.tagRoutes(), s.quotaRoutes()...)...)
}

// write wraps a mutating handler. The handler proposes through the
// cluster, which forwards to the leader when this node is not it.
func (s *Server) write(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, err)
		}
	}
}

// read wraps a reading handler: local by default, once the node is ready
// (a node still catching up says so: 503); ?consistent=true first makes
// the node apply everything the leader had committed.
func (s *Server) read(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c := r.URL.Query().Get("consistent"); c == "true" || c == "1" {
			if err := s.cluster.Consistent(r.Context()); err != nil {
				writeError(w, err)
				return
			}
		} else if !s.cluster.Ready() {
			writeError(w, cluster.ErrNotReady)
			return
		}
		if err := h(w, r); err != nil {
			writeError(w, err)
		}
	}
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request) {
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	base := scheme + r.Host + "/v2.0/"
	writeJSON(w, http.StatusOK, map[string]any{"versions": []map[string]any{{
		"id": "v2.0", "status": "CURRENT", "links": []map[string]string{{"rel": "self", "href": base}}}}})
}

// extensionList is what /v2.0/extensions advertises: exactly what works,
// so that a client (or tempest) uses what there is and skips the rest.
func extensionList() []map[string]any {
	ext := func(alias, name, desc string) map[string]any {
		return map[string]any{"alias": alias, "name": name, "description": desc, "updated": "2026-11-22T00:00:00Z", "links": []any{}}
	}
	return []map[string]any{
		ext("provider", "Provider Network", "provider:network_type (vxlan, gre, flat, vlan), provider:physical_network and provider:segmentation_id"),
		ext("external-net", "Neutron external network", "router:external: networks routers have their gateway on and floating IPs come from"),
		ext("binding", "Port Binding", "binding:host_id (set by chassis discovery, or beforehand by Nova), binding:vif_type, binding:vif_details, binding:vnic_type, binding:profile"),
		ext("extra_dhcp_opt", "Neutron Extra DHCP options", "extra_dhcp_opts on ports, served by Wyvern's native DHCP"),
		ext("dns-integration", "DNS Integration", "dns_name on ports, dns_domain on networks, answered by Wyvern's internal DNS"),
		ext("router", "Neutron L3 Router", "distributed routers, their interfaces and external gateways, and floating IPs"),
		ext("ext-gw-mode", "Neutron L3 Configurable external gateway mode", "enable_snat in a router's external_gateway_info"),
		ext("extraroute", "Neutron Extra Route", "routes: a router's static routes, each next hop on a subnet it is connected to"),
		ext("floating-ip-port-forwarding", "Floating IP Port Forwarding", "port_forwardings: TCP and UDP ports of a floating IP forwarded to an internal address"),
		ext("dvr", "Distributed Virtual Router", "east-west routing on the source chassis"),
		ext("allowed-address-pairs", "Allowed Address Pairs", "extra addresses a port may send from"),
		ext("security-group", "security-group", "security groups and their rules, stateful, enforced on the chassis of each port; every project has a default group, given to its ports that name none"),
		ext("port-security", "Port Security", "port_security_enabled: off takes a port out of anti-spoofing and of its security groups"),
		ext("standard-attr-description", "Standard Attribute Description", "description"),
		ext("standard-attr-tag", "Tag support for resources with standard attribute: subnet, trunk, network_segment_range, router, network, policy, subnetpool, port, security_group, floatingip", "tags on networks, subnets, ports, routers, floating IPs and security groups: the tags sub-resource and the tags, tags-any, not-tags, not-tags-any filters"),
		ext("tag", "Tag support", "tags on networks (the older alias of standard-attr-tag)"),
		ext("standard-attr-timestamp", "Resource timestamps", "created_at and updated_at, from the raft entry that made the change"),
		ext("revision-if-match", "If-Match constraints based on revision_number", "If-Match: revision_number=N on updates and deletes: 412 when the object is at another revision"),
		ext("pagination", "Pagination support", "limit, marker and page_reverse on lists, with <collection>_links"),
		ext("sorting", "Sorting support", "sort_key and sort_dir on lists"),
		ext("filter-validation", "Filter parameters validation", "an unknown filter is refused with 400"),
		ext("quotas", "Quota management support", "per-project limits on networks, subnets, ports, routers, floating IPs, security groups and their rules, subnet pools; -1 (no limit) by default"),
		ext("quota_details", "Quota details management support", "used, limit and reserved of each resource of a project"),
		ext("subnet_allocation", "Subnet Allocation", "subnet pools: a subnet created with subnetpool_id and no cidr gets the first free prefix of prefixlen (or the pool's default_prefixlen); no two subnets of a pool overlap"),
		ext("service-type", "Neutron Service Type Management", "service-providers: who serves each service type (L3_ROUTER_NAT: Wyvern)"),
		ext("ip-substring-filtering", "IP address substring filtering", "fixed_ips=ip_address_substr=... on ports"),
		ext("project-id", "project_id field enabled", "project_id and tenant_id"),
		ext("net-mtu", "Network MTU", "mtu"),
		ext("standard-attr-revisions", "Resource revision numbers", "revision_number = raft index of the last change"),
	}
}

func (s *Server) extensions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"extensions": extensionList()})
}

// extension shows one extension by its alias.
func (s *Server) extension(w http.ResponseWriter, r *http.Request) {
	alias := r.PathValue("alias")
	for _, e := range extensionList() {
		if e["alias"] == alias {
			writeJSON(w, http.StatusOK, map[string]any{"extension": e})
			return
		}
	}
	writeError(w, &apiError{http.StatusNotFound, "ExtensionNotFound", fmt.Sprintf("Extension with alias %s does not exist", alias)})
}

// resources is GET /v2.0/: the collections, as Neutron lists them.
func (s *Server) resources(w http.ResponseWriter, r *http.Request) {
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	var out []map[string]any
	for _, c := range []struct{ name, collection, path string }{
		{"network", "networks", "networks"}, {"subnet", "subnets", "subnets"}, {"port", "ports", "ports"},
		{"router", "routers", "routers"}, {"floatingip", "floatingips", "floatingips"},
		{"security_group", "security_groups", "security-groups"}, {"security_group_rule", "security_group_rules", "security-group-rules"},
		{"subnetpool", "subnetpools", "subnetpools"}, {"agent", "agents", "agents"}, {"service_provider", "service_providers", "service-providers"},
	} {
		out = append(out, map[string]any{"name": c.name, "collection": c.collection,
			"links": []map[string]string{{"rel": "self", "href": scheme + r.Host + "/v2.0/" + c.path}}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"resources": out})
}

// health is the body of /livez and /readyz: what holds, what is missing.
type health struct {
	Status       string   `json:"status"` // live, ready, not ready
	Node         string   `json:"node"`
	AppliedIndex uint64   `json:"applied_index"`
	Missing      []string `json:"missing,omitempty"`
}

// livez is 200 while the process serves requests: it asks nothing else.
func (s *Server) livez(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, health{Status: "live", Node: s.cluster.NodeID(), AppliedIndex: s.cluster.AppliedIndex()})
}

// readyz is 200 once the node has applied the log as far as the leader
// had committed it and, with a local chassis, that chassis is connected
// to OVSDB, its bridge programmed and the chassis registered; else 503,
// naming what is missing.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var missing []string
	if !s.cluster.Ready() {
		missing = append(missing, "raft: not caught up with the leader's commit index")
	}
	if s.opts.Unready != nil {
		missing = append(missing, s.opts.Unready()...)
	}
	h := health{Status: "ready", Node: s.cluster.NodeID(), AppliedIndex: s.cluster.AppliedIndex(), Missing: missing}
	code := http.StatusOK
	if len(missing) > 0 {
		h.Status, code = "not ready", http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
}

func (s *Server) debugPunts(w http.ResponseWriter, r *http.Request) {
	if s.opts.Debug == nil {
		writeError(w, &apiError{http.StatusNotFound, "HTTPNotFound", "this node has no punt counters"})
		return
	}
	writeJSON(w, http.StatusOK, s.opts.Debug(r.Context()))
}
