// Package daemontest is what tests of a running wyvernd share: the binary
// built once per test process, and JSON calls to its API.
//
// It imports the standard library only.
package daemontest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Main builds wyvernd from pkgDir (its package directory, relative to the
// test's) into a temporary directory, sets *bin to it, runs the tests and
// removes it; it exits the process.
func Main(m *testing.M, pkgDir string, bin *string) {
	dir, err := os.MkdirTemp("", "wyvernd-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = filepath.Join(dir, "wyvernd")
	if out, err := exec.Command("go", "build", "-o", *bin, pkgDir).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkgDir, err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// Call sends method path to the API at addr (HOST:PORT) through client,
// with body as JSON when it is not nil, and decodes a JSON answer into
// out when it is not nil. It returns the HTTP status.
func Call(client *http.Client, method, addr, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	url := addr + path
	if !strings.Contains(addr, "://") {
		url = "http://" + url
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, nil
}
