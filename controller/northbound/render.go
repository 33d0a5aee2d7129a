package northbound

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// render turns an object into its Neutron JSON map: passive fields at the
// top level, Wyvern's own keys kept.
func render(v any) map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if extra, ok := m["extra"].(map[string]any); ok {
		for k, x := range extra {
			// A field Wyvern now types wins over the same name stored
			// passively by an older release.
			if _, typed := m[k]; !typed {
				m[k] = x
			}
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
