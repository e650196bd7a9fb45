// Package netnstest runs a test again inside a network namespace of its
// own, made with unshare -n, for tests that need addresses the machine
// does not have: nothing is added to the machine's own network, and no
// packet leaves the namespace. Nothing here is used by the server.
package netnstest

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// Env, set to 1, tells a test binary that it runs inside the namespace a
// test made.
const Env = "HALLWAY_NETNS_TEST"

// Inside reports whether this process runs inside a test's namespace.
func Inside() bool { return os.Getenv(Env) == "1" }

// Run runs setup, a shell script that ends by running bin ("$0") again
// for this one test, verbosely, inside a new network namespace, with env
// added to the environment. It fails t if that run fails or did not pass
// t, and skips where namespaces are not permitted (not Linux, not root).
func Run(t *testing.T, setup, bin string, env ...string) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("network namespaces are Linux only")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command")
	}
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		t.Skipf("cannot make a network namespace (unshare -n: %v)", err)
	}
	cmd := exec.Command("unshare", "-n", "sh", "-c", setup, bin)
	cmd.Env = append(append(os.Environ(), Env+"=1"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a network namespace: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()+" ") {
		t.Fatalf("in a network namespace, %s did not run:\n%s", t.Name(), out)
	}
	t.Logf("in a network namespace:\n%s", out)
}
