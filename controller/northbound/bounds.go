package northbound

import (
	"bytes"
	connlist "container/list"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Every limit of the API, in one place; docs/api.md "Limits" lists each.
// Where Neutron has the limit, the value and the error are Neutron's
// (neutron_lib db/constants.py field sizes, the tag extension, the
// max_*_per_* options at their defaults).
const (
	// MaxBodyBytes bounds a request body (a bulk create of a few thousand
	// ports fits comfortably): 413.
	MaxBodyBytes = 8 << 20
	// MaxBulk bounds the objects of one bulk create: one raft entry each.
	MaxBulk = 10_000
	// MaxJSONDepth bounds the nesting of a request body's objects and
	// lists (binding:profile, the deepest Neutron field, needs a few).
	MaxJSONDepth = 32

	// Stored strings, in characters (Neutron: NAME_FIELD_SIZE,
	// DESCRIPTION_FIELD_SIZE, DEVICE_ID_FIELD_SIZE, DEVICE_OWNER_FIELD_SIZE,
	// PROJECT_ID_FIELD_SIZE; binding:host_id is a 255-character column).
	MaxNameLen        = 255
	MaxDescriptionLen = 255
	MaxDeviceIDLen    = 255
	MaxDeviceOwnerLen = 255
	MaxProjectIDLen   = 255
	MaxHostIDLen      = 255
	// MaxIDLen bounds ids, given or referenced (Neutron takes only UUIDs,
	// 36 characters; Wyvern takes any id a client chooses up to this).
	MaxIDLen = 255
	// MaxAddressLen bounds an address, CIDR or MAC string (Neutron's
	// IP_ADDR_FIELD_SIZE; MAC_ADDR_FIELD_SIZE is 32).
	MaxAddressLen = 64
	// MaxPhysicalNetworkLen bounds provider:physical_network (Neutron's
	// 64-character column) and MaxProtocolLen a port forwarding's protocol.
	MaxPhysicalNetworkLen = 64
	MaxProtocolLen        = 40

	// Tags (Neutron's tag extension): each at most 60 characters, at most
	// 50 per resource.
	MaxTagLen = 60
	MaxTags   = 50

	// Lists, at Neutron's defaults: max_fixed_ips_per_port,
	// max_allowed_address_pair, max_dns_nameservers, max_subnet_host_routes.
	MaxFixedIPsPerPort     = 5
	MaxAllowedAddressPairs = 10
	MaxDNSNameservers      = 5
	MaxHostRoutes          = 20
	// MaxRoutes bounds a router's static routes (max_routes).
	MaxRoutes = 30
	// Lists Neutron does not bound (Wyvern).
	MaxAllocationPools       = 64
	MaxSecurityGroupsPerPort = 64

	// MaxPassiveBytes bounds the JSON of one passive field
	// (binding:profile is a 4095-character column in Neutron).
	MaxPassiveBytes = 4095

	// MaxURLBytes bounds the request target (eventlet's request line
	// limit, under which Neutron runs): 414.
	MaxURLBytes = 8192
	// MaxQueryParams bounds the query parameters of one request (filters,
	// fields, ...; a repeated parameter counts once per value).
	MaxQueryParams = 64
	// MaxHeaderBytes bounds the request line and headers (Keystone
	// tokens included): Go's server answers 431.
	MaxHeaderBytes = 64 << 10

	// Slow clients: the headers must arrive within ReadHeaderTimeout,
	// the whole request (8 MiB at ≥ 140 KB/s) within ReadTimeout; the
	// answer gets WriteTimeout (event long-polls wait up to 60 s); a
	// kept-alive connection may idle IdleTimeout between requests.
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 60 * time.Second
	WriteTimeout      = 90 * time.Second
	IdleTimeout       = 120 * time.Second

	// MaxConns bounds the open connections of one node's API. At the
	// bound a new connection is taken and the connection idle longest
	// (between requests, or still sending its headers) is closed: a
	// flood of idle connections never keeps a real request out.
	MaxConns = 8192
	// MaxConnsPerSource bounds the open connections from one address, so
	// that one host cannot hold the API's MaxConns with requests it never
	// finishes sending.
	MaxConnsPerSource = 512
)

// checkLine refuses, before any route or the identity check sees it,
// what no route should take: a non-canonical path (ServeMux would
// redirect it to another resource), an over-long or malformed query, a
// malformed limit, a body announced too large. It reads nothing of the
// body: a client is authenticated before its body is read.
func checkLine(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkRequest(r); err != nil {
			writeError(w, err)
			return
		}
		if r.ContentLength > MaxBodyBytes {
			writeError(w, &http.MaxBytesError{Limit: MaxBodyBytes})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// readBody reads an authenticated request's body whole and refuses one
// that is too large, not JSON by its Content-Type, not UTF-8, or nested
// too deep. A body it accepts is handed on whole.
func readBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			writeError(w, err)
			return
		}
		if len(body) > 0 {
			if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
				writeError(w, err)
				return
			}
			if err := checkJSONText(body); err != nil {
				writeError(w, err)
				return
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	})
}

// checkRequest looks at the request line.
func checkRequest(r *http.Request) error {
	if len(r.RequestURI) > MaxURLBytes {
		return &apiError{http.StatusRequestURITooLong, "HTTPRequestURITooLong", fmt.Sprintf("the request target exceeds %d bytes", MaxURLBytes)}
	}
	if !canonicalPath(r.URL) {
		return &apiError{http.StatusNotFound, "HTTPNotFound", "The resource could not be found: " + r.Method + " " + r.URL.EscapedPath()}
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badRequest("malformed query string: %v", err)
	}
	n := 0
	for _, vs := range q {
		n += len(vs)
	}
	if n > MaxQueryParams {
		return badRequest("a request takes at most %d query parameters, not %d", MaxQueryParams, n)
	}
	for _, l := range q["limit"] {
		if v, err := strconv.Atoi(l); err != nil || v < 0 {
			return badRequest("Bad limit request: Limit must be an integer 0 or greater and not '%s'", abbrev(l))
		}
	}
	return nil
}

// canonicalPath reports whether the path names a resource as it is:
// no "." or ".." segment, no empty segment, no encoded dot or slash.
// ServeMux would answer such a path with a redirect to its cleaned form,
// which a client following it turns into a request on another resource.
func canonicalPath(u *url.URL) bool {
	p := u.Path
	if p == "" || p[0] != '/' {
		return false
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	if clean != p {
		return false
	}
	raw := strings.ToLower(u.EscapedPath())
	return !strings.Contains(raw, "%2e") && !strings.Contains(raw, "%2f") && !strings.Contains(raw, "%5c") && !strings.Contains(p, `\`)
}

// checkContentType accepts a JSON body, or one whose client named no
// type; anything else is refused as Neutron's WSGI layer refuses it
// (400 "Unsupported Content-Type").
func checkContentType(ct string) error {
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return &apiError{http.StatusBadRequest, "HTTPBadRequest", fmt.Sprintf("Unsupported Content-Type '%s': the body must be application/json", abbrev(ct))}
	}
	return nil
}

// checkJSONText refuses what encoding/json would silently rewrite or
// spend unbounded stack on: invalid UTF-8 and unpaired UTF-16 surrogate
// escapes (both decoded as U+FFFD), and nesting deeper than MaxJSONDepth.
// Malformed JSON is left to the decoder.
func checkJSONText(b []byte) error {
	if !utf8.Valid(b) {
		return badRequest("malformed JSON: the body is not valid UTF-8")
	}
	depth, inString := 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '"':
				inString = false
			case '\\':
				if i+5 < len(b) && b[i+1] == 'u' {
					r := hex4(b[i+2 : i+6])
					switch {
					case r >= 0xd800 && r < 0xdc00:
						if i+11 >= len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
							return badRequest("malformed JSON: unpaired UTF-16 surrogate \\u%04x", r)
						}
						if lo := hex4(b[i+8 : i+12]); lo < 0xdc00 || lo > 0xdfff {
							return badRequest("malformed JSON: unpaired UTF-16 surrogate \\u%04x", r)
						}
						i += 11
					case r >= 0xdc00 && r <= 0xdfff:
						return badRequest("malformed JSON: unpaired UTF-16 surrogate \\u%04x", r)
					default:
						i += 5
					}
					continue
				}
				i++
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			if depth++; depth > MaxJSONDepth {
				return badRequest("malformed JSON: nested deeper than %d", MaxJSONDepth)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// hex4 is the value of four hex digits, or -1.
func hex4(b []byte) int {
	v := 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | int(c-'A'+10)
		default:
			return -1
		}
	}
	return v
}

// abbrev shortens a client's string for an error message.
func abbrev(s string) string {
	if utf8.RuneCountInString(s) <= 40 {
		return s
	}
	r := []rune(s)
	return fmt.Sprintf("%s… (%d characters)", string(r[:32]), len(r))
}

// --- fields -----------------------------------------------------------

func invalidInput(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidInput", fmt.Sprintf(format, args...)}
}

// fieldBounds collects the first violation of a request's bounds.
type fieldBounds struct{ err error }

// str bounds a string field, in characters as Neutron counts them.
func (b *fieldBounds) str(field string, v *string, max int) {
	if b.err == nil && v != nil && utf8.RuneCountInString(*v) > max {
		b.err = invalidInput("Invalid input for %s. Reason: '%s' exceeds maximum length of %d.", field, abbrev(*v), max)
	}
}

// strs bounds a list of strings: its length and each string's.
func (b *fieldBounds) strs(field string, v []string, maxItems, maxLen int) {
	b.count(field, len(v), maxItems)
	for i := range v {
		b.str(field, &v[i], maxLen)
	}
}

// count bounds a list's length.
func (b *fieldBounds) count(field string, n, max int) {
	if b.err == nil && n > max {
		b.err = invalidInput("Invalid input for %s. Reason: %d items exceed the maximum of %d.", field, n, max)
	}
}

// exhausted sets Neutron's own error for a list over its configured maximum.
func (b *fieldBounds) exhausted(n, max int, err *apiError) {
	if b.err == nil && n > max {
		b.err = err
	}
}

// common bounds the fields every resource shares.
func (b *fieldBounds) common(id, name, description, project, tenant *string, tags []string) {
	b.str("id", id, MaxIDLen)
	b.str("name", name, MaxNameLen)
	b.str("description", description, MaxDescriptionLen)
	b.str("project_id", project, MaxProjectIDLen)
	b.str("tenant_id", tenant, MaxProjectIDLen)
	if b.err == nil && len(tags) > MaxTags {
		b.err = invalidInput("Invalid input for tags. Reason: %d tags exceed the maximum of %d.", len(tags), MaxTags)
	}
	b.strs("tags", tags, MaxTags, MaxTagLen)
}

func (r networkReq) bounds() error {
	var b fieldBounds
	b.common(r.ID, r.Name, r.Description, r.ProjectID, r.TenantID, r.Tags)
	b.str("provider:network_type", r.NetworkType, MaxNameLen)
	b.str("provider:physical_network", r.PhysicalNetwork, MaxPhysicalNetworkLen)
	b.str("dns_domain", r.DNSDomain, MaxNameLen)
	return b.err
}

func (r subnetReq) bounds() error {
	var b fieldBounds
	b.common(r.ID, r.Name, r.Description, r.ProjectID, r.TenantID, r.Tags)
	b.str("network_id", r.NetworkID, MaxIDLen)
	b.str("cidr", r.CIDR, MaxAddressLen)
	if r.SubnetPoolID.Set {
		b.str("subnetpool_id", &r.SubnetPoolID.Value, MaxIDLen)
	}
	if b.err == nil && len(r.GatewayIP) > MaxAddressLen+2 {
		b.err = invalidInput("Invalid input for gateway_ip. Reason: '%s' is not a valid IP address.", abbrev(string(r.GatewayIP)))
	}
	b.count("allocation_pools", len(r.AllocationPools), MaxAllocationPools)
	for i := range r.AllocationPools {
		b.str("allocation_pools", &r.AllocationPools[i].Start, MaxAddressLen)
		b.str("allocation_pools", &r.AllocationPools[i].End, MaxAddressLen)
	}
	b.exhausted(len(r.DNSNameservers), MaxDNSNameservers, &apiError{http.StatusBadRequest, "DNSNameServersExhausted",
		fmt.Sprintf("Unable to complete operation for %s. The number of DNS nameservers exceeds the limit %d.", subnetName(r.ID), MaxDNSNameservers)})
	b.strs("dns_nameservers", r.DNSNameservers, MaxDNSNameservers, MaxAddressLen)
	b.exhausted(len(r.HostRoutes), MaxHostRoutes, &apiError{http.StatusBadRequest, "HostRoutesExhausted",
		fmt.Sprintf("Unable to complete operation for %s. The number of host routes exceeds the limit %d.", subnetName(r.ID), MaxHostRoutes)})
	for i := range r.HostRoutes {
		b.str("host_routes", &r.HostRoutes[i].Destination, MaxAddressLen)
		b.str("host_routes", &r.HostRoutes[i].NextHop, MaxAddressLen)
	}
	return b.err
}

func subnetName(id *string) string {
	if id == nil {
		return "new subnet"
	}
	return abbrev(*id)
}

func (r portReq) bounds() error {
	var b fieldBounds
	b.common(r.ID, r.Name, r.Description, r.ProjectID, r.TenantID, r.Tags)
	b.str("network_id", r.NetworkID, MaxIDLen)
	b.str("mac_address", r.MACAddress, MaxAddressLen)
	b.str("device_owner", r.DeviceOwner, MaxDeviceOwnerLen)
	b.str("device_id", r.DeviceID, MaxDeviceIDLen)
	b.str("binding:host_id", r.HostID, MaxHostIDLen)
	if r.FixedIPs != nil {
		b.exhausted(len(*r.FixedIPs), MaxFixedIPsPerPort, invalidInput("Invalid input for operation: Exceeded maximum amount of fixed ips per port."))
		for i := range *r.FixedIPs {
			b.str("fixed_ips", &(*r.FixedIPs)[i].SubnetID, MaxIDLen)
			b.str("fixed_ips", &(*r.FixedIPs)[i].IPAddress, MaxAddressLen)
		}
	}
	if r.AllowedAddressPairs != nil {
		b.exhausted(len(*r.AllowedAddressPairs), MaxAllowedAddressPairs, &apiError{http.StatusBadRequest, "AllowedAddressPairExhausted",
			fmt.Sprintf("The number of allowed address pair exceeds the maximum %d.", MaxAllowedAddressPairs)})
		for i := range *r.AllowedAddressPairs {
			b.str("allowed_address_pairs", &(*r.AllowedAddressPairs)[i].IPAddress, MaxAddressLen)
			b.str("allowed_address_pairs", &(*r.AllowedAddressPairs)[i].MACAddress, MaxAddressLen)
		}
	}
	b.strs("security_groups", r.SecurityGroups.Value, MaxSecurityGroupsPerPort, MaxIDLen)
	b.str("dns_name", r.DNSName, MaxNameLen)
	if r.ExtraDHCPOpts != nil {
		b.exhausted(len(*r.ExtraDHCPOpts), topology.MaxExtraDHCPOpts, invalidInput("Invalid input for extra_dhcp_opts: at most %d options.", topology.MaxExtraDHCPOpts))
	}
	return b.err
}

func (r routerReq) bounds() error {
	var b fieldBounds
	b.common(r.ID, r.Name, r.Description, r.ProjectID, r.TenantID, r.Tags)
	g := r.ExternalGatewayInfo.Value
	b.str("external_gateway_info", g.NetworkID, MaxIDLen)
	if g.ExternalFixedIPs != nil {
		b.exhausted(len(*g.ExternalFixedIPs), MaxFixedIPsPerPort, invalidInput("Invalid input for operation: Exceeded maximum amount of fixed ips per port."))
		for i := range *g.ExternalFixedIPs {
			b.str("external_fixed_ips", &(*g.ExternalFixedIPs)[i].SubnetID, MaxIDLen)
			b.str("external_fixed_ips", &(*g.ExternalFixedIPs)[i].IPAddress, MaxAddressLen)
		}
	}
	b.exhausted(len(r.Routes.Value), MaxRoutes, &apiError{http.StatusBadRequest, "RoutesExhausted",
		fmt.Sprintf("Unable to complete operation for %s. The number of routes exceeds the maximum %d.", routerName(r.ID), MaxRoutes)})
	for i := range r.Routes.Value {
		b.str("routes", &r.Routes.Value[i].Destination, MaxAddressLen)
		b.str("routes", &r.Routes.Value[i].NextHop, MaxAddressLen)
	}
	return b.err
}

func routerName(id *string) string {
	if id == nil {
		return "new router"
	}
	return abbrev(*id)
}

func (r floatingIPReq) bounds() error {
	var b fieldBounds
	b.common(r.ID, nil, r.Description, r.ProjectID, r.TenantID, r.Tags)
	b.str("floating_network_id", r.FloatingNetworkID, MaxIDLen)
	b.str("floating_ip_address", r.FloatingIPAddress, MaxAddressLen)
	b.str("subnet_id", r.SubnetID, MaxIDLen)
	b.str("port_id", &r.PortID.Value, MaxIDLen)
	b.str("fixed_ip_address", &r.FixedIPAddress.Value, MaxAddressLen)
	return b.err
}

func (r portForwardingReq) bounds() error {
	var b fieldBounds
	b.str("id", r.ID, MaxIDLen)
	b.str("protocol", r.Protocol, MaxProtocolLen)
	b.str("internal_ip_address", r.InternalIPAddress, MaxAddressLen)
	b.str("internal_port_id", r.InternalPortID, MaxIDLen)
	b.str("description", r.Description, MaxDescriptionLen)
	return b.err
}

// passiveChecks validate the passive fields whose type Neutron fixes and
// that a Wyvern chassis reads.
var passiveChecks = map[string]func(json.RawMessage) error{
	// binding:vnic_type: Neutron's validator is type:values over its VNIC
	// types; Wyvern binds only normal ports.
	"binding:vnic_type": func(v json.RawMessage) error {
		var s string
		if json.Unmarshal(v, &s) != nil || s != "normal" {
			return invalidInput("Invalid input for binding:vnic_type. Reason: %s is not in ['normal'].", abbrev(string(v)))
		}
		return nil
	},
	// binding:profile: type:dict_or_none.
	"binding:profile": func(v json.RawMessage) error {
		var m map[string]json.RawMessage
		if json.Unmarshal(v, &m) != nil {
			return invalidInput("Invalid input for binding:profile. Reason: %s is not a dictionary.", abbrev(string(v)))
		}
		return nil
	},
}

// checkPassive bounds one passive field and checks its type where known.
func checkPassive(k string, v json.RawMessage) error {
	if len(v) > MaxPassiveBytes {
		return invalidInput("Invalid input for %s. Reason: its JSON exceeds %d bytes.", k, MaxPassiveBytes)
	}
	if check := passiveChecks[k]; check != nil {
		return check(v)
	}
	return nil
}

// --- connections --------------------------------------------------------

// connShedder keeps the open connections of a server at most max: when a
// new one would pass the bound, it closes the connection that has waited
// longest without a request in progress (idle between requests, or new
// and still sending its headers). Connections serving a request are never
// closed; if every connection is busy the new one is.
type connShedder struct {
	max       int
	perSource int
	mu        sync.Mutex
	open      int
	quiet     *connlist.List                 // of net.Conn, longest quiet first
	elems     map[net.Conn]*connlist.Element // the quiet ones
	sources   map[string]int                 // open connections per remote address
	sourceOf  map[net.Conn]string
}

func newConnShedder(max int) *connShedder {
	return &connShedder{max: max, perSource: MaxConnsPerSource, quiet: connlist.New(), elems: map[net.Conn]*connlist.Element{},
		sources: map[string]int{}, sourceOf: map[net.Conn]string{}}
}

func sourceOf(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// ConnState is the http.Server hook.
func (s *connShedder) ConnState(c net.Conn, st http.ConnState) {
	var victim net.Conn
	s.mu.Lock()
	switch st {
	case http.StateNew:
		s.open++
		src := sourceOf(c)
		s.sourceOf[c] = src
		s.sources[src]++
		if s.sources[src] > s.perSource {
			victim = c // this host holds enough already
			break
		}
		s.elems[c] = s.quiet.PushBack(c)
		if s.open > s.max {
			front := s.quiet.Front()
			victim = front.Value.(net.Conn)
			s.quiet.Remove(front)
			delete(s.elems, victim)
		}
	case http.StateIdle:
		if e, ok := s.elems[c]; ok {
			s.quiet.MoveToBack(e)
		} else {
			s.elems[c] = s.quiet.PushBack(c)
		}
	case http.StateActive:
		if e, ok := s.elems[c]; ok {
			s.quiet.Remove(e)
			delete(s.elems, c)
		}
	case http.StateHijacked, http.StateClosed:
		s.open--
		if src, ok := s.sourceOf[c]; ok {
			delete(s.sourceOf, c)
			if s.sources[src]--; s.sources[src] == 0 {
				delete(s.sources, src)
			}
		}
		if e, ok := s.elems[c]; ok {
			s.quiet.Remove(e)
			delete(s.elems, c)
		}
	}
	s.mu.Unlock()
	if victim != nil {
		_ = victim.Close() // the server then reports it StateClosed
	}
}

func (r subnetPoolReq) bounds() error {
	var b fieldBounds
	b.common(r.ID, r.Name, r.Description, r.ProjectID, r.TenantID, r.Tags)
	if r.Prefixes != nil {
		b.strs("prefixes", *r.Prefixes, MaxAllocationPools, MaxAddressLen)
	}
	return b.err
}
