// Package buildinfo says which build of Wyvern is running, from the
// version control information the Go toolchain stamps into binaries.
//
// It imports the standard library only.
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// Version is the running binary's version: the main module's version when
// the build set one (a tag, or the pseudo-version go build derives from
// the commit), else the short commit, "+dirty" when the tree had changes,
// and the commit time; "unknown" when the build recorded none of these
// (go build -buildvcs=false, go run, tests).
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	return FromBuildInfo(bi)
}

// FromBuildInfo is Version for a given build's information.
func FromBuildInfo(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, at string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	var b strings.Builder
	b.WriteString(rev[:min(len(rev), 12)])
	if dirty {
		b.WriteString("+dirty")
	}
	if at != "" {
		b.WriteString(" (" + at + ")")
	}
	return b.String()
}

// String is the line a binary prints for --version: its name, Version
// and the Go release it was built with.
func String(name string) string {
	gover := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		gover = bi.GoVersion
	}
	return name + " " + Version() + " " + gover
}
