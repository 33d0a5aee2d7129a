package northbound

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Neutron's list semantics: filters on any attribute (an unknown one is
// 400), fixed_ips and tags filters, sort_key/sort_dir, limit/marker
// pagination with <plural>_links, and the fields projection.

// reservedQuery are list parameters that are not attribute filters.
var reservedQuery = set("fields", "consistent", "limit", "marker", "sort_key", "sort_dir", "page_reverse",
	"tags", "tags-any", "not-tags", "not-tags-any")

// attributesOf are the attributes a collection's objects have, as
// filters and sort keys may name them: those of the rendered type, and
// the passive fields stored for it.
func attributesOf[T any](plural string) map[string]bool {
	var zero T
	out := map[string]bool{}
	for k := range render(zero) {
		out[k] = true
	}
	if res, ok := resourceByPlural[plural]; ok {
		for k := range res.passive {
			out[k] = true
		}
	}
	return out
}

var resourceByPlural = map[string]resource{}

func init() {
	for _, r := range []resource{networks, subnets, ports, routers, floatingips, portForwardings, securityGroups, securityGroupRules, subnetPools} {
		resourceByPlural[r.plural] = r
	}
}

// listQuery is a list request, parsed and checked.
type listQuery struct {
	fields  []string
	filters map[string][]string
	// tags filters: all of, any of, not all of, none of.
	tagsAll, tagsAny, notTagsAll, notTagsAny []string
	sorts                                    []sortKey
	limit                                    int // 0: no limit
	marker                                   string
	reverse                                  bool
}

type sortKey struct {
	key string
	asc bool
}

// parseList reads a list request's query against the collection's
// attributes; a mistake is 400, as Neutron's filter validation has it.
func parseList(q url.Values, attrs map[string]bool) (listQuery, error) {
	lq := listQuery{fields: q["fields"], filters: map[string][]string{}}
	for k, v := range q {
		if reservedQuery[k] {
			continue
		}
		if !attrs[k] {
			return lq, queryError("%s is invalid attribute for filtering", k)
		}
		lq.filters[k] = v
	}
	lq.tagsAll, lq.tagsAny = tagList(q["tags"]), tagList(q["tags-any"])
	lq.notTagsAll, lq.notTagsAny = tagList(q["not-tags"]), tagList(q["not-tags-any"])
	if (lq.tagsAll != nil || lq.tagsAny != nil || lq.notTagsAll != nil || lq.notTagsAny != nil) && !attrs["tags"] {
		return lq, queryError("tags is invalid attribute for filtering")
	}
	keys, dirs := q["sort_key"], q["sort_dir"]
	if len(dirs) > 0 && len(dirs) != len(keys) {
		return lq, queryError("The number of sort_keys and sort_dirs must be same")
	}
	for i, k := range keys {
		if !attrs[k] {
			return lq, queryError("%s is invalid attribute for sort_keys", k)
		}
		asc := true
		if len(dirs) > 0 {
			switch dirs[i] {
			case "asc":
			case "desc":
				asc = false
			default:
				return lq, queryError("%s is invalid value for sort_dirs, valid sort dir values are asc and desc", dirs[i])
			}
		}
		lq.sorts = append(lq.sorts, sortKey{k, asc})
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return lq, badRequest("Bad limit request: Limit must be an integer 0 or greater and not '%s'", l) // Neutron's BadRequest
		}
		lq.limit = n
	}
	lq.marker = q.Get("marker")
	if p := q.Get("page_reverse"); p != "" {
		b, err := strconv.ParseBool(p)
		if err != nil {
			return lq, queryError("'%s' cannot be converted to boolean", p)
		}
		lq.reverse = b
	}
	return lq, nil
}

// tagList splits tags=a,b (each value of a repeated parameter too); nil
// when the parameter is absent.
func tagList(vals []string) []string {
	if vals == nil {
		return nil
	}
	out := []string{}
	for _, v := range vals {
		for _, t := range strings.Split(v, ",") {
			if t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// keep says whether an object passes every filter.
func (lq listQuery) keep(o map[string]any) (bool, error) {
	for k, want := range lq.filters {
		have, ok := o[k]
		if !ok {
			return false, nil // an attribute the caller may not read matches nothing
		}
		if k == "fixed_ips" {
			m, err := fixedIPsMatch(have, want)
			if err != nil || !m {
				return false, err
			}
			continue
		}
		match := false
		for _, w := range want {
			m, err := matches(k, have, w)
			if err != nil {
				return false, err
			}
			if m {
				match = true
				break
			}
		}
		if !match {
			return false, nil
		}
	}
	if lq.tagsAll != nil || lq.tagsAny != nil || lq.notTagsAll != nil || lq.notTagsAny != nil {
		var tags []string
		if l, ok := o["tags"].([]any); ok {
			for _, t := range l {
				if s, ok := t.(string); ok {
					tags = append(tags, s)
				}
			}
		}
		has := func(t string) bool { return slices.Contains(tags, t) }
		all := func(ts []string) bool { return !slices.ContainsFunc(ts, func(t string) bool { return !has(t) }) }
		anyOf := func(ts []string) bool { return slices.ContainsFunc(ts, has) }
		if lq.tagsAll != nil && !all(lq.tagsAll) || lq.tagsAny != nil && !anyOf(lq.tagsAny) ||
			len(lq.notTagsAll) > 0 && all(lq.notTagsAll) || lq.notTagsAny != nil && anyOf(lq.notTagsAny) {
			return false, nil
		}
	}
	return true, nil
}

// matches compares an attribute with one filter value. A boolean takes
// what Neutron's convert_to_boolean takes (the openstack CLI asks for
// router:external=True); a list matches if any element does.
func matches(key string, have any, want string) (bool, error) {
	switch h := have.(type) {
	case bool:
		w, err := strconv.ParseBool(want)
		if err != nil {
			return false, queryError("Invalid input for %s. Reason: '%s' cannot be converted to boolean.", key, want)
		}
		return w == h, nil
	case []any:
		for _, e := range h {
			if scalarString(e) == want {
				return true, nil
			}
		}
		return false, nil
	}
	return scalarString(have) == want, nil
}

// fixedIPsMatch is Neutron's fixed_ips filter on ports: each value is
// ip_address=A, subnet_id=S or ip_address_substr=P; values of one key
// are alternatives, different keys must all hold of some address.
func fixedIPsMatch(have any, want []string) (bool, error) {
	by := map[string][]string{}
	for _, w := range want {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k != "ip_address" && k != "subnet_id" && k != "ip_address_substr" {
			return false, queryError("Invalid input for fixed_ips filter: '%s' is not ip_address=, subnet_id= or ip_address_substr=", w)
		}
		by[k] = append(by[k], v)
	}
	list, _ := have.([]any)
	for k, vals := range by {
		found := false
		for _, e := range list {
			f, _ := e.(map[string]any)
			switch k {
			case "ip_address_substr":
				a, _ := f["ip_address"].(string)
				found = slices.ContainsFunc(vals, func(v string) bool { return strings.Contains(a, v) })
			default:
				s, _ := f[k].(string)
				found = slices.Contains(vals, s)
			}
			if found {
				break
			}
		}
		if !found {
			return false, nil
		}
	}
	return true, nil
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

// compare orders two objects by the sort keys, then by id: a total order,
// so that a marker names one place in it.
func (lq listQuery) compare(a, b map[string]any) int {
	for _, k := range lq.sorts {
		c := compareValues(a[k.key], b[k.key])
		if !k.asc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return strings.Compare(scalarString(a["id"]), scalarString(b["id"]))
}

// compareValues orders JSON values: null first, then booleans, numbers
// and strings by value; anything else by its encoding.
func compareValues(a, b any) int {
	rank := func(v any) int {
		switch v.(type) {
		case nil:
			return 0
		case bool:
			return 1
		case float64:
			return 2
		case string:
			return 3
		}
		return 4
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return cmp.Compare(ra, rb)
	}
	switch x := a.(type) {
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case float64:
		return cmp.Compare(x, b.(float64))
	case string:
		return strings.Compare(x, b.(string))
	case nil:
		return 0
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return strings.Compare(string(ja), string(jb))
}

// page applies sorting and pagination to the filtered objects; all is
// every object of the collection, where the marker is looked up. It
// returns the page and its links.
func (lq listQuery) page(r *http.Request, plural string, objs, all []map[string]any) ([]map[string]any, []map[string]string, error) {
	if len(lq.sorts) > 0 || lq.marker != "" {
		slices.SortStableFunc(objs, lq.compare)
	}
	if lq.limit == 0 && lq.marker == "" {
		return objs, nil, nil
	}
	start, end := 0, len(objs) // the candidates: after (before, reversed) the marker
	if lq.marker != "" {
		i := slices.IndexFunc(all, func(o map[string]any) bool { return o["id"] == lq.marker })
		if i < 0 {
			res := resourceByPlural[plural]
			if res.singular == "" {
				res = resource{singular: strings.TrimSuffix(plural, "s")}
			}
			return nil, nil, notFoundFor(res, lq.marker)
		}
		m := all[i]
		pos, _ := slices.BinarySearchFunc(objs, m, lq.compare)
		if lq.reverse {
			end = pos
		} else {
			start = pos
			if start < len(objs) && lq.compare(objs[start], m) == 0 {
				start++
			}
		}
	}
	from, to := start, end
	if lq.limit > 0 && to-from > lq.limit {
		if lq.reverse {
			from = to - lq.limit
		} else {
			to = from + lq.limit
		}
	}
	out := objs[from:to]
	var links []map[string]string
	if lq.limit == 0 {
		return out, nil, nil
	}
	first, last := lq.marker, lq.marker
	if len(out) > 0 {
		first, last = scalarString(out[0]["id"]), scalarString(out[len(out)-1]["id"])
	}
	moreAfter := to < end || lq.reverse && lq.marker != ""
	moreBefore := from > start || !lq.reverse && lq.marker != ""
	if moreAfter && last != "" {
		links = append(links, map[string]string{"rel": "next", "href": pageLink(r, last, false)})
	}
	if moreBefore && first != "" {
		links = append(links, map[string]string{"rel": "previous", "href": pageLink(r, first, true)})
	}
	return out, links, nil
}

// pageLink is the request's URL with another marker (and direction),
// every other parameter kept.
func pageLink(r *http.Request, marker string, reverse bool) string {
	q := r.URL.Query()
	q.Set("marker", marker)
	q.Del("page_reverse")
	if reverse {
		q.Set("page_reverse", "True")
	}
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return scheme + r.Host + r.URL.Path + "?" + q.Encode()
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

// queryError is a list query Neutron refuses: its webob HTTPBadRequest.
func queryError(format string, args ...any) *apiError {
	e := badRequest(format, args...)
	e.typ = "HTTPBadRequest"
	return e
}
