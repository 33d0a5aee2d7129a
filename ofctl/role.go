package ofctl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// Role is a controller's role on a switch (ofp_controller_role). A switch
// sends punts and port status only to its master and its equal
// controllers, and refuses a slave's writes; several controllers of one
// bridge agree who is master through RequestRole.
type Role uint32

// Roles.
const (
	RoleNoChange Role = 0
	RoleEqual    Role = 1
	RoleMaster   Role = 2
	RoleSlave    Role = 3
)

func (r Role) String() string {
	switch r {
	case RoleNoChange:
		return "nochange"
	case RoleEqual:
		return "equal"
	case RoleMaster:
		return "master"
	case RoleSlave:
		return "slave"
	}
	return fmt.Sprintf("role(%d)", uint32(r))
}

// OpenFlow 1.5 role messages and their error.
const (
	typeRoleRequest = 24
	typeRoleReply   = 25
	typeRoleStatus  = 30

	errRoleRequestFailed = 11
	roleFailedStale      = 0 // OFPRRFC_STALE
)

// ErrStaleRole is a role request the switch refused because its
// generation id is older than one it has seen: a deposed master's.
var ErrStaleRole = errors.New("ofctl: role request refused as stale (an older generation id than the switch has seen)")

// RequestRole asks the switch for a role. For master and slave, gen is
// the requester's generation id (Wyvern: the raft term of the decision):
// the switch refuses one older than the newest it has seen, so a deposed
// master cannot take a bridge back. It returns the role and generation id
// the switch answered.
func (s *Switch) RequestRole(ctx context.Context, role Role, gen uint64) (Role, uint64, error) {
	xid := s.nextXids(1)
	b := be32(appendHeader(nil, typeRoleRequest, xid), uint32(role))
	b = be64(be32(b, 0), gen) // pad, generation_id
	b = finish(b, 0)
	replies, err := s.roundTrip(ctx, xid, b, "role request", isType(typeRoleReply))
	var oe *OpenFlowError
	if errors.As(err, &oe) && oe.Type == errRoleRequestFailed && oe.Code == roleFailedStale {
		return 0, 0, fmt.Errorf("%w: switch %016x, generation %d", ErrStaleRole, s.dpid, gen)
	}
	if err != nil {
		return 0, 0, err
	}
	return parseRole(replies[len(replies)-1])
}

// parseRole reads a role reply's or role status' role and generation id.
func parseRole(msg []byte) (Role, uint64, error) {
	if len(msg) < headerLen+16 {
		return 0, 0, fmt.Errorf("ofctl: role message of %d bytes", len(msg))
	}
	return Role(binary.BigEndian.Uint32(msg[8:])), binary.BigEndian.Uint64(msg[16:]), nil
}

// RoleStatus is the last role the switch said this session has, in an
// unsolicited role status (another controller became master, so this one
// is now a slave), and its generation id; ok is false when none came.
func (s *Switch) RoleStatus() (role Role, gen uint64, ok bool) {
	v := s.roleStatus.Load()
	if v == 0 {
		return 0, 0, false
	}
	return Role(v >> 56), v & (1<<56 - 1), true
}
