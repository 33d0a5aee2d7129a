package topology

import (
	"crypto/sha1"
	"fmt"
	"strings"
	"testing"
)

// nameUUID's ids are in every raft log and snapshot: the allocation-free
// form must name what the fmt form named.
func TestNameUUIDUnchanged(t *testing.T) {
	ref := func(name string) string {
		h := sha1.New()
		h.Write(uuidNamespace[:])
		h.Write([]byte(name))
		b := h.Sum(nil)[:16]
		b[6] = b[6]&0x0f | 0x50
		b[8] = b[8]&0x3f | 0x80
		return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	}
	for _, name := range []string{"", "wyvern-default-sg:", "wyvern-default-sg:p1:egress-ipv4", strings.Repeat("x", 500)} {
		if got, want := nameUUID(name), ref(name); got != want {
			t.Errorf("nameUUID(%q) = %s, want %s", name, got, want)
		}
	}
	if got := DefaultSecurityGroupID("demo"); got != ref("wyvern-default-sg:demo") {
		t.Errorf("DefaultSecurityGroupID changed: %s", got)
	}
}
