package northbound

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/wyvern-sdn/wyvern/controller/cluster"
	"github.com/wyvern-sdn/wyvern/internal/topology"
)

// apiError is an error with its HTTP status and Neutron type.
type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.typ + ": " + e.msg }

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "BadRequest", fmt.Sprintf(format, args...)}
}

// writeError answers with Neutron's error body. HTTP statuses are decided
// here and nowhere else.
func writeError(w http.ResponseWriter, err error) {
	status, typ, msg := http.StatusInternalServerError, "InternalServerError", err.Error()
	var ae *apiError
	var te *topology.Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		status, typ, msg = ae.status, ae.typ, ae.msg
	case errors.As(err, &te):
		typ, msg = te.Type, te.Message
		switch te.Kind {
		case topology.KindInvalid:
			status = http.StatusBadRequest
		case topology.KindNotFound:
			status = http.StatusNotFound
		case topology.KindConflict:
			status = http.StatusConflict
		case topology.KindPrecondition:
			status = http.StatusPreconditionFailed
		}
	case errors.As(err, &mbe):
		status, typ, msg = http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fmt.Sprintf("request body exceeds %d bytes", mbe.Limit)
	case errors.Is(err, cluster.ErrNoLeader), errors.Is(err, cluster.ErrNotReady):
		status, typ = http.StatusServiceUnavailable, "ServiceUnavailable"
	}
	writeJSON(w, status, map[string]any{"NeutronError": map[string]string{"type": typ, "message": msg, "detail": ""}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// newUUID returns a random version 4 UUID. IDs are chosen before a command
// is proposed, never inside Apply.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
