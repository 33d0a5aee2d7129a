package northbound

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Neutron's standard attributes through the API: the tags sub-resource
// and If-Match: revision_number=N.

// storeResource is the store's name of a collection's objects, for the
// standard attributes; "" for a collection without them.
func storeResource(res resource) string {
	switch res.singular {
	case "network":
		return topology.ResourceNetwork
	case "subnet":
		return topology.ResourceSubnet
	case "port":
		return topology.ResourcePort
	case "router":
		return topology.ResourceRouter
	case "floatingip":
		return topology.ResourceFloatingIP
	case "security_group":
		return topology.ResourceSecurityGroup
	case "security_group_rule":
		return topology.ResourceSecurityGroupRule
	case "subnetpool":
		return topology.ResourceSubnetPool
	}
	return ""
}

// ifMatch reads the revisions an If-Match header requires, any one of
// them: "revision_number=N", several comma-separated or in several
// headers; nil when it requires none. Other entries (an entity tag) are
// not Neutron's and are ignored, as Neutron ignores them.
func ifMatch(r *http.Request) ([]uint64, error) {
	var revs []uint64
	for _, h := range r.Header.Values("If-Match") {
		for _, c := range strings.Split(h, ",") {
			v, ok := strings.CutPrefix(strings.TrimSpace(c), "revision_number=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, badRequest("If-Match: revision_number must be an integer, not '%s'", v)
			}
			revs = append(revs, n)
		}
	}
	return revs, nil
}

// proposeOn proposes a change of object id of res; with an If-Match the
// change is wrapped in its precondition, which the FSM checks as it
// applies it (412 if it no longer holds).
func (s *Server) proposeOn(r *http.Request, res resource, id string, t cluster.CommandType, payload any) (cluster.Result, error) {
	revs, err := ifMatch(r)
	if err != nil {
		return cluster.Result{}, err
	}
	if revs == nil || storeResource(res) == "" {
		return s.cluster.Propose(r.Context(), t, payload)
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return cluster.Result{}, err
	}
	return s.cluster.Propose(r.Context(), cluster.CmdIfRevision, cluster.IfRevision{
		Resource: storeResource(res), ID: id, Revisions: revs, Command: t, Payload: raw})
}

// proposeOnAs is proposeOn, its result decoded into a T.
func proposeOnAs[T any](r *http.Request, s *Server, res resource, id string, t cluster.CommandType, payload any) (T, error) {
	var out T
	v, err := s.proposeOn(r, res, id, t, payload)
	if err != nil {
		return out, err
	}
	return out, v.Decode(&out)
}

// taggable are the collections with a tags sub-resource, by the path
// segment that names them.
var taggable = []struct {
	path string
	res  resource
}{
	{"networks", networks}, {"subnets", subnets}, {"ports", ports}, {"routers", routers},
	{"floatingips", floatingips}, {"security-groups", securityGroups}, {"subnetpools", subnetPools},
}

// tagRoutes are the tags sub-resources of every taggable collection.
func (s *Server) tagRoutes() []route {
	var out []route
	for _, t := range taggable {
		base := "/v2.0/" + t.path + "/{id}/tags"
		out = append(out,
			route{"GET", base, s.read(s.tagsList(t.res))},
			route{"PUT", base, s.write(s.tagsReplace(t.res))},
			route{"DELETE", base, s.write(s.tagsChange(t.res, topology.TagsClear))},
			route{"GET", base + "/{tag}", s.read(s.tagShow(t.res))},
			route{"PUT", base + "/{tag}", s.write(s.tagsChange(t.res, topology.TagAdd))},
			route{"DELETE", base + "/{tag}", s.write(s.tagsChange(t.res, topology.TagRemove))},
		)
	}
	return out
}

// tagsOf reads an object's tags as the caller may see them.
func (s *Server) tagsOf(r *http.Request, res resource) ([]string, error) {
	id := r.PathValue("id")
	c := callerOf(r.Context())
	var tags []string
	var found bool
	s.cluster.Read(func(st *topology.Store) {
		o, ok := lookup(st, res, id)
		found, tags = ok && visible(st, c, o.obj), o.tags
	})
	if !found {
		return nil, notFoundFor(res, id)
	}
	if tags == nil {
		tags = []string{}
	}
	return tags, nil
}

func (s *Server) tagsList(res resource) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		tags, err := s.tagsOf(r, res)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"tags": tags})
		return nil
	}
}

// tagShow answers 204 if the object has the tag, else 404.
func (s *Server) tagShow(res resource) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		tags, err := s.tagsOf(r, res)
		if err != nil {
			return err
		}
		tag := r.PathValue("tag")
		for _, t := range tags {
			if t == tag {
				w.WriteHeader(http.StatusNoContent)
				return nil
			}
		}
		return &topology.Error{Kind: topology.KindNotFound, Type: "TagNotFound",
			Message: "Tag " + tag + " could not be found for resource " + r.PathValue("id") + "."}
	}
}

// tagsReplace handles PUT …/tags: {"tags": [...]} replaces them all.
func (s *Server) tagsReplace(res resource) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var body struct {
			Tags *[]string `json:"tags"`
		}
		if err := readStrict(r, &body); err != nil {
			return err
		}
		if body.Tags == nil {
			return badRequest("Invalid input: the body is {\"tags\": [...]}")
		}
		if err := checkTags(*body.Tags); err != nil {
			return err
		}
		tags, err := s.changeTags(r, res, topology.TagsReplace, *body.Tags)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"tags": tags})
		return nil
	}
}

// tagsChange handles PUT …/tags/{tag} (add: 201), DELETE …/tags/{tag}
// and DELETE …/tags (204).
func (s *Server) tagsChange(res resource, op topology.TagOp) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var tags []string
		if op == topology.TagAdd || op == topology.TagRemove {
			tags = []string{r.PathValue("tag")}
			if err := checkTags(tags); err != nil {
				return err
			}
		}
		if _, err := s.changeTags(r, res, op, tags); err != nil {
			return err
		}
		if op == topology.TagAdd {
			w.WriteHeader(http.StatusCreated)
		} else {
			w.WriteHeader(http.StatusNoContent)
		}
		return nil
	}
}

func checkTags(tags []string) error {
	if len(tags) > topology.MaxTags {
		return invalidInput("Invalid input for tags. Reason: %d tags exceed the maximum of %d.", len(tags), topology.MaxTags)
	}
	for _, t := range tags {
		if t == "" || len(t) > topology.MaxTagLen || strings.Contains(t, ",") {
			return invalidInput("Invalid input for tags. Reason: '%s' is not a valid tag: 1 to %d characters, no comma.", t, topology.MaxTagLen)
		}
	}
	return nil
}

// changeTags proposes a change of an object's tags, which its owner (or
// an admin) may make.
func (s *Server) changeTags(r *http.Request, res resource, op topology.TagOp, tags []string) ([]string, error) {
	id := r.PathValue("id")
	if err := s.check(r, func(st *topology.Store, c Caller) error { return mayChange(st, c, res, id) }); err != nil {
		return nil, err
	}
	return proposeOnAs[[]string](r, s, res, id, cluster.CmdTags, cluster.Tags{Resource: storeResource(res), ID: id, Op: op, Tags: tags})
}
