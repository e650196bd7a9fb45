package main

// Tests of configuration: errors that name the variable, -h and -version.

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestInvalidConfigNamesTheVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, value string }{
		{"PORT", "80a"},
		{"PORT", "70000"},
		{"HOST", "chat example"},
		{"ENVIRONMENT", "staging"},
		{"ALLOWED_ORIGINS", "chat.example.com"},
		{"HISTORY_SIZE", "-1"},
		{"SEND_BUFFER", "50"},          // smaller than the history replay
		{"SEND_BUFFER_BYTES", "30000"}, // under 64 KiB
		{"ROOM_IDLE_TIMEOUT", "soon"},
		{"MAX_ROOMS", "0"},
		{"MAX_MESSAGE_BYTES", "0"},
		{"MESSAGE_RATE", "fast"},
		{"MESSAGE_BURST", "0"},
		{"PING_INTERVAL", "0s"},
		{"MEMORY_LIMIT", "lots"},
		{"MEMORY_LIMIT", "1MiB"},
		{"HISTORY_BYTES", "-5"},
		{"HISTORY_BYTES", "1KiB"}, // less than one 4096-byte message
		{"HISTORY_TOTAL_BYTES", "100KiB"},
		{"MAX_CONNS_PER_IP", "-1"},
		{"JOIN_RATE", "often"},
	} {
		_, err := loadConfig(map[string]string{tc.name: tc.value})
		if err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s=%s: error %v, want one naming %s", tc.name, tc.value, err, tc.name)
		}
	}
	cfg := testConfig(t, map[string]string{"ENVIRONMENT": "Production", "ALLOWED_ORIGINS": "https://a.example,http://b.example:8080", "HOST": "127.0.0.1"})
	if cfg.Environment != "production" || len(cfg.AllowedOrigins) != 2 || cfg.Host != "127.0.0.1" {
		t.Fatalf("parsed %+v", cfg)
	}
}

func TestRunReportsBadEnvironment(t *testing.T) {
	t.Setenv("HISTORY_SIZE", "lots")
	err := run(nil, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "HISTORY_SIZE") {
		t.Fatalf("run = %v, want an error naming HISTORY_SIZE", err)
	}
}

func TestHelpListsVariables(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run([]string{"-h"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PORT", "(default 8080)", "ALLOWED_ORIGINS", "MESSAGE_RATE", "ROOM_IDLE_TIMEOUT", "(default 5m)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := run([]string{"-version"}, &out); err != nil || !strings.HasPrefix(out.String(), "hallway ") {
		t.Fatalf("-version printed %q, %v", out.String(), err)
	}
}
