package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"go.yaml.in/yaml/v3"
)

// Output, as the openstack CLI gives it: -f table|json|yaml|value, and
// -c FIELD (repeatable) to pick and order the fields shown.

// formats are the values -f takes.
var formats = []string{"table", "json", "yaml", "value"}

// printer renders answers in the format and columns asked for.
type printer struct {
	out    io.Writer
	format string
	// columns, from -c: only these fields, in this order.
	columns []string
}

// cell renders one value for a table.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64: // every JSON number; never as 4.29e+09
		return strconv.FormatFloat(x, 'f', -1, 64)
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
				case m["destination"] != nil:
					parts = append(parts, cell(m["destination"])+"->"+cell(m["nexthop"]))
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

// ordered is an object whose fields keep the order -c gave them in, in
// JSON and YAML alike.
type ordered struct {
	keys []string
	vals map[string]any
}

func (o ordered) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (o ordered) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range o.keys {
		var v yaml.Node
		if err := v.Encode(o.vals[k]); err != nil {
			return nil, err
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, &v)
	}
	return n, nil
}

// pick checks the -c columns against the fields there are: an unknown
// one is an error naming it.
func (p printer) pick(known []string) ([]string, error) {
	for _, c := range p.columns {
		if !slices.Contains(known, c) {
			sort.Strings(known)
			return nil, fmt.Errorf("-c %s: no such column (there are: %s)", c, strings.Join(known, ", "))
		}
	}
	return p.columns, nil
}

// json writes v as indented JSON.
func (p printer) json(v any) error {
	enc := json.NewEncoder(p.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// raw writes v whole as JSON or YAML.
func (p printer) raw(v any) error {
	if p.format == "yaml" {
		enc := yaml.NewEncoder(p.out)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return err
		}
		return enc.Close()
	}
	return p.json(v)
}

// table shows a list of objects: by default the columns given, with -c
// the ones asked for. JSON and YAML give the objects whole unless -c
// names fields.
func (p printer) table(columns []string, rows []map[string]any) error {
	cols := columns
	if len(p.columns) > 0 {
		known := slices.Clone(columns)
		for _, r := range rows {
			for k := range r {
				if !slices.Contains(known, k) {
					known = append(known, k)
				}
			}
		}
		var err error
		if cols, err = p.pick(known); err != nil {
			return err
		}
	}
	switch p.format {
	case "json", "yaml":
		if len(p.columns) == 0 {
			if rows == nil {
				rows = []map[string]any{}
			}
			return p.raw(rows)
		}
		out := make([]ordered, len(rows))
		for i, r := range rows {
			out[i] = ordered{cols, r}
		}
		return p.raw(out)
	case "value":
		for _, r := range rows {
			vals := make([]string, len(cols))
			for i, c := range cols {
				vals[i] = cell(r[c])
			}
			if _, err := fmt.Fprintln(p.out, strings.Join(vals, " ")); err != nil {
				return err
			}
		}
		return nil
	}
	w := tabwriter.NewWriter(p.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, strings.ToUpper(strings.Join(cols, "\t")))
	for _, r := range rows {
		vals := make([]string, len(cols))
		for i, c := range cols {
			vals[i] = cell(r[c])
		}
		fmt.Fprintln(w, strings.Join(vals, "\t"))
	}
	return w.Flush()
}

// object shows one object: a field per line in a table, the values alone
// one per line with -f value; -c picks and orders the fields.
func (p printer) object(v map[string]any) error {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(p.columns) > 0 {
		var err error
		if keys, err = p.pick(keys); err != nil {
			return err
		}
	}
	switch p.format {
	case "json", "yaml":
		if len(p.columns) == 0 {
			return p.raw(v)
		}
		return p.raw(ordered{keys, v})
	case "value":
		for _, k := range keys {
			if _, err := fmt.Fprintln(p.out, cell(v[k])); err != nil {
				return err
			}
		}
		return nil
	}
	w := tabwriter.NewWriter(p.out, 0, 4, 2, ' ', 0)
	for _, k := range keys {
		fmt.Fprintf(w, "%s\t%s\n", k, cell(v[k]))
	}
	return w.Flush()
}

// say writes a message for people: in a table, and nowhere else, so that
// -f json|yaml|value stay parseable.
func (p printer) say(format string, args ...any) {
	if p.format == "table" {
		fmt.Fprintf(p.out, format, args...)
	}
}
