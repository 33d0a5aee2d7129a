package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPackageScriptsDriveSystemd runs the maintainer scripts as dpkg would
// on a machine booted with systemd: each in a mount namespace of its own
// whose /run holds systemd/system (systemd's "I am running" mark) and
// whose /etc/systemd/system is a scratch copy and whose /usr/sbin holds
// only the policy-rc.d the case asks for, with a systemctl first on PATH
// that records what it is asked (deb-systemd-invoke's included). A first
// install only reloads; it never enables or starts the node. An upgrade
// restarts a running one; removal stops it; purge forgets its enablement;
// a policy-rc.d that says 101 (a container build) vetoes starts and
// stops. In a chroot or an image (DPKG_ROOT) or without systemd, they ask
// systemd nothing.
func TestPackageScriptsDriveSystemd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a mount namespace")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare")
	}
	bin := t.TempDir()
	shim := "#!/bin/sh\necho \"$*\" >>\"$SYSTEMCTL_LOG\"\n"
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}
	const wants = "/etc/systemd/system/multi-user.target.wants/wyvernd.service"
	for _, tc := range []struct {
		script  string
		args    []string
		systemd bool   // /run/systemd/system exists
		root    string // DPKG_ROOT
		policy  string // policy-rc.d's exit status; "": none
		calls   []string
		says    string // in the script's output
		unwants bool   // the enablement link is gone afterwards
	}{
		{script: "postinst", args: []string{"configure", ""}, systemd: true,
			calls: []string{"--system daemon-reload"}, says: "neither enabled nor started"},
		{script: "postinst", args: []string{"configure"}, systemd: true,
			calls: []string{"--system daemon-reload"}, says: "systemctl enable --now wyvernd"},
		{script: "postinst", args: []string{"configure", "0.0.0~git20261130000000.0123456789ab"}, systemd: true,
			calls: []string{"--system daemon-reload", "try-restart wyvernd.service"}},
		{script: "prerm", args: []string{"remove"}, systemd: true, calls: []string{"stop wyvernd.service"}},
		{script: "prerm", args: []string{"remove"}, systemd: true, policy: "0", calls: []string{"stop wyvernd.service"}},
		{script: "prerm", args: []string{"remove"}, systemd: true, policy: "101"},
		{script: "postinst", args: []string{"configure", "1.0.0"}, systemd: true, policy: "101", calls: []string{"--system daemon-reload"}},
		{script: "prerm", args: []string{"upgrade", "1.0.0"}, systemd: true},
		{script: "postrm", args: []string{"remove"}, systemd: true, calls: []string{"--system daemon-reload"}},
		{script: "postrm", args: []string{"purge"}, systemd: true, calls: []string{"--system daemon-reload"}, unwants: true},
		{script: "postinst", args: []string{"configure", ""}, says: "neither enabled nor started"},
		{script: "prerm", args: []string{"remove"}},
		{script: "postinst", args: []string{"configure", ""}, systemd: true, root: "/nonexistent", says: "neither enabled nor started"},
		{script: "prerm", args: []string{"remove"}, systemd: true, root: "/nonexistent"},
	} {
		name := tc.script + " " + strings.Join(tc.args, " ")
		if tc.root != "" {
			name += " DPKG_ROOT=" + tc.root
		}
		if !tc.systemd {
			name += " without systemd"
		}
		if tc.policy != "" {
			name += " policy-rc.d " + tc.policy
		}
		log := filepath.Join(t.TempDir(), "systemctl.log")
		setup := "set -e; mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /usr/sbin; mount -t tmpfs tmpfs /etc/systemd/system; " +
			"mkdir -p $(dirname " + wants + "); ln -s /lib/systemd/system/wyvernd.service " + wants + "; "
		if tc.systemd {
			setup += "mkdir -p /run/systemd/system; "
		}
		if tc.policy != "" {
			setup += `printf '#!/bin/sh\nexit ` + tc.policy + `\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; `
		}
		check := `; rc=$?; test -L ` + wants + ` && echo LINKED; exit $rc`
		args := append([]string{"--mount", "--propagation", "private", "sh", "-c", setup + `"$0" "$@"` + check, "./" + tc.script}, tc.args...)
		cmd := exec.Command(unshare, args...)
		cmd.Dir = "deb"
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "SYSTEMCTL_LOG=" + log}
		if tc.root != "" {
			cmd.Env = append(cmd.Env, "DPKG_ROOT="+tc.root)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", name, err, out)
			continue
		}
		b, _ := os.ReadFile(log)
		var calls []string
		if s := strings.TrimSpace(string(b)); s != "" {
			calls = strings.Split(s, "\n")
		}
		if !slices.Equal(calls, tc.calls) {
			t.Errorf("%s: systemctl %q, want %q", name, calls, tc.calls)
		}
		if !strings.Contains(string(out), tc.says) {
			t.Errorf("%s: output %q, want %q", name, out, tc.says)
		}
		if linked := strings.Contains(string(out), "LINKED"); linked == tc.unwants {
			t.Errorf("%s: enablement link kept %v, want %v", name, linked, !tc.unwants)
		}
	}
}
