package northbound

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Who may do what, as Neutron's default policy has it: an admin sees and
// changes everything; anyone else sees its own project's resources plus
// shared networks (and their subnets) and external networks, and changes
// only its own. Another project's resource is not found (404), never
// forbidden, so that its existence does not leak; an admin-only attribute
// or action is 403.

// Caller is who a request speaks for.
type Caller struct {
	UserID    string
	ProjectID string
	Admin     bool
}

// Authenticator tells who a token speaks for. An error wrapping
// ErrUnauthenticated answers 401; any other, 503.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Caller, error)
}

// ErrUnauthenticated: no token, or one the identity service refused.
var ErrUnauthenticated = errors.New("the request you have made requires authentication")

type callerKey struct{}

// admin is the caller of every request when the API runs without an
// Authenticator (--auth none).
var admin = Caller{Admin: true}

func callerOf(ctx context.Context) Caller {
	if c, ok := ctx.Value(callerKey{}).(Caller); ok {
		return c
	}
	return Caller{}
}

// public are the routes answered without a token, as Neutron answers
// version discovery: what a client or a joining node needs before it has
// credentials, and the health probes of a load balancer or an init system.
var public = set("/", "/v2.0", "/v2.0/", "/livez", "/readyz", "/healthz", "/v2.0/cluster/raft-address")

// authenticate puts the caller in each request's context: admin without
// an Authenticator; else whoever X-Auth-Token speaks for, or 401.
func (s *Server) authenticate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := admin
		if s.opts.Auth != nil && !(r.Method == http.MethodGet && public[r.URL.Path]) {
			var err error
			c, err = s.opts.Auth.Authenticate(r.Context(), r.Header.Get("X-Auth-Token"))
			if err != nil {
				if errors.Is(err, ErrUnauthenticated) {
					w.Header().Set("WWW-Authenticate", `Keystone uri="`+s.opts.KeystoneURI+`"`)
					writeError(w, &apiError{http.StatusUnauthorized, "Unauthorized", ErrUnauthenticated.Error()})
					return
				}
				s.log.Warn("cannot authenticate a request", zap.Error(err))
				writeError(w, &apiError{http.StatusServiceUnavailable, "ServiceUnavailable", "the identity service cannot validate the token now"})
				return
			}
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// adminOnly wraps a route only an admin may use.
func adminOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !callerOf(r.Context()).Admin {
			writeError(w, forbidden(r.Method+" "+r.URL.Path))
			return
		}
		h(w, r)
	}
}

func forbidden(what string) *apiError {
	return &apiError{http.StatusForbidden, "PolicyNotAuthorized", fmt.Sprintf("(rule:%s) is disallowed by policy", what)}
}

// visible says whether the caller may see an object.
func visible(st *topology.Store, c Caller, obj any) bool {
	if c.Admin {
		return true
	}
	switch o := obj.(type) {
	case topology.Network:
		// Every project sees the external networks, to put its routers'
		// gateways and its floating IPs on them; not their subnets.
		return o.ProjectID == c.ProjectID || o.Shared || o.External
	case topology.Subnet:
		if o.ProjectID == c.ProjectID {
			return true
		}
		n, ok := st.Network(o.NetworkID)
		return ok && n.Shared
	case topology.Port:
		if o.ProjectID == c.ProjectID {
			return true
		}
		n, ok := st.Network(o.NetworkID) // the network's owner sees ports on it
		return ok && n.ProjectID == c.ProjectID
	case topology.Router:
		return o.ProjectID == c.ProjectID
	case topology.FloatingIP:
		return o.ProjectID == c.ProjectID
	case topology.SecurityGroup:
		return o.ProjectID == c.ProjectID
	case topology.SubnetPool:
		return o.ProjectID == c.ProjectID || o.Shared
	case topology.SecurityGroupRule:
		// Its own project's, and any rule of its own groups.
		if o.ProjectID == c.ProjectID {
			return true
		}
		g, ok := st.SecurityGroup(o.SecurityGroupID)
		return ok && g.ProjectID == c.ProjectID
	}
	return false
}

// usable says whether the caller may put subnets or ports on a network it
// sees: its own, or a shared one. Neutron answers 404 for any other
// (an external network is for gateways and floating IPs only).
func usable(c Caller, n topology.Network) bool { return owned(c, n.ProjectID) || n.Shared }

// owned says whether the caller may change an object it can see.
func owned(c Caller, project string) bool { return c.Admin || project == c.ProjectID }

// mayChange checks an update or delete of an existing object: 404 if the
// caller cannot see it (or it does not exist: the store says so), 403 if
// it sees but does not own it (a shared network).
func mayChange(st *topology.Store, c Caller, res resource, id string) error {
	if c.Admin {
		return nil
	}
	o, ok := lookup(st, res, id)
	obj, project := o.obj, o.project
	if r, isRule := obj.(topology.SecurityGroupRule); isRule && ok {
		// The rule's project's, or its group's owner's.
		if g, _ := st.SecurityGroup(r.SecurityGroupID); g.ProjectID == c.ProjectID {
			project = g.ProjectID
		}
	}
	if !ok || !visible(st, c, obj) {
		// Not here (or not yet, on a node that lags): fail closed.
		return notFoundFor(res, id)
	}
	if !owned(c, project) {
		return forbidden("update_" + res.singular)
	}
	return nil
}

// stored is a collection's object as the API's checks read it.
type stored struct {
	obj     any
	project string
	tags    []string
}

// lookup reads an object of a collection by id.
func lookup(st *topology.Store, res resource, id string) (stored, bool) {
	switch res.singular {
	case "network":
		n, ok := st.Network(id)
		return stored{n, n.ProjectID, n.Tags}, ok
	case "subnet":
		sn, ok := st.Subnet(id)
		return stored{sn, sn.ProjectID, sn.Tags}, ok
	case "port":
		p, ok := st.Port(id)
		return stored{p, p.ProjectID, p.Tags}, ok
	case "router":
		rt, ok := st.Router(id)
		return stored{rt, rt.ProjectID, rt.Tags}, ok
	case "floatingip":
		f, ok := st.FloatingIP(id)
		return stored{f, f.ProjectID, f.Tags}, ok
	case "security_group":
		g, ok := st.SecurityGroup(id)
		return stored{g, g.ProjectID, g.Tags}, ok
	case "subnetpool":
		p, ok := st.SubnetPool(id)
		return stored{p, p.ProjectID, p.Tags}, ok
	case "security_group_rule":
		r, ok := st.SecurityGroupRule(id)
		return stored{r, r.ProjectID, nil}, ok
	}
	return stored{}, false
}

func notFoundFor(res resource, id string) *topology.Error {
	switch res.singular { // Neutron's spelling, where the name does not give it
	case "floatingip":
		return notFoundErr("FloatingIPNotFound", "Floating IP", id)
	case "port_forwarding":
		return notFoundErr("PortForwardingNotFound", "Port Forwarding", id)
	case "security_group":
		return &topology.Error{Kind: topology.KindNotFound, Type: "SecurityGroupNotFound", Message: fmt.Sprintf("Security group %s does not exist", id)}
	case "subnetpool":
		return notFoundErr("SubnetPoolNotFound", "Subnet pool", id)
	case "security_group_rule":
		return &topology.Error{Kind: topology.KindNotFound, Type: "SecurityGroupRuleNotFound", Message: fmt.Sprintf("Security group rule %s does not exist", id)}
	}
	what := strings.ToUpper(res.singular[:1]) + res.singular[1:]
	return notFoundErr(what+"NotFound", what, id)
}

// claim fills a create's project from the caller (ownProject) and checks
// that an update is the caller's to make (mayChange): what every owned
// resource's admission starts with.
func claim(st *topology.Store, c Caller, res resource, project, tenant **string, id string, create bool) error {
	if err := ownProject(c, res, project, tenant, create); err != nil {
		return err
	}
	if create {
		return nil
	}
	return mayChange(st, c, res, id)
}

// admit checks one create or update spec against the caller's rights and
// fills in its project from the caller. It runs on the node's own store,
// under its read lock, and fails closed: what the node does not hold (yet)
// is not found. Only an admin moves an object between projects, so a
// member's check holds at commit but for an admin's concurrent change.
func admit[Spec any](st *topology.Store, c Caller, res resource, spec *Spec, create bool) error {
	switch sp := any(spec).(type) {
	case *topology.NetworkSpec:
		if err := claim(st, c, res, &sp.ProjectID, &sp.TenantID, sp.ID, create); err != nil {
			return err
		}
		if !c.Admin {
			for attr, set := range map[string]bool{"provider:network_type": sp.NetworkType != nil,
				"provider:segmentation_id": sp.SegmentationID != nil, "shared": sp.Shared != nil,
				"provider:physical_network": sp.PhysicalNetwork != nil, "router:external": sp.External != nil} {
				if set {
					return forbidden(verb(create) + "_network:" + attr)
				}
			}
		}
	case *topology.SubnetSpec:
		if err := claim(st, c, res, &sp.ProjectID, &sp.TenantID, sp.ID, create); err != nil || !create {
			return err
		}
		if sp.SubnetPoolID != nil && *sp.SubnetPoolID != "" && !c.Admin {
			if p, ok := st.SubnetPool(*sp.SubnetPoolID); !ok || !visible(st, c, p) {
				return notFoundErr("SubnetPoolNotFound", "Subnet pool", *sp.SubnetPoolID)
			}
		}
		if sp.NetworkID != nil && !c.Admin {
			n, ok := st.Network(*sp.NetworkID)
			if !ok || !visible(st, c, n) || !usable(c, n) {
				return notFoundErr("NetworkNotFound", "Network", *sp.NetworkID)
			}
			if !owned(c, n.ProjectID) { // a subnet belongs in the network's owner's hands
				return forbidden("create_subnet")
			}
		}
	case *topology.PortSpec:
		if err := ownProject(c, res, &sp.ProjectID, &sp.TenantID, create); err != nil {
			return err
		}
		if c.Admin {
			return nil
		}
		network := sp.NetworkID
		if !create {
			if err := mayChange(st, c, res, sp.ID); err != nil {
				return err
			}
			p, _ := st.Port(sp.ID)
			network = &p.NetworkID
		}
		if sp.HostID != nil {
			return forbidden(verb(create) + "_port:binding:host_id")
		}
		if sp.Extra["binding:profile"] != nil {
			return forbidden(verb(create) + "_port:binding:profile")
		}
		if network != nil {
			n, ok := st.Network(*network)
			if !ok || !visible(st, c, n) || create && !usable(c, n) {
				return notFoundErr("NetworkNotFound", "Network", *network)
			}
			if !owned(c, n.ProjectID) {
				// On another project's (shared) network, what lets a port
				// pose as another is the network owner's, as in Neutron.
				if attr := ownerOnlyPortAttribute(sp, create); attr != "" {
					return forbidden(verb(create) + "_port:" + attr)
				}
			}
		}
		if sp.FixedIPs != nil {
			for _, f := range *sp.FixedIPs {
				if sn, ok := st.Subnet(f.SubnetID); f.SubnetID != "" && (!ok || !visible(st, c, sn)) {
					return notFoundErr("SubnetNotFound", "Subnet", f.SubnetID)
				}
			}
		}
	case *topology.RouterSpec:
		if err := claim(st, c, res, &sp.ProjectID, &sp.TenantID, sp.ID, create); err != nil || c.Admin {
			return err
		}
		if sp.Distributed != nil {
			return forbidden(verb(create) + "_router:distributed")
		}
		if sp.Extra["ha"] != nil {
			return forbidden(verb(create) + "_router:ha")
		}
		if g := sp.Gateway; g != nil && !g.Clear {
			return admitGateway(st, c, *g, create)
		}
	case *topology.FloatingIPSpec:
		return admitFloatingIP(st, c, sp, create)
	case *topology.SecurityGroupSpec:
		return claim(st, c, res, &sp.ProjectID, &sp.TenantID, sp.ID, create)
	case *topology.SubnetPoolSpec:
		if err := claim(st, c, res, &sp.ProjectID, &sp.TenantID, sp.ID, create); err != nil || c.Admin {
			return err
		}
		if sp.Shared != nil {
			return forbidden(verb(create) + "_subnetpool:shared")
		}
		if sp.IsDefault != nil {
			return forbidden(verb(create) + "_subnetpool:is_default")
		}
	case *topology.PortForwardingSpec:
		if c.Admin {
			return nil
		}
		// The floating IP's project's, as its port forwardings are.
		if err := mayChange(st, c, floatingips, sp.FloatingIPID); err != nil {
			return err
		}
		if sp.InternalPortID != nil {
			return ownPort(st, c, *sp.InternalPortID)
		}
	}
	return nil
}

// admitGateway checks a member's router gateway: on an external network
// it sees, with the address and SNAT mode the cloud chooses (Neutron's
// enable_snat and external_fixed_ips are the admin's).
func admitGateway(st *topology.Store, c Caller, g topology.GatewaySpec, create bool) error {
	if g.EnableSNAT != nil {
		return forbidden(verb(create) + "_router:external_gateway_info:enable_snat")
	}
	if g.FixedIPs != nil {
		return forbidden(verb(create) + "_router:external_gateway_info:external_fixed_ips")
	}
	if n, ok := st.Network(g.NetworkID); !ok || !visible(st, c, n) {
		return notFoundErr("NetworkNotFound", "Network", g.NetworkID)
	}
	return nil
}

// admitFloatingIP checks a floating IP create or update. A member takes
// an address from any external network it sees (that is what they are
// for), but not an address of its choosing (Neutron's
// create_floatingip:floating_ip_address is the admin's), and points it
// only at its own project's ports.
func admitFloatingIP(st *topology.Store, c Caller, sp *topology.FloatingIPSpec, create bool) error {
	if err := ownProject(c, floatingips, &sp.ProjectID, &sp.TenantID, create); err != nil {
		return err
	}
	if c.Admin {
		return nil
	}
	if !create {
		if err := mayChange(st, c, floatingips, sp.ID); err != nil {
			return err
		}
	}
	if create && sp.FloatingNetworkID != nil {
		if n, ok := st.Network(*sp.FloatingNetworkID); !ok || !visible(st, c, n) {
			return notFoundErr("NetworkNotFound", "Network", *sp.FloatingNetworkID)
		}
	}
	if create && sp.FloatingIPAddress != nil {
		return forbidden("create_floatingip:floating_ip_address")
	}
	if sp.PortID != nil && *sp.PortID != "" {
		return ownPort(st, c, *sp.PortID)
	}
	return nil
}

// ownPort: a member's floating IP or port forwarding reaches only its
// own project's ports; any other is not found, as in Neutron.
func ownPort(st *topology.Store, c Caller, id string) error {
	if p, ok := st.Port(id); !ok || p.ProjectID != c.ProjectID {
		return notFoundErr("PortNotFound", "Port", id)
	}
	return nil
}

// ownerOnlyPortAttribute names the first attribute of a port spec that
// only the network's owner (or an admin) may set: an address of its
// choosing (fixed_ips[].ip_address, mac_address, allowed_address_pairs),
// turning off anti-spoofing, or a network:* device owner.
func ownerOnlyPortAttribute(sp *topology.PortSpec, create bool) string {
	if sp.FixedIPs != nil {
		for _, f := range *sp.FixedIPs {
			if f.IPAddress != "" {
				return "fixed_ips:ip_address"
			}
		}
		if !create {
			return "fixed_ips"
		}
	}
	switch {
	case sp.MACAddress != nil:
		return "mac_address"
	case sp.AllowedAddressPairs != nil:
		return "allowed_address_pairs"
	case sp.PortSecurityEnabled != nil:
		return "port_security_enabled"
	case sp.DeviceOwner != nil && strings.HasPrefix(*sp.DeviceOwner, "network:"):
		return "device_owner"
	}
	return ""
}

func verb(create bool) string {
	if create {
		return "create"
	}
	return "update"
}

// ownProject makes a created object the caller's: project_id comes from
// the token. An admin may name another project; anyone else naming one
// is refused, as is any change of an existing object's project.
func ownProject(c Caller, res resource, project, tenant **string, create bool) error {
	if c.Admin {
		if create && *project == nil && *tenant == nil && c.ProjectID != "" {
			p := c.ProjectID
			*project, *tenant = &p, &p
		}
		return nil
	}
	// A member names only its own project, if any (an empty one too is
	// another project: it would orphan the object).
	for _, p := range []*string{*project, *tenant} {
		if p != nil && *p != c.ProjectID {
			return forbidden(verb(create) + "_" + res.singular + ":project_id")
		}
	}
	if create {
		p := c.ProjectID
		*project, *tenant = &p, &p
	}
	return nil
}

// adminAttributes are the attributes Neutron shows only to admins.
var adminAttributes = []string{"provider:network_type", "provider:segmentation_id", "provider:physical_network",
	"segments", "binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details", "wyvern:key", "wyvern:ofport"}

// redact drops what a non-admin may not read from a rendered object.
func redact(m map[string]any) map[string]any {
	for _, k := range adminAttributes {
		delete(m, k)
	}
	return m
}
