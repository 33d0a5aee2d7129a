package northbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// --- collections --------------------------------------------------------

// list renders, filters, sorts, pages and answers a collection
// (lists.go).
func list[T any](w http.ResponseWriter, r *http.Request, plural string, items []T) error {
	c := callerOf(r.Context())
	q := r.URL.Query()
	if len(q) == 0 && c.Admin { // no parameters: encode each object once
		raw := make([]json.RawMessage, len(items))
		for i, it := range items {
			raw[i] = renderRaw(it)
		}
		writeCollection(w, http.StatusOK, plural, raw)
		return nil
	}
	lq, err := parseList(q, attributesOf[T](plural))
	if err != nil {
		return err
	}
	all := make([]map[string]any, len(items))
	for i, it := range items {
		all[i] = renderFor(c, it)
	}
	objs := make([]map[string]any, 0, len(all))
	for _, o := range all {
		ok, err := lq.keep(o)
		if err != nil {
			return err
		}
		if ok {
			objs = append(objs, o)
		}
	}
	objs, links, err := lq.page(r, plural, objs, all)
	if err != nil {
		return err
	}
	for i := range objs {
		objs[i] = fieldsOnly(objs[i], lq.fields)
	}
	body := map[string]any{plural: objs}
	if len(links) > 0 {
		body[plural+"_links"] = links
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

func show[T any](w http.ResponseWriter, r *http.Request, singular string, item T, ok bool, notFound *topology.Error) error {
	if !ok {
		return notFound
	}
	writeJSON(w, http.StatusOK, map[string]any{singular: fieldsOnly(renderFor(callerOf(r.Context()), item), r.URL.Query()["fields"])})
	return nil
}

// renderFor renders an object as the caller may read it.
func renderFor(c Caller, v any) map[string]any {
	if c.Admin {
		return render(v)
	}
	return redact(render(v))
}

// answerOne writes one object as the caller may read it.
func answerOne(w http.ResponseWriter, r *http.Request, status int, singular string, v any) {
	if callerOf(r.Context()).Admin {
		writeObject(w, status, singular, renderRaw(v))
		return
	}
	writeJSON(w, status, map[string]any{singular: renderFor(callerOf(r.Context()), v)})
}

func notFoundErr(typ, what, id string) *topology.Error {
	return &topology.Error{Kind: topology.KindNotFound, Type: typ, Message: fmt.Sprintf("%s %s could not be found.", what, id)}
}

// lister handles GET of a collection read from the store.
func lister[T any](s *Server, plural string, all func(*topology.Store) []T) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		c := callerOf(r.Context())
		var items []T
		s.cluster.Read(func(st *topology.Store) {
			items = all(st)
			if !c.Admin {
				mine := items[:0:0]
				for _, it := range items {
					if visible(st, c, it) {
						mine = append(mine, it)
					}
				}
				items = mine
			}
		})
		return list(w, r, plural, items)
	}
}

// shower handles GET of one object; key is the path parameter naming it.
func shower[T any](s *Server, singular, key, errType, what string, get func(*topology.Store, string) (T, bool)) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue(key)
		var it T
		var ok bool
		c := callerOf(r.Context())
		s.cluster.Read(func(st *topology.Store) {
			it, ok = get(st, id)
			ok = ok && visible(st, c, it)
		})
		return show(w, r, singular, it, ok, notFoundErr(errType, what, id))
	}
}

// answerMany writes created objects: a list for a bulk request, else the
// one object.
func answerMany[T any](w http.ResponseWriter, req *http.Request, status int, r resource, x []T, bulk bool) error {
	if len(x) == 0 {
		return fmt.Errorf("a create returned no %s", r.plural)
	}
	if c := callerOf(req.Context()); !c.Admin {
		objs := make([]map[string]any, len(x))
		for i, it := range x {
			objs[i] = renderFor(c, it)
		}
		if bulk {
			writeJSON(w, status, map[string]any{r.plural: objs})
		} else {
			writeJSON(w, status, map[string]any{r.singular: objs[0]})
		}
		return nil
	}
	if bulk {
		objs := make([]json.RawMessage, len(x))
		for i, it := range x {
			objs[i] = renderRaw(it)
		}
		writeCollection(w, status, r.plural, objs)
		return nil
	}
	writeObject(w, status, r.singular, renderRaw(x[0]))
	return nil
}

// propose commits a command and decodes its result into a T.
func propose[T any](ctx context.Context, s *Server, t cluster.CommandType, payload any) (T, error) {
	var out T
	res, err := s.cluster.Propose(ctx, t, payload)
	if err != nil {
		return out, err
	}
	return out, res.Decode(&out)
}

// specReq is a request body that turns into a store spec.
type specReq[Spec any] interface {
	spec(string, map[string]json.RawMessage) (Spec, error)
}

// creator handles POST of a collection: one object or an atomic bulk, one
// raft command either way.
func creator[Req specReq[Spec], Spec, Obj any](s *Server, res resource, cmd cluster.CommandType, payload func([]Spec) any) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		specs, bulk, err := decodeSpecs[Req, Spec](res, r, "", true)
		if err != nil {
			return err
		}
		if err := s.admit(r, res, specs, true); err != nil {
			return err
		}
		v, err := propose[[]Obj](r.Context(), s, cmd, payload(specs))
		if err != nil {
			return err
		}
		return answerMany(w, r, http.StatusCreated, res, v, bulk)
	}
}

// updater handles PUT of one object.
func updater[Req specReq[Spec], Spec, Obj any](s *Server, res resource, cmd cluster.CommandType, payload func(Spec) any) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		specs, _, err := decodeSpecs[Req, Spec](res, r, r.PathValue("id"), false)
		if err != nil {
			return err
		}
		if err := s.admit(r, res, specs, false); err != nil {
			return err
		}
		v, err := proposeOnAs[Obj](r, s, res, r.PathValue("id"), cmd, payload(specs[0]))
		if err != nil {
			return err
		}
		answerOne(w, r, http.StatusOK, res.singular, v)
		return nil
	}
}

func (s *Server) deleteBy(res resource, t cluster.CommandType) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := s.check(r, func(st *topology.Store, c Caller) error { return mayChange(st, c, res, r.PathValue("id")) }); err != nil {
			return err
		}
		if _, err := s.proposeOn(r, res, r.PathValue("id"), t, cluster.ByID{ID: r.PathValue("id")}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// routerInterface handles add_router_interface and remove_router_interface:
// by subnet_id (a new port holding the subnet's gateway_ip), or by
// port_id (an existing port of the caller's, which becomes the
// interface; removing it deletes it, as in Neutron).
func (s *Server) routerInterface(byPort, bySubnet cluster.CommandType) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var body struct {
			SubnetID string `json:"subnet_id"`
			PortID   string `json:"port_id"`
		}
		if err := readStrict(r, &body); err != nil {
			return err
		}
		add := bySubnet == cluster.CmdRouterInterfaceAdd
		switch {
		case body.SubnetID == "" && body.PortID == "":
			return badRequest("Bad router request: Either subnet_id or port_id must be specified")
		case body.SubnetID != "" && body.PortID != "" && add:
			return badRequest("Bad router request: Cannot specify both subnet-id and port-id")
		}
		router := r.PathValue("id")
		if err := s.check(r, func(st *topology.Store, c Caller) error {
			if c.Admin {
				return nil
			}
			if err := mayChange(st, c, routers, router); err != nil {
				return err
			}
			if body.PortID != "" {
				return ownPort(st, c, body.PortID)
			}
			if sn, ok := st.Subnet(body.SubnetID); ok {
				if !visible(st, c, sn) {
					return notFoundFor(subnets, body.SubnetID)
				}
				if !owned(c, sn.ProjectID) {
					return forbidden("add_router_interface")
				}
			}
			return nil
		}); err != nil {
			return err
		}
		var p topology.Port
		var err error
		if body.PortID != "" {
			p, err = propose[topology.Port](r.Context(), s, byPort, cluster.RouterIface{Router: router, PortID: body.PortID})
		} else {
			p, err = propose[topology.Port](r.Context(), s, bySubnet, cluster.RouterIface{Router: router, Subnet: body.SubnetID, PortID: newUUID()})
		}
		if err != nil {
			return err
		}
		subnet := body.SubnetID
		if len(p.FixedIPs) > 0 {
			subnet = p.FixedIPs[0].SubnetID
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": router, "subnet_id": subnet, "subnet_ids": []string{subnet},
			"port_id": p.ID, "network_id": p.NetworkID, "project_id": p.ProjectID, "tenant_id": p.TenantID})
		return nil
	}
}

// admit checks create or update specs against the caller's rights.
func (s *Server) admit(r *http.Request, res resource, specs any, create bool) error {
	return s.check(r, func(st *topology.Store, c Caller) error {
		switch sp := specs.(type) {
		case []topology.NetworkSpec:
			return admitAll(st, c, res, sp, create)
		case []topology.SubnetSpec:
			return admitAll(st, c, res, sp, create)
		case []topology.PortSpec:
			return admitAll(st, c, res, sp, create)
		case []topology.RouterSpec:
			return admitAll(st, c, res, sp, create)
		case []topology.FloatingIPSpec:
			return admitAll(st, c, res, sp, create)
		case []topology.PortForwardingSpec:
			return admitAll(st, c, res, sp, create)
		case []topology.SecurityGroupSpec:
			return admitAll(st, c, res, sp, create)
		case []topology.SubnetPoolSpec:
			return admitAll(st, c, res, sp, create)
		}
		return fmt.Errorf("no policy for %T", specs)
	})
}

func admitAll[Spec any](st *topology.Store, c Caller, res resource, specs []Spec, create bool) error {
	for i := range specs {
		if err := admit(st, c, res, &specs[i], create); err != nil {
			return err
		}
	}
	return nil
}

// check runs a policy check on the node's store. An admin's check needs
// no store (it is given nil) and takes no lock.
func (s *Server) check(r *http.Request, f func(st *topology.Store, c Caller) error) error {
	c := callerOf(r.Context())
	if c.Admin {
		return f(nil, c)
	}
	if !s.cluster.Ready() { // a node still catching up cannot judge
		return cluster.ErrNotReady
	}
	var err error
	s.cluster.Read(func(st *topology.Store) { err = f(st, c) })
	return err
}

// --- cluster -------------------------------------------------------------

func (s *Server) clusterStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.cluster.Status()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"cluster": st})
}

// raftAddress tells a joining node where this node's internal channel
// listens; the join itself goes there, where members prove who they are.
func (s *Server) raftAddress(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"raft_address": s.cluster.RaftAddress()})
}

func (s *Server) deleteMember(w http.ResponseWriter, r *http.Request) error {
	if err := s.cluster.RemoveMember(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// events is the CMS's change feed: GET /v2.0/events?since=INDEX waits up to
// ?timeout= seconds (default 30, at most 60) for changes after INDEX.
// 410 Gone means the changes since INDEX are no longer held: read
// everything again and continue from the returned index.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
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
	feed := s.cluster.Feed()
	changes, err := feed.Wait(ctx, since)
	if errors.Is(err, cluster.ErrResync) {
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
