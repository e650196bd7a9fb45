package main

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// This test checks the Fly.io recipe for the built-in TURN relay in
// docs/calls.md: it decodes strictly, its settings load, and its UDP
// services publish the relay's port and relayed range. fly.toml itself is
// checked in fly_test.go.

// flyCallsRecipe is the part of fly.toml that docs/calls.md adds for the
// built-in TURN relay.
type flyCallsRecipe struct {
	Env      map[string]string `toml:"env"`
	Services []struct {
		Protocol     string `toml:"protocol"`
		InternalPort int    `toml:"internal_port"`
		Ports        []struct {
			Port      int `toml:"port"`
			StartPort int `toml:"start_port"`
			EndPort   int `toml:"end_port"`
		} `toml:"ports"`
	} `toml:"services"`
}

// TestFlyCallsRecipe checks what can be checked here of the Fly.io recipe
// in docs/calls.md: it decodes strictly, its settings load, UDP binds
// fly-global-services, and the UDP services publish the relay's port on
// the same port and exactly the relayed range. Whether Fly.io accepts it
// was not verified: flyctl is not available here.
func TestFlyCallsRecipe(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("docs/calls.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) != 1 {
		t.Fatalf("docs/calls.md has %d toml blocks, want the Fly.io recipe alone", len(blocks))
	}
	var r flyCallsRecipe
	if err := toml.NewDecoder(bytes.NewReader(blocks[0][1])).DisallowUnknownFields().Decode(&r); err != nil {
		t.Fatalf("decode the recipe: %v", err)
	}
	env := map[string]string{"TURN_PUBLIC_IP": "203.0.113.7"} // the dedicated IPv4, set by the operator
	for k, v := range r.Env {
		env[k] = v
	}
	cfg, err := loadConfig(env)
	if err != nil {
		t.Fatalf("the recipe's settings do not load: %v", err)
	}
	if cfg.TURNBind != "fly-global-services" {
		t.Errorf("TURN_BIND = %q; Fly.io delivers UDP only to fly-global-services", cfg.TURNBind)
	}
	first, last, _ := parsePortRange(cfg.TURNRelayPorts)
	var turnPort, relayRange bool
	for _, s := range r.Services {
		if s.Protocol != "udp" {
			t.Errorf("service on %d is %q, want udp", s.InternalPort, s.Protocol)
		}
		for _, p := range s.Ports {
			switch {
			case p.Port == cfg.TURNPort && s.InternalPort == cfg.TURNPort:
				turnPort = true // Fly.io rewrites only the address of UDP packets, never the port.
			case p.StartPort == int(first) && p.EndPort == int(last) && s.InternalPort == int(first):
				relayRange = true
			default:
				t.Errorf("unexpected port %+v on internal port %d", p, s.InternalPort)
			}
		}
	}
	if !turnPort || !relayRange {
		t.Errorf("services publish TURN_PORT %d: %v, TURN_RELAY_PORTS %s: %v", cfg.TURNPort, turnPort, strconv.Quote(cfg.TURNRelayPorts), relayRange)
	}
}
