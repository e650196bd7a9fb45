package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// These tests decode fly.toml strictly and check it against the server:
// the build, port and service, health check, kill signal and timeout,
// autostop off with IDLE_EXIT set, [metrics] on METRICS_ADDR's port and
// the production environment.

// flyConfig models the part of fly.toml's schema that Hallway uses. Decoding
// is strict, so a misspelt or unsupported key fails the test instead of being
// ignored by the test and, silently, by Fly.
type flyConfig struct {
	App           string            `toml:"app"`
	PrimaryRegion string            `toml:"primary_region"` // Added by fly launch.
	KillSignal    string            `toml:"kill_signal"`
	KillTimeout   flyDuration       `toml:"kill_timeout"`
	Build         flyBuild          `toml:"build"`
	Env           map[string]string `toml:"env"`
	HTTPService   flyHTTPService    `toml:"http_service"`
	Metrics       flyMetrics        `toml:"metrics"`
	VM            []flyVM           `toml:"vm"`
}

// flyBuild is the [build] section: a buildpack build, no Dockerfile.
type flyBuild struct {
	Builder    string            `toml:"builder"`
	Buildpacks []string          `toml:"buildpacks"`
	Args       map[string]string `toml:"args"`
}

// flyHTTPService is the [http_service] section.
type flyHTTPService struct {
	InternalPort       int            `toml:"internal_port"`
	ForceHTTPS         bool           `toml:"force_https"`
	AutoStopMachines   string         `toml:"auto_stop_machines"`
	AutoStartMachines  bool           `toml:"auto_start_machines"`
	MinMachinesRunning int            `toml:"min_machines_running"`
	Processes          []string       `toml:"processes"` // Added by fly launch.
	Concurrency        flyConcurrency `toml:"concurrency"`
	Checks             []flyCheck     `toml:"checks"`
}

// flyConcurrency is [http_service.concurrency].
type flyConcurrency struct {
	Type      string `toml:"type"`
	SoftLimit int    `toml:"soft_limit"`
	HardLimit int    `toml:"hard_limit"`
}

// flyCheck is one [[http_service.checks]] entry.
type flyCheck struct {
	Method      string      `toml:"method"`
	Path        string      `toml:"path"`
	Interval    flyDuration `toml:"interval"`
	Timeout     flyDuration `toml:"timeout"`
	GracePeriod flyDuration `toml:"grace_period"`
}

// flyMetrics is the [metrics] section: where Fly's Prometheus scrapes.
type flyMetrics struct {
	Port int    `toml:"port"`
	Path string `toml:"path"`
}

// flyVM is one [[vm]] entry.
type flyVM struct {
	Size   string `toml:"size"`
	Memory string `toml:"memory"`
}

// flyDuration is a duration written as a string, such as "10s". (Fly also
// accepts bare integers of seconds; this file does not use them.)
type flyDuration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *flyDuration) UnmarshalText(b []byte) (err error) {
	d.Duration, err = time.ParseDuration(string(b))
	return err
}

// loadFlyConfig strictly decodes fly.toml from the module root.
func loadFlyConfig(t *testing.T) flyConfig {
	t.Helper()
	b, err := os.ReadFile("fly.toml")
	if err != nil {
		t.Fatal(err)
	}
	var fc flyConfig
	dec := toml.NewDecoder(bytes.NewReader(b)).DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		if se, ok := err.(*toml.StrictMissingError); ok {
			t.Fatalf("fly.toml has keys this test does not model:\n%s", se.String())
		}
		t.Fatalf("decode fly.toml: %v", err)
	}
	return fc
}

// defaultConfig is the server's configuration with no environment set.
func defaultConfig(t *testing.T) config {
	t.Helper()
	cfg, err := loadConfig(map[string]string{})
	if err != nil {
		t.Fatalf("default config: %v", err)
	}
	return cfg
}

// TestFlyBuild checks that fly deploy can build from a plain clone: a
// buildpack builder, the Go buildpack, the root package, stripped.
func TestFlyBuild(t *testing.T) {
	t.Parallel()
	fc := loadFlyConfig(t)
	if fc.Build.Builder == "" {
		t.Error("[build] builder is empty: fly deploy would need a Dockerfile")
	}
	if !slices.ContainsFunc(fc.Build.Buildpacks, func(bp string) bool { return strings.HasSuffix(bp, "paketobuildpacks/go") }) {
		t.Errorf("[build] buildpacks = %q, want the Paketo Go buildpack", fc.Build.Buildpacks)
	}
	if got := fc.Build.Args["BP_GO_TARGETS"]; got != "." {
		t.Errorf("BP_GO_TARGETS = %q, want \".\" (this module's main package)", got)
	}
	if got := strings.Fields(fc.Build.Args["BP_GO_BUILD_LDFLAGS"]); !slices.Contains(got, "-s") || !slices.Contains(got, "-w") {
		t.Errorf("BP_GO_BUILD_LDFLAGS = %q, want -s -w (stripped)", got)
	}
	if _, err := os.Stat("Dockerfile"); err == nil {
		t.Error("a Dockerfile exists: keep one way of building for Fly")
	}
}

// TestFlyService checks [http_service] against the server: the port it
// listens on by default, scale to zero, and connection limits it can hold.
func TestFlyService(t *testing.T) {
	t.Parallel()
	fc, cfg := loadFlyConfig(t), defaultConfig(t)
	hs := fc.HTTPService
	if hs.InternalPort != cfg.Port {
		t.Errorf("internal_port = %d, but the server listens on PORT %d by default", hs.InternalPort, cfg.Port)
	}
	if !hs.ForceHTTPS {
		t.Error("force_https is off")
	}
	// Autostop could stop a machine with live rooms when the region has
	// spare capacity; machines stop by exiting after IDLE_EXIT instead.
	if hs.AutoStopMachines != "off" || !hs.AutoStartMachines || hs.MinMachinesRunning != 0 {
		t.Errorf("auto_stop_machines = %q, auto_start_machines = %v, min_machines_running = %d; want off, true, 0 (scale to zero by IDLE_EXIT)",
			hs.AutoStopMachines, hs.AutoStartMachines, hs.MinMachinesRunning)
	}
	c := hs.Concurrency
	if c.Type != "connections" {
		t.Errorf("concurrency type = %q, want connections: a WebSocket is one long connection, not requests", c.Type)
	}
	if c.SoftLimit <= 0 || c.SoftLimit > c.HardLimit {
		t.Errorf("soft_limit = %d, hard_limit = %d; want 0 < soft <= hard", c.SoftLimit, c.HardLimit)
	}
	if c.HardLimit > cfg.MaxClients {
		t.Errorf("hard_limit = %d exceeds the server's MAX_CLIENTS default %d", c.HardLimit, cfg.MaxClients)
	}
	if len(fc.VM) != 1 || fc.VM[0].Size != "shared-cpu-1x" || fc.VM[0].Memory != "256mb" {
		t.Errorf("[[vm]] = %+v, want one shared-cpu-1x with 256mb", fc.VM)
	}
}

// TestFlyEnv checks that the [env] Fly sets is a valid production config.
func TestFlyEnv(t *testing.T) {
	t.Parallel()
	fc := loadFlyConfig(t)
	cfg, err := loadConfig(fc.Env)
	if err != nil {
		t.Fatalf("[env] does not load: %v", err)
	}
	if cfg.Environment != "production" {
		t.Errorf("ENVIRONMENT = %q, want production", cfg.Environment)
	}
	if cfg.ClientIPHeader != "Fly-Client-IP" {
		t.Errorf("CLIENT_IP_HEADER = %q, want Fly-Client-IP, the header Fly's proxy sets", cfg.ClientIPHeader)
	}
	// A VM has no cgroup limit to default from: the soft limit must be set,
	// below the VM's memory with room for the kernel.
	vm := int64(0)
	if len(fc.VM) == 1 {
		fmt.Sscanf(fc.VM[0].Memory, "%dmb", &vm)
	}
	if lim := int64(cfg.MemoryLimit); lim == 0 || lim > vm<<20*7/8 {
		t.Errorf("MEMORY_LIMIT = %v, want one set below 7/8 of the VM's %d MB", cfg.MemoryLimit, vm)
	}
	if cfg.IdleExit <= 0 {
		t.Errorf("IDLE_EXIT = %v: with autostop off, machines would never stop", cfg.IdleExit)
	}
}

// TestFlyMetrics checks that [metrics] scrapes the port METRICS_ADDR
// serves, a port no service publishes, and that the public port has no
// /metrics.
func TestFlyMetrics(t *testing.T) {
	t.Parallel()
	fc := loadFlyConfig(t)
	cfg, err := loadConfig(fc.Env)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(cfg.MetricsAddr, ":")
	if fc.Metrics.Path != "/metrics" || port != strconv.Itoa(fc.Metrics.Port) {
		t.Errorf("[metrics] = %+v, METRICS_ADDR = %q; want path /metrics on METRICS_ADDR's port", fc.Metrics, cfg.MetricsAddr)
	}
	if fc.Metrics.Port == fc.HTTPService.InternalPort {
		t.Errorf("[metrics] port %d is the public service's port", fc.Metrics.Port)
	}
	ts := setupTest(t, fc.Env)
	if resp := getJSON(t, httptestGet(ts, "/metrics"), nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("public GET /metrics = %d, want 404", resp.StatusCode)
	}
}

// TestFlyHealthCheck runs every configured check against the real handler
// with the production config, the way Fly's checker calls it.
func TestFlyHealthCheck(t *testing.T) {
	t.Parallel()
	fc := loadFlyConfig(t)
	cfg, err := loadConfig(fc.Env)
	if err != nil {
		t.Fatal(err)
	}
	if len(fc.HTTPService.Checks) == 0 {
		t.Fatal("no [[http_service.checks]]: Fly would route to a machine that cannot serve")
	}
	srv := newServer(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ts := httptest.NewServer(srv.handler())
	t.Cleanup(func() {
		ts.Close()
		srv.shutdown(context.Background())
	})
	for _, c := range fc.HTTPService.Checks {
		if c.Timeout.Duration <= 0 || c.Interval.Duration <= c.Timeout.Duration {
			t.Errorf("check %s: interval %v, timeout %v; want 0 < timeout < interval", c.Path, c.Interval, c.Timeout)
		}
		req, err := http.NewRequest(c.Method, ts.URL+c.Path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s = %d, want 200", c.Method, c.Path, resp.StatusCode)
		}
	}
}

// TestFlyShutdown checks that Fly's kill signal starts the server's graceful
// shutdown and that Fly waits longer than that shutdown may take.
func TestFlyShutdown(t *testing.T) {
	fc, cfg := loadFlyConfig(t), defaultConfig(t)
	sig, ok := map[string]os.Signal{"SIGINT": os.Interrupt, "SIGTERM": syscall.SIGTERM}[fc.KillSignal]
	if !ok {
		t.Fatalf("kill_signal = %q, want SIGINT or SIGTERM, which the server handles", fc.KillSignal)
	}
	if fc.KillTimeout.Duration <= cfg.ShutdownTimeout || fc.KillTimeout.Duration > 300*time.Second {
		t.Errorf("kill_timeout = %v, want more than SHUTDOWN_TIMEOUT %v and at most Fly's 300s",
			fc.KillTimeout, cfg.ShutdownTimeout)
	}

	// Deliver the signal for real: while shutdownContext is listening it is
	// caught, and the context must end.
	ctx, stop := shutdownContext(context.Background())
	defer stop()
	p, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(sig); err != nil {
		t.Skipf("cannot signal this process here: %v", err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not end shutdownContext", fc.KillSignal)
	}
}
