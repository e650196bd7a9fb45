//go:build linux

// Command hallway-load loads a Hallway server over loopback and reports what
// its clients received and what it cost the server. It starts the server as
// a process of its own (this tree's, built with go build, or -server), pins
// it to a core, connects thousands of real WebSocket clients, and reads the
// server's CPU and memory from /proc. Figures print as text, or with -json
// as one JSON object per workload. docs/performance.md shows how to run it
// and what the figures on record were.
//
//	go run ./cmd/hallway-load -workload burst,steady
//	taskset -c 1 go run ./cmd/hallway-load -workload all
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"hallway/internal/loadgen"
)

func main() {
	if loadgen.ServeFloor() {
		return
	}
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hallway-load:", err)
		os.Exit(1)
	}
}

// run parses args, runs each workload named by -workload in turn and writes
// what they measured to out. It fails if any workload failed.
func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("hallway-load", flag.ContinueOnError)
	o := loadgen.Defaults()
	workloads := fs.String("workload", "burst", "workloads to run: comma-separated "+strings.Join(loadgen.Names, ",")+", or all")
	asJSON := fs.Bool("json", false, "print one JSON object per workload instead of text")
	fs.StringVar(&o.URL, "url", "", "base URL of a running server, e.g. http://127.0.0.1:8080; empty starts a server process per workload")
	fs.BoolVar(&o.Remote, "remote", false, "allow -url to name a non-loopback host; point it only at your own deployment")
	fs.StringVar(&o.Server, "server", "", "server binary to start (e.g. hallway built from another commit); empty builds this tree's server with go build")
	fs.IntVar(&o.ServerCPU, "servercpu", o.ServerCPU, "core to pin started servers to with taskset -c; -1 does not pin")
	fs.IntVar(&o.Clients, "clients", o.Clients, "members of the room (burst, steady)")
	fs.IntVar(&o.Senders, "senders", o.Senders, "members who send (burst, steady)")
	fs.IntVar(&o.Messages, "messages", o.Messages, "messages each sender sends at full speed (burst)")
	fs.Float64Var(&o.Rate, "rate", o.Rate, "messages per second per sender (steady)")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "how long senders send (steady, rooms)")
	fs.IntVar(&o.RoomsClients, "rooms.clients", o.RoomsClients, "members in all (rooms)")
	fs.IntVar(&o.RoomSize, "rooms.size", o.RoomSize, "members of each room (rooms)")
	fs.Float64Var(&o.RoomRate, "rooms.rate", o.RoomRate, "messages per second in each room (rooms)")
	fs.IntVar(&o.Idle, "idle", o.Idle, "idle connections to open (idle)")
	fs.IntVar(&o.Starts, "starts", o.Starts, "server starts to time (startup)")
	fs.IntVar(&o.Dials, "dials", o.Dials, "handshakes in flight at once while members join")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "bound on each workload")
	fs.BoolVar(&o.CheckOrder, "checkorder", false, "burst: require every member to receive the same messages in one order")
	floor := fs.Bool("floor", true, "after burst, steady and rooms, measure the machine's floor for the same traffic and print the ratio to it")
	fs.BoolVar(&o.RelayFloor, "relayfloor", false, "with -floor, also measure the relay floor, which reads each message over TCP before writing it out, and print the ratio to it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	names, err := loadgen.ParseWorkloads(*workloads)
	if err != nil {
		return err
	}
	if o.URL == "" && o.Server == "" {
		dir, err := os.MkdirTemp("", "hallway-load")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if o.Server, err = buildServer(dir); err != nil {
			return err
		}
	}
	if *floor {
		if o.FloorExe, err = os.Executable(); err != nil {
			return err
		}
	}
	if err := loadgen.SetOptions(o); err != nil {
		return err
	}
	setup := &workloadRun{name: "setup", out: out, text: !*asJSON}
	if err := loadgen.RaiseFileLimit(); err != nil {
		return err
	}
	loadgen.LogSetup(setup)
	var failed []string
	for _, name := range names {
		r := &workloadRun{name: name, out: out, text: !*asJSON, Figures: map[string]any{}}
		r.run(func(tb *workloadRun) { loadgen.Run(context.Background(), name, tb) })
		if *asJSON {
			if err := json.NewEncoder(out).Encode(r); err != nil {
				return err
			}
		}
		if r.Failed {
			failed = append(failed, name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// buildServer builds this module's server into dir and returns its path.
// The flags are a release's, so that the figures are a release's.
func buildServer(dir string) (string, error) {
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("find this tree's server to build (run from the repository, or give -server): %w", err)
	}
	bin := filepath.Join(dir, "hallway")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = strings.TrimSpace(string(root))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", errors.Join(fmt.Errorf("go build: %w", err), errors.New(string(out)))
	}
	return bin, nil
}
