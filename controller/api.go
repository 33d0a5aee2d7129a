package controller

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// MaxBodyBytes bounds a request body (a bulk create of a few thousand
// ports fits comfortably).
const MaxBodyBytes = 8 << 20

// MaxBulk bounds the objects of one bulk create: one raft entry each.
const MaxBulk = 10_000

// forwardedHeader marks a request a follower forwarded to the leader, so a
// request is forwarded at most once.
const forwardedHeader = "X-Wyvern-Forwarded"

// apiError is an error with its HTTP status and Neutron type.
type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "BadRequest", fmt.Sprintf(format, args...)}
}

// writeError answers with Neutron's error body. HTTP statuses are decided
// here and nowhere else.
func writeError(w http.ResponseWriter, err error) {
	status, typ, msg := http.StatusInternalServerError, "InternalServerError", err.Error()
	var ae *apiError
	var te *topology.Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		status, typ, msg = ae.status, ae.typ, ae.msg
	case errors.As(err, &te):
		typ, msg = te.Type, te.Message
		switch te.Kind {
		case topology.KindInvalid:
			status = http.StatusBadRequest
		case topology.KindNotFound:
			status = http.StatusNotFound
		case topology.KindConflict:
			status = http.StatusConflict
		}
	case errors.As(err, &mbe):
		status, typ, msg = http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fmt.Sprintf("request body exceeds %d bytes", mbe.Limit)
	case errors.Is(err, ErrNoLeader), errors.Is(err, errNotLeader), errors.Is(err, errNotReady):
		status, typ = http.StatusServiceUnavailable, "ServiceUnavailable"
	}
	writeJSON(w, status, map[string]any{"NeutronError": map[string]string{"type": typ, "message": msg, "detail": ""}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var errNotReady = errors.New("node is not ready: still joining or catching up")

// newUUID returns a random version 4 UUID. IDs are chosen before a command
// is proposed, never inside Apply.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// resource describes one Neutron collection.
type resource struct {
	singular, plural string
	// typed are the fields Wyvern acts on; passive ones it stores and
	// returns; anything else is refused.
	typed, passive map[string]bool
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

var (
	networks = resource{"network", "networks",
		set("id", "name", "admin_state_up", "provider:network_type", "provider:segmentation_id", "mtu", "shared",
			"description", "project_id", "tenant_id", "tags"),
		set("provider:physical_network", "availability_zone_hints", "dns_domain", "qos_policy_id", "router:external",
			"port_security_enabled", "is_default", "segments", "vlan_transparent")}
	subnets = resource{"subnet", "subnets",
		set("id", "network_id", "name", "ip_version", "cidr", "gateway_ip", "allocation_pools", "enable_dhcp",
			"dns_nameservers", "host_routes", "description", "project_id", "tenant_id", "tags"),
		set("ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id", "use_default_subnetpool", "prefixlen",
			"segment_id", "service_types", "dns_publish_fixed_ip")}
	ports = resource{"port", "ports",
		set("id", "network_id", "name", "mac_address", "fixed_ips", "allowed_address_pairs", "port_security_enabled",
			"device_owner", "device_id", "admin_state_up", "binding:host_id", "description", "project_id", "tenant_id",
			"tags", "security_groups"),
		set("binding:vnic_type", "binding:profile", "extra_dhcp_opts", "dns_name", "dns_domain", "qos_policy_id",
			"propagate_uplink_status", "numa_affinity_policy", "data_plane_status")}
	routers = resource{"router", "routers",
		set("id", "name", "admin_state_up", "distributed", "description", "project_id", "tenant_id", "tags"),
		set("external_gateway_info", "ha", "availability_zone_hints", "flavor_id", "routes", "enable_ndp_proxy")}
)

// splitFields checks every field of one object against the resource:
// typed fields are re-encoded for strict decoding, passive ones kept raw.
func (r resource) splitFields(obj map[string]json.RawMessage) ([]byte, map[string]json.RawMessage, error) {
	typed := map[string]json.RawMessage{}
	var passive map[string]json.RawMessage
	for k, v := range obj {
		switch {
		case r.typed[k]:
			typed[k] = v
		case r.passive[k]:
			if passive == nil {
				passive = map[string]json.RawMessage{}
			}
			passive[k] = v
		default:
			return nil, nil, badRequest("Unrecognized attribute(s) '%s'", k)
		}
	}
	b, err := json.Marshal(typed)
	return b, passive, err
}

// decodeBody reads {"<singular>": {...}} or, when bulk is allowed,
// {"<plural>": [...]}, and returns the objects' typed and passive parts.
func (r resource) decodeBody(req *http.Request, bulkOK bool) ([][]byte, []map[string]json.RawMessage, bool, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, nil, false, err
	}
	var wrapper map[string]json.RawMessage
	if err := json.Unmarshal(body, &wrapper); err != nil {
		return nil, nil, false, badRequest("malformed JSON: %v", err)
	}
	var objs []map[string]json.RawMessage
	bulk := false
	for k, v := range wrapper {
		switch {
		case k == r.singular && !bulk && objs == nil:
			var o map[string]json.RawMessage
			if err := json.Unmarshal(v, &o); err != nil || o == nil {
				return nil, nil, false, badRequest("'%s' must be an object", k)
			}
			objs = append(objs, o)
		case k == r.plural && bulkOK && objs == nil:
			if err := json.Unmarshal(v, &objs); err != nil {
				return nil, nil, false, badRequest("'%s' must be a list of objects", k)
			}
			if len(objs) == 0 {
				return nil, nil, false, badRequest("'%s' is empty", k)
			}
			if len(objs) > MaxBulk {
				return nil, nil, false, badRequest("a bulk request holds at most %d %s, not %d", MaxBulk, k, len(objs))
			}
			bulk = true
		default:
			return nil, nil, false, badRequest("Unrecognized attribute(s) '%s'", k)
		}
	}
	if objs == nil {
		return nil, nil, false, badRequest("Resource body required: {\"%s\": {...}}", r.singular)
	}
	typed := make([][]byte, len(objs))
	passive := make([]map[string]json.RawMessage, len(objs))
	for i, o := range objs {
		if o == nil {
			return nil, nil, false, badRequest("'%s' must be a list of objects", r.plural)
		}
		if typed[i], passive[i], err = r.splitFields(o); err != nil {
			return nil, nil, false, err
		}
	}
	return typed, passive, bulk, nil
}

// readStrict reads a whole body and decodes it strictly.
func readStrict(r *http.Request, v any) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	return strict(b, v)
}

// strict decodes typed fields, refusing wrong types.
func strict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("Invalid input: %v", err)
	}
	return nil
}

// Request bodies: pointer fields distinguish absent from zero.
type networkReq struct {
	ID             *string  `json:"id"`
	Name           *string  `json:"name"`
	AdminStateUp   *bool    `json:"admin_state_up"`
	NetworkType    *string  `json:"provider:network_type"`
	SegmentationID *uint32  `json:"provider:segmentation_id"`
	MTU            *int     `json:"mtu"`
	Shared         *bool    `json:"shared"`
	Description    *string  `json:"description"`
	ProjectID      *string  `json:"project_id"`
	TenantID       *string  `json:"tenant_id"`
	Tags           []string `json:"tags"`
}

type subnetReq struct {
	ID              *string                   `json:"id"`
	NetworkID       *string                   `json:"network_id"`
	Name            *string                   `json:"name"`
	IPVersion       *int                      `json:"ip_version"`
	CIDR            *string                   `json:"cidr"`
	GatewayIP       json.RawMessage           `json:"gateway_ip"`
	AllocationPools []topology.AllocationPool `json:"allocation_pools"`
	EnableDHCP      *bool                     `json:"enable_dhcp"`
	DNSNameservers  []string                  `json:"dns_nameservers"`
	HostRoutes      []topology.HostRoute      `json:"host_routes"`
	Description     *string                   `json:"description"`
	ProjectID       *string                   `json:"project_id"`
	TenantID        *string                   `json:"tenant_id"`
	Tags            []string                  `json:"tags"`
}

type fixedIPReq struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

type portReq struct {
	ID                  *string                 `json:"id"`
	NetworkID           *string                 `json:"network_id"`
	Name                *string                 `json:"name"`
	MACAddress          *string                 `json:"mac_address"`
	FixedIPs            *[]fixedIPReq           `json:"fixed_ips"`
	AllowedAddressPairs *[]topology.AddressPair `json:"allowed_address_pairs"`
	PortSecurityEnabled *bool                   `json:"port_security_enabled"`
	DeviceOwner         *string                 `json:"device_owner"`
	DeviceID            *string                 `json:"device_id"`
	AdminStateUp        *bool                   `json:"admin_state_up"`
	HostID              *string                 `json:"binding:host_id"`
	Description         *string                 `json:"description"`
	ProjectID           *string                 `json:"project_id"`
	TenantID            *string                 `json:"tenant_id"`
	Tags                []string                `json:"tags"`
	SecurityGroups      []string                `json:"security_groups"`
}

type routerReq struct {
	ID           *string  `json:"id"`
	Name         *string  `json:"name"`
	AdminStateUp *bool    `json:"admin_state_up"`
	Distributed  *bool    `json:"distributed"`
	Description  *string  `json:"description"`
	ProjectID    *string  `json:"project_id"`
	TenantID     *string  `json:"tenant_id"`
	Tags         []string `json:"tags"`
}

// idFor picks the object's id: given on create (a UUID the client chose) or
// generated; on update it must match the path if present.
func idFor(given *string, pathID string) (string, error) {
	switch {
	case pathID != "" && given != nil && *given != pathID:
		return "", badRequest("id %q in the body differs from the path", *given)
	case pathID != "":
		return pathID, nil
	case given != nil && *given == "":
		return "", badRequest("id must not be empty")
	case given != nil:
		return *given, nil
	}
	return newUUID(), nil
}

func (r networkReq) spec(pathID string, extra map[string]json.RawMessage) (topology.NetworkSpec, error) {
	id, err := idFor(r.ID, pathID)
	return topology.NetworkSpec{Extra: extra, ID: id, Name: r.Name, AdminStateUp: r.AdminStateUp, NetworkType: r.NetworkType,
		SegmentationID: r.SegmentationID, MTU: r.MTU, Shared: r.Shared, Description: r.Description,
		ProjectID: r.ProjectID, TenantID: r.TenantID, Tags: r.Tags}, err
}

func (r subnetReq) spec(pathID string, extra map[string]json.RawMessage) (topology.SubnetSpec, error) {
	id, err := idFor(r.ID, pathID)
	sp := topology.SubnetSpec{Extra: extra, ID: id, NetworkID: r.NetworkID, Name: r.Name, IPVersion: r.IPVersion, CIDR: r.CIDR,
		AllocationPools: r.AllocationPools, EnableDHCP: r.EnableDHCP, DNSNameservers: r.DNSNameservers,
		HostRoutes: r.HostRoutes, Description: r.Description, ProjectID: r.ProjectID, TenantID: r.TenantID, Tags: r.Tags}
	switch {
	case r.GatewayIP == nil:
	case string(r.GatewayIP) == "null":
		sp.GatewayNone = true
	default:
		var g string
		if json.Unmarshal(r.GatewayIP, &g) != nil {
			return sp, badRequest("gateway_ip must be an address or null")
		}
		sp.GatewayIP = &g
	}
	return sp, err
}

func (r portReq) spec(pathID string, extra map[string]json.RawMessage) (topology.PortSpec, error) {
	id, err := idFor(r.ID, pathID)
	sp := topology.PortSpec{Extra: extra, ID: id, NetworkID: r.NetworkID, Name: r.Name, MACAddress: r.MACAddress,
		AllowedAddressPairs: r.AllowedAddressPairs, PortSecurityEnabled: r.PortSecurityEnabled, DeviceOwner: r.DeviceOwner,
		DeviceID: r.DeviceID, AdminStateUp: r.AdminStateUp, HostID: r.HostID, Description: r.Description,
		ProjectID: r.ProjectID, TenantID: r.TenantID, Tags: r.Tags, SecurityGroups: r.SecurityGroups}
	if r.FixedIPs != nil {
		f := make([]topology.FixedIPSpec, len(*r.FixedIPs))
		for i, x := range *r.FixedIPs {
			f[i] = topology.FixedIPSpec{SubnetID: x.SubnetID, IPAddress: x.IPAddress}
		}
		sp.FixedIPs = &f
	}
	return sp, err
}

func (r routerReq) spec(pathID string, extra map[string]json.RawMessage) (topology.RouterSpec, error) {
	id, err := idFor(r.ID, pathID)
	return topology.RouterSpec{Extra: extra, ID: id, Name: r.Name, AdminStateUp: r.AdminStateUp, Distributed: r.Distributed,
		Description: r.Description, ProjectID: r.ProjectID, TenantID: r.TenantID, Tags: r.Tags}, err
}

// decodeSpecs decodes a create or update body into store specs.
func decodeSpecs[Req specReq[Spec], Spec any](r resource, req *http.Request, pathID string, bulkOK bool) ([]Spec, bool, error) {
	typed, passive, bulk, err := r.decodeBody(req, bulkOK)
	if err != nil {
		return nil, false, err
	}
	specs := make([]Spec, len(typed))
	for i := range typed {
		var rq Req
		if err := strict(typed[i], &rq); err != nil {
			return nil, false, err
		}
		if specs[i], err = rq.spec(pathID, passive[i]); err != nil {
			return nil, false, err
		}
	}
	return specs, bulk, nil
}

// render turns an object into its Neutron JSON map: passive fields at the
// top level, Wyvern's own keys kept.
func render(v any) map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if extra, ok := m["extra"].(map[string]any); ok {
		for k, x := range extra {
			m[k] = x
		}
		delete(m, "extra")
	}
	return m
}

// renderRaw encodes an object as Neutron JSON in one pass when it has no
// passive fields to splice in (the common case, and the one that matters
// for bulk), else through render.
func renderRaw(v any) json.RawMessage {
	if e, ok := v.(interface{ HasExtra() bool }); !ok || !e.HasExtra() {
		if b, err := json.Marshal(v); err == nil {
			return b
		}
	}
	b, _ := json.Marshal(render(v))
	return b
}

// writeCollection writes {"<key>": [objects...]} from pre-encoded objects.
func writeCollection(w http.ResponseWriter, status int, key string, objs []json.RawMessage) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	size := len(key) + 8
	for _, o := range objs {
		size += len(o) + 1
	}
	b := make([]byte, 0, size)
	b = append(b, `{"`...)
	b = append(b, key...)
	b = append(b, `":[`...)
	for i, o := range objs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, o...)
	}
	b = append(b, "]}\n"...)
	_, _ = w.Write(b)
}

// reservedQuery are list parameters that are not field filters.
var reservedQuery = set("fields", "consistent", "limit", "marker", "sort_key", "sort_dir", "page_reverse")

// filter keeps the objects whose top-level scalar fields match every
// query filter (several values of one filter: any of them).
func filter(objs []map[string]any, q map[string][]string) []map[string]any {
	out := make([]map[string]any, 0, len(objs))
next:
	for _, o := range objs {
		for k, want := range q {
			if reservedQuery[k] {
				continue
			}
			have, ok := o[k]
			if !ok {
				continue next
			}
			s := scalarString(have)
			match := false
			for _, w := range want {
				if s == w {
					match = true
					break
				}
			}
			if !match {
				continue next
			}
		}
		out = append(out, o)
	}
	return out
}

func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case nil:
		return ""
	}
	return "\x00" // not a scalar: matches no filter
}

// fieldsOnly applies Neutron's ?fields=a&fields=b projection.
func fieldsOnly(o map[string]any, fields []string) map[string]any {
	if len(fields) == 0 {
		return o
	}
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		if v, ok := o[f]; ok {
			out[f] = v
		}
	}
	return out
}

// route is one API endpoint; docs/openapi.yaml must describe each.
type route struct {
	method, path string
	handler      http.HandlerFunc
}

// routes is the API, declared once.
func (n *Node) routes() []route {
	return []route{
		{"GET", "/{$}", n.versions},
		{"GET", "/v2.0", n.versions},
		{"GET", "/v2.0/{$}", n.versions},
		{"GET", "/v2.0/extensions", n.extensions},
		{"GET", "/healthz", n.healthz},
		{"GET", "/v2.0/networks", n.read(lister(n, "networks", (*topology.Store).Networks))},
		{"GET", "/v2.0/networks/{id}", n.read(shower(n, "network", "id", "NetworkNotFound", "Network", (*topology.Store).Network))},
		{"POST", "/v2.0/networks", n.write(creator[networkReq, topology.NetworkSpec, topology.Network](n, networks, cmdNetworksCreate, func(s []topology.NetworkSpec) any { return networksCreate{Specs: s} }))},
		{"PUT", "/v2.0/networks/{id}", n.write(updater[networkReq, topology.NetworkSpec, topology.Network](n, networks, cmdNetworkUpdate, func(s topology.NetworkSpec) any { return networkUpdate{Spec: s} }))},
		{"DELETE", "/v2.0/networks/{id}", n.write(n.deleteBy(cmdNetworkDelete))},
		{"GET", "/v2.0/subnets", n.read(lister(n, "subnets", (*topology.Store).Subnets))},
		{"GET", "/v2.0/subnets/{id}", n.read(shower(n, "subnet", "id", "SubnetNotFound", "Subnet", (*topology.Store).Subnet))},
		{"POST", "/v2.0/subnets", n.write(creator[subnetReq, topology.SubnetSpec, topology.Subnet](n, subnets, cmdSubnetsCreate, func(s []topology.SubnetSpec) any { return subnetsCreate{Specs: s} }))},
		{"PUT", "/v2.0/subnets/{id}", n.write(updater[subnetReq, topology.SubnetSpec, topology.Subnet](n, subnets, cmdSubnetUpdate, func(s topology.SubnetSpec) any { return subnetUpdate{Spec: s} }))},
		{"DELETE", "/v2.0/subnets/{id}", n.write(n.deleteBy(cmdSubnetDelete))},
		{"GET", "/v2.0/ports", n.read(lister(n, "ports", (*topology.Store).Ports))},
		{"GET", "/v2.0/ports/{id}", n.read(shower(n, "port", "id", "PortNotFound", "Port", (*topology.Store).Port))},
		{"POST", "/v2.0/ports", n.write(creator[portReq, topology.PortSpec, topology.Port](n, ports, cmdPortsCreate, func(s []topology.PortSpec) any { return portsCreate{Specs: s} }))},
		{"PUT", "/v2.0/ports/{id}", n.write(updater[portReq, topology.PortSpec, topology.Port](n, ports, cmdPortUpdate, func(s topology.PortSpec) any { return portUpdate{Spec: s} }))},
		{"DELETE", "/v2.0/ports/{id}", n.write(n.deleteBy(cmdPortDelete))},
		{"GET", "/v2.0/routers", n.read(lister(n, "routers", (*topology.Store).Routers))},
		{"GET", "/v2.0/routers/{id}", n.read(shower(n, "router", "id", "RouterNotFound", "Router", (*topology.Store).Router))},
		{"POST", "/v2.0/routers", n.write(creator[routerReq, topology.RouterSpec, topology.Router](n, routers, cmdRoutersCreate, func(s []topology.RouterSpec) any { return routersCreate{Specs: s} }))},
		{"PUT", "/v2.0/routers/{id}", n.write(updater[routerReq, topology.RouterSpec, topology.Router](n, routers, cmdRouterUpdate, func(s topology.RouterSpec) any { return routerUpdate{Spec: s} }))},
		{"DELETE", "/v2.0/routers/{id}", n.write(n.deleteBy(cmdRouterDelete))},
		{"PUT", "/v2.0/ports/{id}/vip", n.write(n.claimVIP)},
		{"PUT", "/v2.0/routers/{id}/add_router_interface", n.write(n.routerInterface(cmdRouterInterfaceAdd))},
		{"PUT", "/v2.0/routers/{id}/remove_router_interface", n.write(n.routerInterface(cmdRouterInterfaceRemove))},
		{"GET", "/v2.0/chassis", n.read(lister(n, "chassis", (*topology.Store).Chassis))},
		{"GET", "/v2.0/chassis/{name}", n.read(shower(n, "chassis", "name", "ChassisNotFound", "Chassis", (*topology.Store).ChassisByName))},
		{"PUT", "/v2.0/chassis/{name}", n.write(n.registerChassis)},
		{"PUT", "/v2.0/chassis/{name}/bindings", n.write(n.chassisBindings)},
		{"PUT", "/v2.0/chassis/{name}/active", n.write(n.chassisActive)},
		{"GET", "/v2.0/cluster", n.clusterStatus},
		{"POST", "/v2.0/cluster/members", n.write(n.joinMember)},
		{"DELETE", "/v2.0/cluster/members/{id}", n.write(n.deleteMember)},
		{"GET", "/v2.0/events", n.events},
		{"GET", "/debug/punts", n.puntCounters},
	}
}

// newAPIServer builds the HTTP server with Neutron's routes.
func (n *Node) newAPIServer() *http.Server {
	mux := http.NewServeMux()
	for _, rt := range n.routes() {
		mux.HandleFunc(rt.method+" "+rt.path, rt.handler)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{http.StatusNotFound, "HTTPNotFound", "The resource could not be found: " + r.Method + " " + r.URL.Path})
	})
	return &http.Server{
		Handler:           n.limitBody(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second, // event long-polls wait up to 60 s
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

func (n *Node) limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		h.ServeHTTP(w, r)
	})
}

// write wraps a mutating handler: on a follower the request goes to the
// leader, once; on the leader the handler proposes through raft.
func (n *Node) write(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if n.raft.State() != raft.Leader {
			if r.Header.Get(forwardedHeader) != "" {
				writeError(w, fmt.Errorf("%w: forwarded to a node that is no longer leader", ErrNoLeader))
				return
			}
			n.forward(w, r)
			return
		}
		if err := h(w, r); err != nil {
			writeError(w, err)
		}
	}
}

// read wraps a reading handler: local by default; ?consistent=true makes
// the leader confirm its leadership first (a follower asks the leader).
func (n *Node) read(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c := r.URL.Query().Get("consistent"); c == "true" || c == "1" {
			if n.raft.State() != raft.Leader {
				if r.Header.Get(forwardedHeader) != "" {
					writeError(w, fmt.Errorf("%w: forwarded to a node that is no longer leader", ErrNoLeader))
					return
				}
				n.forward(w, r)
				return
			}
			if err := n.leaderCaughtUp(); err != nil {
				writeError(w, err)
				return
			}
		} else if !n.ready.Load() {
			writeError(w, errNotReady)
			return
		}
		if err := h(w, r); err != nil {
			writeError(w, err)
		}
	}
}

// forward replays the request on the leader and copies its answer back.
func (n *Node) forward(w http.ResponseWriter, r *http.Request) {
	addr, err := n.leaderAPI()
	if err != nil {
		writeError(w, err)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, r.Method, "http://"+addr+r.URL.RequestURI(), bytes.NewReader(body))
	req.Header = r.Header.Clone()
	req.Header.Set(forwardedHeader, n.cfg.NodeID)
	resp, err := n.client.Do(req)
	if err != nil {
		writeError(w, fmt.Errorf("%w: leader at %s did not answer: %v", ErrNoLeader, addr, err))
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func (n *Node) versions(w http.ResponseWriter, r *http.Request) {
	base := "http://" + r.Host + "/v2.0/"
	writeJSON(w, http.StatusOK, map[string]any{"versions": []map[string]any{{
		"id": "v2.0", "status": "CURRENT", "links": []map[string]string{{"rel": "self", "href": base}}}}})
}

func (n *Node) extensions(w http.ResponseWriter, r *http.Request) {
	ext := func(alias, name, desc string) map[string]any {
		return map[string]any{"alias": alias, "name": name, "description": desc, "updated": "2026-11-22T00:00:00Z", "links": []any{}}
	}
	writeJSON(w, http.StatusOK, map[string]any{"extensions": []map[string]any{
		ext("provider", "Provider Network", "provider:network_type (vxlan, gre) and provider:segmentation_id"),
		ext("binding", "Port Binding", "binding:host_id, set by chassis discovery"),
		ext("router", "Neutron L3 Router", "distributed routers and their interfaces"),
		ext("dvr", "Distributed Virtual Router", "east-west routing on the source chassis"),
		ext("allowed-address-pairs", "Allowed Address Pairs", "extra addresses a port may send from"),
		ext("port-security", "Port Security", "port_security_enabled"),
		ext("standard-attr-description", "Standard Attribute Description", "description"),
		ext("standard-attr-tag", "Tag support", "tags"),
		ext("project-id", "project_id field enabled", "project_id and tenant_id"),
		ext("net-mtu", "Network MTU", "mtu"),
		ext("standard-attr-revisions", "Resource revision numbers", "revision_number = raft index of the last change"),
	}})
}

func (n *Node) healthz(w http.ResponseWriter, r *http.Request) {
	if !n.ready.Load() {
		writeError(w, errNotReady)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "node": n.cfg.NodeID, "applied_index": n.raft.AppliedIndex()})
}

// --- collections --------------------------------------------------------

// list renders, filters and answers a collection.
func list[T any](w http.ResponseWriter, r *http.Request, plural string, items []T) error {
	if len(r.URL.Query()) == 0 { // no filters: encode each object once
		raw := make([]json.RawMessage, len(items))
		for i, it := range items {
			raw[i] = renderRaw(it)
		}
		writeCollection(w, http.StatusOK, plural, raw)
		return nil
	}
	objs := make([]map[string]any, len(items))
	for i, it := range items {
		objs[i] = render(it)
	}
	q := r.URL.Query()
	objs = filter(objs, q)
	for i := range objs {
		objs[i] = fieldsOnly(objs[i], q["fields"])
	}
	writeJSON(w, http.StatusOK, map[string]any{plural: objs})
	return nil
}

func show[T any](w http.ResponseWriter, r *http.Request, singular string, item T, ok bool, notFound *topology.Error) error {
	if !ok {
		return notFound
	}
	writeJSON(w, http.StatusOK, map[string]any{singular: fieldsOnly(render(item), r.URL.Query()["fields"])})
	return nil
}

func notFoundErr(typ, what, id string) *topology.Error {
	return &topology.Error{Kind: topology.KindNotFound, Type: typ, Message: fmt.Sprintf("%s %s could not be found.", what, id)}
}

// lister handles GET of a collection read from the store.
func lister[T any](n *Node, plural string, all func(*topology.Store) []T) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var items []T
		n.fsm.Read(func(s *topology.Store) { items = all(s) })
		return list(w, r, plural, items)
	}
}

// shower handles GET of one object; key is the path parameter naming it.
func shower[T any](n *Node, singular, key, errType, what string, get func(*topology.Store, string) (T, bool)) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue(key)
		var it T
		var ok bool
		n.fsm.Read(func(s *topology.Store) { it, ok = get(s, id) })
		return show(w, r, singular, it, ok, notFoundErr(errType, what, id))
	}
}

// answer writes a created or updated object (or a list, for bulk).
func answer[T any](w http.ResponseWriter, status int, r resource, v any, bulk bool) error {
	switch x := v.(type) {
	case []T:
		if bulk {
			objs := make([]json.RawMessage, len(x))
			for i, it := range x {
				objs[i] = renderRaw(it)
			}
			writeCollection(w, status, r.plural, objs)
			return nil
		}
		writeJSON(w, status, map[string]any{r.singular: renderRaw(x[0])})
	case T:
		writeJSON(w, status, map[string]any{r.singular: renderRaw(x)})
	default:
		return fmt.Errorf("unexpected result %T", v)
	}
	return nil
}

// specReq is a request body that turns into a store spec.
type specReq[Spec any] interface {
	spec(string, map[string]json.RawMessage) (Spec, error)
}

// creator handles POST of a collection: one object or an atomic bulk, one
// raft command either way.
func creator[Req specReq[Spec], Spec, Obj any](n *Node, res resource, cmd CommandType, payload func([]Spec) any) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		specs, bulk, err := decodeSpecs[Req, Spec](res, r, "", true)
		if err != nil {
			return err
		}
		v, err := n.propose(r.Context(), cmd, payload(specs))
		if err != nil {
			return err
		}
		return answer[Obj](w, http.StatusCreated, res, v, bulk)
	}
}

// updater handles PUT of one object.
func updater[Req specReq[Spec], Spec, Obj any](n *Node, res resource, cmd CommandType, payload func(Spec) any) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		specs, _, err := decodeSpecs[Req, Spec](res, r, r.PathValue("id"), false)
		if err != nil {
			return err
		}
		v, err := n.propose(r.Context(), cmd, payload(specs[0]))
		if err != nil {
			return err
		}
		return answer[Obj](w, http.StatusOK, res, v, false)
	}
}

func (n *Node) deleteBy(t CommandType) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if _, err := n.propose(r.Context(), t, byID{ID: r.PathValue("id")}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (n *Node) routerInterface(t CommandType) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var body struct {
			SubnetID string `json:"subnet_id"`
		}
		if err := readStrict(r, &body); err != nil {
			return err
		}
		if body.SubnetID == "" {
			return badRequest("subnet_id is required")
		}
		router := r.PathValue("id")
		v, err := n.propose(r.Context(), t, routerIface{Router: router, Subnet: body.SubnetID, PortID: newUUID()})
		if err != nil {
			return err
		}
		p := v.(topology.Port)
		writeJSON(w, http.StatusOK, map[string]any{"id": router, "subnet_id": body.SubnetID, "subnet_ids": []string{body.SubnetID},
			"port_id": p.ID, "network_id": p.NetworkID, "project_id": p.ProjectID, "tenant_id": p.TenantID})
		return nil
	}
}

// claimVIP records a port as the holder of a shared address (reported by
// the node that saw the port's gratuitous ARP).
func (n *Node) claimVIP(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		IPAddress string `json:"ip_address"`
	}
	if err := readStrict(r, &body); err != nil {
		return err
	}
	prev, err := n.propose(r.Context(), cmdVIPOwner, vipOwner{Port: r.PathValue("id"), IP: body.IPAddress})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"port_id": r.PathValue("id"), "ip_address": body.IPAddress, "previous_port_id": prev})
	return nil
}

// --- chassis (reported by the local-OVS agents) ----------------------------

func (n *Node) registerChassis(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Chassis struct {
			EncapIP    string   `json:"encap_ip"`
			Encaps     []string `json:"encaps"`
			DatapathID string   `json:"datapath_id"`
			NodeID     string   `json:"node_id"`
			Connected  bool     `json:"connected"`
			LastSeen   string   `json:"last_seen"`
		} `json:"chassis"`
	}
	if err := readStrict(r, &body); err != nil {
		return err
	}
	c := body.Chassis
	v, err := n.propose(r.Context(), cmdChassisRegister, chassisReg{Spec: topology.ChassisSpec{Name: r.PathValue("name"),
		EncapIP: c.EncapIP, Encaps: c.Encaps, DatapathID: c.DatapathID, NodeID: c.NodeID, Connected: c.Connected, LastSeen: c.LastSeen}})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"chassis": renderRaw(v)})
	return nil
}

func (n *Node) chassisBindings(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Bindings []topology.Binding `json:"bindings"`
	}
	if err := readStrict(r, &body); err != nil {
		return err
	}
	v, err := n.propose(r.Context(), cmdChassisBindings, chassisBinds{Chassis: r.PathValue("name"), Bindings: body.Bindings})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"changed": v})
	return nil
}

func (n *Node) chassisActive(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Ports []string `json:"ports"`
	}
	if err := readStrict(r, &body); err != nil {
		return err
	}
	v, err := n.propose(r.Context(), cmdPortsActive, portsActive{Chassis: r.PathValue("name"), Ports: body.Ports})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"changed": v})
	return nil
}

// --- cluster -------------------------------------------------------------

type memberStatus struct {
	ID          string `json:"id"`
	RaftAddress string `json:"raft_address"`
	APIAddress  string `json:"api_address"`
	Suffrage    string `json:"suffrage"`
	State       string `json:"state"`
}

func (n *Node) clusterStatus(w http.ResponseWriter, r *http.Request) {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		writeError(w, err)
		return
	}
	_, leader := n.raft.LeaderWithID()
	regs := map[string]topology.Member{}
	n.fsm.Read(func(s *topology.Store) {
		for _, m := range s.Members() {
			regs[m.ID] = m
		}
	})
	var members []memberStatus
	for _, s := range cf.Configuration().Servers {
		m := memberStatus{ID: string(s.ID), RaftAddress: string(s.Address), APIAddress: regs[string(s.ID)].APIAddr,
			Suffrage: "voter", State: "follower"}
		if s.Suffrage != raft.Voter {
			m.Suffrage = "nonvoter"
		}
		if s.ID == leader {
			m.State = "leader"
		}
		if s.ID == raft.ServerID(n.cfg.NodeID) {
			m.State = strings.ToLower(n.raft.State().String())
		}
		members = append(members, m)
	}
	sort.Slice(members, func(i, j int) bool { return members[i].ID < members[j].ID })
	writeJSON(w, http.StatusOK, map[string]any{"cluster": map[string]any{
		"leader": string(leader), "members": members, "applied_index": n.raft.AppliedIndex(),
		"commit_index": n.raft.CommitIndex(), "node": n.cfg.NodeID, "ready": n.ready.Load()}})
}

func (n *Node) joinMember(w http.ResponseWriter, r *http.Request) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	var req joinRequest
	if err := strict(b, &req); err != nil {
		return err
	}
	switch req.Voter {
	case "", VoterAuto, VoterTrue, VoterFalse:
	default:
		return badRequest("voter must be auto, true or false")
	}
	reply, err := n.addMember(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"member": reply})
	return nil
}

func (n *Node) deleteMember(w http.ResponseWriter, r *http.Request) error {
	if err := n.removeMember(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// events is the CMS's change feed: GET /v2.0/events?since=INDEX waits up to
// ?timeout= seconds (default 30, at most 60) for changes after INDEX.
// 410 Gone means the changes since INDEX are no longer held: read
// everything again and continue from the returned index.
func (n *Node) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err := strconv.ParseUint(q.Get("since"), 10, 64)
	if q.Get("since") == "" {
		since, err = 0, nil
	}
	if err != nil {
		writeError(w, badRequest("since must be a raft index"))
		return
	}
	timeout := 30 * time.Second
	if t := q.Get("timeout"); t != "" {
		secs, err := strconv.Atoi(t)
		if err != nil || secs < 0 || secs > 60 {
			writeError(w, badRequest("timeout must be 0..60 seconds"))
			return
		}
		timeout = time.Duration(secs) * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	feed := n.fsm.Feed()
	changes, err := feed.Wait(ctx, since)
	if errors.Is(err, ErrResync) {
		writeJSON(w, http.StatusGone, map[string]any{"NeutronError": map[string]string{
			"type": "ResyncRequired", "message": err.Error(), "detail": ""}, "index": feed.Last()})
		return
	}
	next := since
	if len(changes) > 0 {
		next = changes[len(changes)-1].Index
	}
	if changes == nil {
		changes = []topology.Change{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": changes, "index": next})
}
