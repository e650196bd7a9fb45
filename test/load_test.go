//go:build linux

package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
)

// This test runs cmd/hallway-load -json against this tree's server on a
// small burst and the idle measurement, so that the load tool keeps working
// as the server changes. It asserts nothing about speed.

// loadReport is one line of hallway-load -json: one workload's outcome.
type loadReport struct {
	Workload string         `json:"workload"`
	Failed   bool           `json:"failed"`
	Figures  map[string]any `json:"figures"`
	Log      []string       `json:"log"`
}

// TestLoadHarness runs the load tool as an operator would, in miniature,
// against this tree's server, so that the tool keeps working as the server
// changes: a small burst in which every member must see every message in
// one order, and its floor and relay floor, then the idle measurement. It asserts nothing about speed.
func TestLoadHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	t.Parallel()
	tool := filepath.Join(t.TempDir(), "hallway-load")
	if err := buildGo(repoFile("cmd/hallway-load"), tool, nil); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool, "-json", "-server", hallwayBin, "-workload", "burst,idle",
		"-clients", "20", "-senders", "2", "-messages", "20", "-checkorder", "-relayfloor", "-idle", "50", "-timeout", "1m")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hallway-load: %v\n%s\n%s", err, out, stderr.String())
	}
	reports := map[string]loadReport{}
	for sc := bufio.NewScanner(bytes.NewReader(out)); sc.Scan(); {
		var r loadReport
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("hallway-load printed %q: %v", sc.Text(), err)
		}
		reports[r.Workload] = r
		for _, line := range r.Log {
			t.Logf("%s: %s", r.Workload, line)
		}
	}
	burst, idle := reports["burst"], reports["idle"]
	if burst.Failed || idle.Failed {
		t.Fatalf("a workload failed: burst %v, idle %v", burst.Failed, idle.Failed)
	}
	// Every member, senders included, gets every message: 40 sent to 20.
	// The burst's floor carries the same 40 messages to 20 plain connections.
	if f := burst.Figures; f["floor_delivered"] != float64(800) || f["floor_expected"] != float64(800) {
		t.Errorf("the floor delivered %v of %v frames; want 800 of 800", f["floor_delivered"], f["floor_expected"])
	}
	// The relay floor reads each of them from a sender's connection first.
	if f := burst.Figures; f["relay_floor_delivered"] != float64(800) || f["relay_floor_expected"] != float64(800) {
		t.Errorf("the relay floor delivered %v of %v frames; want 800 of 800", f["relay_floor_delivered"], f["relay_floor_expected"])
	}
	if f := burst.Figures; f["delivered"] != float64(800) || f["expected"] != float64(800) || f["out_of_order"] != float64(0) {
		t.Errorf("burst delivered %v of %v, %v out of order; want 800 of 800 in order", f["delivered"], f["expected"], f["out_of_order"])
	}
	if f := burst.Figures; !(f["server_cpu_s"] != nil && f["server_peak_rss_bytes"].(float64) > 0 && f["server_rss_bytes"].(float64) > 0) {
		t.Errorf("server figures not read: %v", f)
	}
	if f := idle.Figures; f["counted"] != float64(50) || !(f["server_rss_before_bytes"].(float64) > 0) || !(f["server_rss_after_bytes"].(float64) > 0) {
		t.Errorf("idle: %v; want RSS read and 50 clients", f)
	}
}
