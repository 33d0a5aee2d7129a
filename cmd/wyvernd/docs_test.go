package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestDocsFlagsTable keeps the flags table of docs/operations.md true to
// wyvernd's flag set: one row per flag, in --help's order, each with a
// plain placeholder for its value (none for a boolean) and its default.
func TestDocsFlagsTable(t *testing.T) {
	const doc = "../../docs/operations.md"
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	const header = "| flag | default | meaning |\n|---|---|---|\n"
	i := strings.Index(text, header)
	if i < 0 {
		t.Fatalf("%s: no table headed %q", doc, header)
	}
	var rows [][]string
	for _, line := range strings.Split(text[i+len(header):], "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		// A cell holds no "|", escaped or not: renderers disagree on "\|"
		// inside code.
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 3 {
			t.Errorf("%s: row %q has %d cells, want 3", doc, line, len(cells))
			continue
		}
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		rows = append(rows, cells)
	}

	fs := flags()
	var order []string
	fs.VisitAll(func(f *pflag.Flag) { order = append(order, f.Name) })
	host, _ := os.Hostname()
	cell := regexp.MustCompile("^`--([a-z0-9-]+)( [^ `]+)?`$")
	var documented []string
	for k, row := range rows {
		m := cell.FindStringSubmatch(row[0])
		if m == nil {
			t.Errorf("%s: row %d's flag cell %q is not `--NAME PLACEHOLDER`", doc, k+1, row[0])
			continue
		}
		documented = append(documented, m[1])
		f := fs.Lookup(m[1])
		if f == nil {
			t.Errorf("%s: row for --%s, which wyvernd does not have", doc, m[1])
			continue
		}
		if isBool := f.Value.Type() == "bool"; isBool != (m[2] == "") {
			t.Errorf("%s: --%s: placeholder %q for a %s flag", doc, f.Name, m[2], f.Value.Type())
		}
		def := row[1]
		switch {
		case f.Name == "node-id" && f.DefValue == host:
			if def != "the host name" {
				t.Errorf("%s: --node-id default %q, want \"the host name\"", doc, def)
			}
		case f.DefValue == "" || f.DefValue == "[]":
			// No default value in the flag set: the table may name the one
			// the usage text describes.
			if def != "" && !strings.Contains(f.Usage, strings.Trim(def, "`")) {
				t.Errorf("%s: --%s default %q; the flag has none and its usage %q does not say it", doc, f.Name, def, f.Usage)
			}
		case def != "`"+f.DefValue+"`":
			t.Errorf("%s: --%s default %q, want `%s`", doc, f.Name, def, f.DefValue)
		}
		if row[2] == "" {
			t.Errorf("%s: --%s says nothing of what it does", doc, f.Name)
		}
	}
	for _, name := range order {
		if !slices.Contains(documented, name) {
			t.Errorf("%s: no row for --%s", doc, name)
		}
	}
	if !t.Failed() && !slices.Equal(documented, order) {
		t.Errorf("%s: rows in the order %v, want --help's %v", doc, documented, order)
	}
}

// TestDocsLinksStayInRepo: every relative link in README.md and docs/
// and every `../path` in code names a file of the repository (a
// `../shared/…` beside the checkout resolves on no one else's machine,
// nor on GitHub).
func TestDocsLinksStayInRepo(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"))
	link := regexp.MustCompile(`\]\(([^)#\s]+)`)
	// A path in code that climbs a directory, as `../shared/X`.
	outside := regexp.MustCompile("`(\\.\\./)+[A-Za-z][^`]*`")
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(root, doc)
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			p := filepath.Join(filepath.Dir(doc), target)
			if rel, err := filepath.Rel(root, p); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: link %q points outside the repository", name, target)
			} else if _, err := os.Stat(p); err != nil {
				t.Errorf("%s: link %q: %v", name, target, err)
			}
		}
		for _, m := range outside.FindAllString(string(b), -1) {
			p := filepath.Join(filepath.Dir(doc), strings.Trim(m, "`"))
			if rel, err := filepath.Rel(root, p); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s: %s is outside the repository", name, m)
			} else if _, err := os.Stat(p); err != nil {
				t.Errorf("%s: %s: %v", name, m, err)
			}
		}
	}
}
