package ovstest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// A test process that is killed (a timeout, a closed pipe) runs no
// cleanups. So every process records what it makes in a ledger named by
// its pid; the first Start of a later process sweeps the ledgers of dead
// processes: it stops their OVS daemons by pidfile, deletes their
// namespaces and directories. Nothing it did not record is touched.

const ledgerDir = "/tmp/wyvern-ovstest"

var (
	sweepOnce sync.Once
	ledgerMu  sync.Mutex
)

func ledgerPath(pid int) string { return filepath.Join(ledgerDir, strconv.Itoa(pid)) }

// record appends one thing this process made to its ledger.
func record(kind, name string) {
	ledgerMu.Lock()
	defer ledgerMu.Unlock()
	_ = os.MkdirAll(ledgerDir, 0o755)
	f, err := os.OpenFile(ledgerPath(os.Getpid()), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s\n", kind, name)
}

func sweepStale() {
	entries, err := os.ReadDir(ledgerDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue // not a ledger, ours, or its process still runs
		}
		f, err := os.Open(ledgerPath(pid))
		if err != nil {
			continue
		}
		var dirs, namespaces []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			kind, name, _ := strings.Cut(sc.Text(), " ")
			switch kind {
			case "dir":
				dirs = append(dirs, name)
			case "netns":
				namespaces = append(namespaces, name)
			}
		}
		f.Close()
		for _, d := range dirs {
			if !strings.HasPrefix(d, "/tmp/wyovs") {
				continue
			}
			stopPID(readPID(filepath.Join(d, "vs.pid")))
			stopPID(readPID(filepath.Join(d, "db.pid")))
			_ = os.RemoveAll(d)
		}
		for _, ns := range namespaces {
			_, _ = run("ip", "netns", "del", ns)
		}
		_ = os.Remove(ledgerPath(pid))
	}
}
