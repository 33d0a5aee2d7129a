package trace

import (
	"fmt"
	"strings"
)

// Format prints a walk stage by stage: table, stage, priority, app and
// object, what the flow changed, its punt and notes; with flows, the
// matched flow under each hop; then where the packet ended.
func Format(r Result, flows bool) string {
	var b strings.Builder
	for _, h := range r.Hops {
		indent := strings.Repeat("  ", h.Depth)
		owner := h.App
		if h.Object != "" {
			owner += " " + h.Object
		}
		if h.Miss {
			owner = "(no flow)"
		}
		line := fmt.Sprintf("%s%3d %-17s prio %-5d %-24s", indent, h.Table, h.Stage, h.Priority, owner)
		var what []string
		if h.Reactive {
			what = append(what, "[reactive: installed on first packet]")
		}
		what = append(what, h.Changes...)
		if p := h.Punt; p != nil {
			s := "punt " + p.Reason
			if p.Outcome != "" {
				s += " -> " + p.Outcome
			}
			if len(p.Installed) > 0 {
				s += fmt.Sprintf(", %d flow(s) installed", len(p.Installed))
			}
			if p.Resumed != nil {
				s += ", re-injected into " + tableName(*p.Resumed)
			}
			what = append(what, s)
		}
		what = append(what, h.Notes...)
		b.WriteString(strings.TrimRight(line+" "+strings.Join(what, "; "), " "))
		b.WriteByte('\n')
		if flows && h.Flow != "" {
			fmt.Fprintf(&b, "%s      flow: %s\n", indent, h.Flow)
			if h.Punt != nil {
				for _, f := range h.Punt.Installed {
					fmt.Fprintf(&b, "%s      installs: %s\n", indent, f)
				}
			}
		}
	}
	b.WriteString(FormatEnd(r.End))
	return b.String()
}

// FormatEnd prints where a walk ended, one line per output.
func FormatEnd(e End) string {
	var b strings.Builder
	switch e.Kind {
	case EndOutput:
		for _, o := range e.Outputs {
			fmt.Fprintf(&b, "=> output %s\n", FormatOutput(o))
		}
	case EndPunt:
		fmt.Fprintf(&b, "=> punt to the controller in %s: %s\n", e.Stage, e.Reason)
	default:
		fmt.Fprintf(&b, "=> drop in %s", e.Stage)
		if e.Reason != "" && e.Reason != "dropped in "+e.Stage {
			fmt.Fprintf(&b, ": %s", e.Reason)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// FormatOutput prints one copy leaving the bridge.
func FormatOutput(o Output) string {
	name := o.Name
	if name == "" {
		name = fmt.Sprint(o.Port)
	}
	s := fmt.Sprintf("to %s port %s (%d)", o.Kind, name, o.Port)
	if o.TunID != nil {
		s += fmt.Sprintf(" tun_id=%#x tun_dst=%s", *o.TunID, o.TunDst)
	}
	if o.VLAN != 0 {
		s += fmt.Sprintf(" vlan=%d", o.VLAN)
	}
	s += fmt.Sprintf(" eth %s > %s", o.EthSrc, o.EthDst)
	if o.IPDst != "" {
		s += fmt.Sprintf(" ip %s > %s ttl %d", o.IPSrc, o.IPDst, o.TTL)
	}
	return s + " (from " + o.Stage + ")"
}
