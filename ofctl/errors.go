package ofctl

import (
	"errors"
	"fmt"

	"github.com/wyvern-sdn/wyvern/ofctl/of"
)

var (
	// ErrDisconnected is returned by calls on a switch whose connection
	// has ended.
	ErrDisconnected = errors.New("ofctl: switch disconnected")
	// ErrVersion is returned when a switch does not speak OpenFlow 1.5.
	ErrVersion = errors.New("ofctl: switch does not offer OpenFlow 1.5 (set protocols=OpenFlow13,OpenFlow15 on the bridge)")
)

// OpenFlowError is an error the switch answered a request with.
type OpenFlowError struct {
	DPID uint64
	Type uint16
	Code uint16
	// Flow is the flow whose flow-mod failed, when the error names one.
	Flow *of.Flow
	// Request says what was being done ("bundle commit", "table names").
	Request string
}

func (e *OpenFlowError) Error() string {
	what := e.Request
	if e.Flow != nil {
		what = "flow " + e.Flow.String()
	}
	return fmt.Sprintf("ofctl: switch %016x: %s: %s", e.DPID, what, ErrorName(e.Type, e.Code))
}

var errorNames = map[uint16]struct {
	prefix string
	codes  []string
}{
	0:  {"OFPHFC", []string{"INCOMPATIBLE", "EPERM"}},
	1:  {"OFPBRC", []string{"BAD_VERSION", "BAD_TYPE", "BAD_MULTIPART", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "EPERM", "BAD_LEN", "BUFFER_EMPTY", "BUFFER_UNKNOWN", "BAD_TABLE_ID", "IS_SLAVE", "BAD_PORT", "BAD_PACKET", "MULTIPART_BUFFER_OVERFLOW"}},
	2:  {"OFPBAC", []string{"BAD_TYPE", "BAD_LEN", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "BAD_OUT_PORT", "BAD_ARGUMENT", "EPERM", "TOO_MANY", "BAD_QUEUE", "BAD_OUT_GROUP", "MATCH_INCONSISTENT", "UNSUPPORTED_ORDER", "BAD_TAG", "BAD_SET_TYPE", "BAD_SET_LEN", "BAD_SET_ARGUMENT"}},
	3:  {"OFPBIC", []string{"UNKNOWN_INST", "UNSUP_INST", "BAD_TABLE_ID", "UNSUP_METADATA", "UNSUP_METADATA_MASK", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "BAD_LEN", "EPERM", "DUP_INST"}},
	4:  {"OFPBMC", []string{"BAD_TYPE", "BAD_LEN", "BAD_TAG", "BAD_DL_ADDR_MASK", "BAD_NW_ADDR_MASK", "BAD_WILDCARDS", "BAD_FIELD", "BAD_VALUE", "BAD_MASK", "BAD_PREREQ", "DUP_FIELD", "EPERM"}},
	5:  {"OFPFMFC", []string{"UNKNOWN", "TABLE_FULL", "BAD_TABLE_ID", "OVERLAP", "EPERM", "BAD_TIMEOUT", "BAD_COMMAND", "BAD_FLAGS", "CANT_SYNC", "BAD_PRIORITY", "IS_SYNC"}},
	11: {"OFPRRFC", []string{"STALE", "UNSUP", "BAD_ROLE"}},
	12: {"OFPMMFC", []string{"UNKNOWN", "METER_EXISTS", "INVALID_METER", "UNKNOWN_METER", "BAD_COMMAND", "BAD_FLAGS", "BAD_RATE", "BAD_BURST", "BAD_BAND", "BAD_BAND_VALUE", "OUT_OF_METERS", "OUT_OF_BANDS"}},
	13: {"OFPTFFC", []string{"BAD_TABLE", "BAD_METADATA", "BAD_TYPE", "BAD_LEN", "BAD_ARGUMENT", "EPERM"}},
	17: {"OFPBFC", []string{"UNKNOWN", "EPERM", "BAD_ID", "BUNDLE_EXIST", "BUNDLE_CLOSED", "OUT_OF_BUNDLES", "BAD_TYPE", "BAD_FLAGS", "MSG_BAD_LEN", "MSG_BAD_XID", "MSG_UNSUP", "MSG_CONFLICT", "MSG_TOO_MANY", "MSG_FAILED", "TIMEOUT", "BUNDLE_IN_PROGRESS"}},
}

// ErrorName names an OpenFlow error type and code as OVS does
// (e.g. OFPBAC_BAD_SET_TYPE).
func ErrorName(typ, code uint16) string {
	if n, ok := errorNames[typ]; ok && int(code) < len(n.codes) {
		return fmt.Sprintf("%s_%s (type %d, code %d)", n.prefix, n.codes[code], typ, code)
	}
	return fmt.Sprintf("OpenFlow error type %d, code %d", typ, code)
}
