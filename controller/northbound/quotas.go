package northbound

import (
	"encoding/json"
	"net/http"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// Neutron's quotas: an admin sets a project's limits; anyone reads its
// own project's. Every default is -1, no limit (topology.DefaultQuotas).

// quotaBody is a project's limits as Neutron shows them: one key per
// resource, and the project.
func quotaBody(project string, limits map[string]int) map[string]any {
	out := make(map[string]any, len(limits)+2)
	for k, v := range limits {
		out[k] = v
	}
	if project != "" {
		out["project_id"], out["tenant_id"] = project, project
	}
	return out
}

// quotaRoutes are the quotas routes.
func (s *Server) quotaRoutes() []route {
	return []route{
		{"GET", "/v2.0/quotas", adminOnly(s.read(s.quotaList))},
		{"GET", "/v2.0/quotas/{project}", s.read(s.quotaShow)},
		{"GET", "/v2.0/quotas/{project}/default", s.read(s.quotaDefault)},
		{"GET", "/v2.0/quotas/{project}/details", s.read(s.quotaDetails)},
		{"PUT", "/v2.0/quotas/{project}", adminOnly(s.write(s.quotaUpdate))},
		{"DELETE", "/v2.0/quotas/{project}", adminOnly(s.write(s.quotaReset))},
	}
}

// quotaList lists the projects with limits of their own.
func (s *Server) quotaList(w http.ResponseWriter, r *http.Request) error {
	out := []map[string]any{}
	s.cluster.Read(func(st *topology.Store) {
		for _, p := range st.QuotaProjects() {
			out = append(out, quotaBody(p, st.Quotas(p)))
		}
	})
	writeJSON(w, http.StatusOK, map[string]any{"quotas": out})
	return nil
}

// ownQuota: an admin reads any project's quota, anyone else its own.
func ownQuota(r *http.Request) (string, error) {
	project := r.PathValue("project")
	if c := callerOf(r.Context()); !c.Admin && c.ProjectID != project {
		return "", forbidden("get_quota")
	}
	return project, nil
}

func (s *Server) quotaShow(w http.ResponseWriter, r *http.Request) error {
	project, err := ownQuota(r)
	if err != nil {
		return err
	}
	var q map[string]int
	s.cluster.Read(func(st *topology.Store) { q = st.Quotas(project) })
	writeJSON(w, http.StatusOK, map[string]any{"quota": quotaBody("", q)})
	return nil
}

func (s *Server) quotaDefault(w http.ResponseWriter, r *http.Request) error {
	if _, err := ownQuota(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"quota": quotaBody("", topology.DefaultQuotas())})
	return nil
}

// quotaDetails is Neutron's quota_details: used, limit and reserved (0:
// a create is checked as it is applied, nothing is reserved) of each
// resource.
func (s *Server) quotaDetails(w http.ResponseWriter, r *http.Request) error {
	project, err := ownQuota(r)
	if err != nil {
		return err
	}
	out := map[string]any{}
	s.cluster.Read(func(st *topology.Store) {
		limits, used := st.Quotas(project), st.Usage(project)
		for res, l := range limits {
			out[res] = map[string]int{"used": used[res], "limit": l, "reserved": 0}
		}
	})
	writeJSON(w, http.StatusOK, map[string]any{"quota": out})
	return nil
}

// quotaUpdate handles PUT {"quota": {"network": 10, ...}}; a limit is an
// integer, -1 for none (a string of digits as Neutron converts it).
func (s *Server) quotaUpdate(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Quota map[string]json.RawMessage `json:"quota"`
	}
	if err := readStrict(r, &body); err != nil {
		return err
	}
	if body.Quota == nil {
		return badRequest("Resource body required: {\"quota\": {...}}")
	}
	limits := make(map[string]int, len(body.Quota))
	for k, raw := range body.Quota {
		var n intOrStr
		if err := json.Unmarshal(raw, &n); err != nil {
			return invalidInput("Invalid input for %s. Reason: '%s' is not an integer.", k, abbrev(string(raw)))
		}
		limits[k] = int(n)
	}
	q, err := propose[map[string]int](r.Context(), s, cluster.CmdQuotasSet, cluster.QuotasSet{Project: r.PathValue("project"), Limits: limits})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"quota": quotaBody("", q)})
	return nil
}

func (s *Server) quotaReset(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.cluster.Propose(r.Context(), cluster.CmdQuotasReset, cluster.ByID{ID: r.PathValue("project")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
