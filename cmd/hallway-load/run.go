//go:build linux

package main

import (
	"fmt"
	"io"
	"runtime"
	"sync"
)

// This file runs one workload as a test runs: workloadRun is the
// loadgen.TB it reports through, keeping its log lines and figures for the
// text or JSON output. Flags and output are in main.go.

// workloadRun is one workload's run: the loadgen.TB the workload reports
// through, as a test would, and what it reported. Fatal ends the workload's
// goroutine, as it ends a test's, and cleanups then run in reverse order.
type workloadRun struct {
	name string
	out  io.Writer // where text lines go
	text bool      // print log lines as they come; false keeps them for JSON

	mu       sync.Mutex
	cleanups []func()

	Workload string         `json:"workload"`
	Failed   bool           `json:"failed"`
	Skipped  bool           `json:"skipped,omitempty"`
	Figures  map[string]any `json:"figures"`
	Log      []string       `json:"log"`
}

// run runs fn in a goroutine of its own, so that Fatal can end it, then
// runs the cleanups.
func (r *workloadRun) run(fn func(*workloadRun)) {
	r.Workload = r.name
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer r.cleanup()
		fn(r)
	}()
	<-done
	if r.text {
		verdict := "ok"
		switch {
		case r.Failed:
			verdict = "FAIL"
		case r.Skipped:
			verdict = "skipped"
		}
		fmt.Fprintf(r.out, "--- %s: %s\n", verdict, r.name)
	}
}

// cleanup runs the registered cleanups, last first.
func (r *workloadRun) cleanup() {
	r.mu.Lock()
	fns := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// Helper does nothing: lines carry no file positions.
func (r *workloadRun) Helper() {}

// Logf records one line, and prints it in text mode.
func (r *workloadRun) Logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.Log = append(r.Log, line)
	r.mu.Unlock()
	if r.text {
		fmt.Fprintf(r.out, "%s: %s\n", r.name, line)
	}
}

// Errorf records a failure and goes on.
func (r *workloadRun) Errorf(format string, args ...any) {
	r.Logf("error: "+format, args...)
	r.mu.Lock()
	r.Failed = true
	r.mu.Unlock()
}

// Fatal records a failure and ends the workload.
func (r *workloadRun) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

// Fatalf records a failure and ends the workload.
func (r *workloadRun) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// Skip records why the workload did not run and ends it.
func (r *workloadRun) Skip(args ...any) {
	r.Logf("skipped: %s", fmt.Sprint(args...))
	r.mu.Lock()
	r.Skipped = true
	r.mu.Unlock()
	runtime.Goexit()
}

// Cleanup registers fn to run when the workload ends.
func (r *workloadRun) Cleanup(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, fn)
}

// Record keeps a named figure for JSON output.
func (r *workloadRun) Record(name string, value any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Figures != nil {
		r.Figures[name] = value
	}
}
