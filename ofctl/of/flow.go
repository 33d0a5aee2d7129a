package of

// Flow is one OpenFlow flow entry as Wyvern wants it on a switch.
//
// A flow's identity on the switch is (Table, Priority, Match); Actions,
// Cookie and timeouts are its content.
type Flow struct {
	Table       uint8
	Priority    uint16
	Match       Match
	Actions     []Action
	Cookie      uint64
	IdleTimeout uint16 // seconds; 0 = none
	HardTimeout uint16 // seconds; 0 = none
}

// FlowKey identifies a flow on a switch: table, priority and match.
type FlowKey string

// Key returns the flow's identity.
func (f Flow) Key() FlowKey {
	var buf [3 + 17*12]byte // most matches: the key built on the stack, one allocation for the string
	return FlowKey(f.AppendKey(buf[:0]))
}

// AppendKey appends the bytes of the flow's Key to b: a map keyed by
// FlowKey looked up with m[FlowKey(f.AppendKey(buf))] allocates nothing.
func (f Flow) AppendKey(b []byte) []byte {
	b = append(b, f.Table, byte(f.Priority>>8), byte(f.Priority))
	return f.Match.appendKey(b)
}

// SameContent reports whether two flows with the same key also carry the
// same actions, cookie and timeouts.
func (f Flow) SameContent(o Flow) bool {
	return f.Cookie == o.Cookie && f.IdleTimeout == o.IdleTimeout &&
		f.HardTimeout == o.HardTimeout && actionsEqual(f.Actions, o.Actions)
}

// Equal reports whether two flows are identical.
func (f Flow) Equal(o Flow) bool {
	return f.Table == o.Table && f.Priority == o.Priority && f.Match.Equal(o.Match) && f.SameContent(o)
}

func actionsEqual(a, b []Action) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
