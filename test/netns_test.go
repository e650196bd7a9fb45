//go:build linux

package test

// Tests that need addresses the machine does not have run again inside a
// network namespace of their own, made with unshare -n: nothing is added to
// the machine's own network, and no packet leaves the namespace.

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// netnsEnv, set to 1, tells the test binary that it runs inside the
// namespace a test made.
const netnsEnv = "HALLWAY_NETNS_TEST"

// inNetns says whether this process runs inside a test's namespace.
func inNetns() bool { return os.Getenv(netnsEnv) == "1" }

// runInNetns runs setup, a shell script that ends by running this test
// binary ("$0") again for this one test, verbosely, inside a new network namespace, and
// fails the test if that run fails. The server built by TestMain is
// reused. It skips where namespaces are not permitted (not root).
func runInNetns(t *testing.T, setup string) {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command")
	}
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		t.Skipf("cannot make a network namespace (unshare -n: %v)", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "-n", "sh", "-c", setup, self)
	cmd.Env = append(os.Environ(), netnsEnv+"=1", builtBinEnv+"="+hallwayBin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in a network namespace: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+t.Name()+" ") {
		t.Fatalf("in a network namespace, %s did not run:\n%s", t.Name(), out)
	}
	t.Logf("in a network namespace:\n%s", out)
}
