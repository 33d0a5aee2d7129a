package main

import (
	"bytes"
	"strings"
	"testing"
)

// runRoot runs the CLI in process; it needs no API.
func runRoot(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	root := newRoot(&out, &errb)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errb.String(), err
}

// TestVersionCommand: `wyvern version` and `wyvern --version` print the
// same one line, and need no API.
func TestVersionCommand(t *testing.T) {
	t.Setenv("WYVERN_API", "http://127.0.0.1:1")
	var lines []string
	for _, args := range [][]string{{"version"}, {"--version"}, {"-o", "bogus", "version"}} {
		out, errs, err := runRoot(args...)
		if err != nil || errs != "" {
			t.Fatalf("wyvern %v: %v, stderr %q", args, err, errs)
		}
		if !strings.HasPrefix(out, "wyvern ") || strings.Count(out, "\n") != 1 {
			t.Fatalf("wyvern %v: %q, want one line naming wyvern", args, out)
		}
		lines = append(lines, out)
	}
	if lines[0] != lines[1] {
		t.Fatalf("version %q and --version %q differ", lines[0], lines[1])
	}
}

// TestUnknownCommandFails: an unknown command is an error naming it, and
// `wyvern` alone prints help.
func TestUnknownCommandFails(t *testing.T) {
	if _, _, err := runRoot("netwrk", "list"); err == nil || !strings.Contains(err.Error(), `unknown command "netwrk"`) {
		t.Fatalf("wyvern netwrk list: %v, want unknown command", err)
	}
	out, _, err := runRoot()
	if err != nil || !strings.Contains(out, "Usage:") || !strings.Contains(out, "network") {
		t.Fatalf("wyvern: %v, %q; want help", err, out)
	}
}
