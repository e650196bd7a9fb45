//go:build linux

// It picks a port with loadgen.FreePort.

package main

import (
	"context"
	"fmt"
	"hallway/internal/chattest"
	"hallway/internal/loadgen"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"
)

// scrapeMetrics fetches GET /metrics from url and parses it.
func scrapeMetrics(t *testing.T, url string) ([]byte, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET %s = %d %q", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return body, parseMetrics(t, body)
}

func TestMetricsCountWithoutPrivateData(t *testing.T) {
	t.Parallel()
	port, err := loadgen.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg := testConfig(t, map[string]string{"METRICS_ADDR": "127.0.0.1:" + port})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, l, cfg, slog.New(slog.NewTextHandler(logs, nil))) }()
	t.Cleanup(func() { stop(); <-done })
	ts := &testServer{Server: &httptest.Server{URL: "http://" + l.Addr().String()}, logs: logs}
	metricsURL := "http://127.0.0.1:" + port + "/metrics"
	chattest.WaitUntil(t, testTimeout, "the metrics listener", func() string {
		if _, err := http.Get(metricsURL); err != nil {
			return err.Error()
		}
		return ""
	})

	_, fams := scrapeMetrics(t, metricsURL)
	for _, name := range []string{"hallway_messages_accepted_total", "hallway_deliveries_total", "hallway_replays_total"} {
		if v := metricValue(t, fams, name, "", ""); v != 0 {
			t.Errorf("%s starts at %v, want 0", name, v)
		}
	}
	if v := metricValue(t, fams, "hallway_build_info", "goversion", runtime.Version()); v != 1 {
		t.Errorf("hallway_build_info = %v, want 1", v)
	}
	if v := metricValue(t, fams, "hallway_cutoffs_total", "reason", "too_slow"); v != 0 {
		t.Errorf("too_slow cut-offs start at %v", v)
	}

	// Two people talk in a room whose name, their names and their words
	// must never reach the metrics.
	alice := ts.dial(t, "secret-room-xyz", "Zelda%20Secret")
	alice.welcome()
	bob := ts.dial(t, "secret-room-xyz", "Bob%20Hidden")
	bob.welcome()
	for range 3 {
		alice.say("very private text 42", "")
		if m := bob.nextMessage(); m.Message != "very private text 42" {
			t.Fatalf("bob got %+v", m)
		}
	}
	alice.sendRaw("not json") // an error frame: bad_message
	if e := skipUntil[errorPayload](alice, typeError); e.Code != codeBadMessage {
		t.Fatalf("got error %+v", e)
	}
	if code, _ := ts.refusal(t, "bad!room", "username=x", nil); code != http.StatusBadRequest {
		t.Fatalf("bad room answered %d", code)
	}
	carol := ts.dial(t, "other-room", "carol")
	carol.welcome()
	carol.conn.Write(context.Background(), websocket.MessageBinary, []byte{1})
	carol.closeStatus()

	var body []byte
	chattest.WaitUntil(t, testTimeout, "the counters to move", func() string {
		body, fams = scrapeMetrics(t, metricsURL)
		checks := []struct {
			family, label, value string
			want                 float64
		}{
			{"hallway_messages_accepted_total", "", "", 3},
			{"hallway_rooms", "", "", 2},
			{"hallway_connections", "", "", 2},
			{"hallway_refusals_total", "code", codeBadMessage, 1},
			{"hallway_refusals_total", "code", codeBadRoom, 1},
			{"hallway_cutoffs_total", "reason", "binary_frame", 1},
		}
		for _, c := range checks {
			if got := metricValue(t, fams, c.family, c.label, c.value); got != c.want {
				return fmt.Sprintf("%s{%s} is %v, want %v", c.family, c.value, got, c.want)
			}
		}
		// Each message reached both members, after welcomes, notices and counts.
		if got := metricValue(t, fams, "hallway_deliveries_total", "", ""); got < 3*2+4 {
			return "too few deliveries counted"
		}
		return ""
	})
	for _, private := range []string{"secret-room-xyz", "Zelda", "Bob Hidden", "Hidden", "very private", "other-room", "carol"} {
		if strings.Contains(string(body), private) {
			t.Errorf("the metrics contain %q:\n%s", private, body)
		}
	}

	// The public port has no /metrics.
	if resp := getJSON(t, httptestGet(ts, "/metrics"), nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("public GET /metrics = %d, want 404", resp.StatusCode)
	}
}
