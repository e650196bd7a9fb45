// The Prometheus text exposition on METRICS_ADDR, written by hand to keep the
// binary small: counts only, never a room, a name or a message.

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// serverMetrics counts what a server does, for GET /metrics in the
// Prometheus text format. Counts only: no label ever holds a name, a room
// code or text, only the fixed reasons and codes listed here.
//
// The format is written here rather than by a library: the smallest
// maintained one (github.com/VictoriaMetrics/metrics) added 389,120 bytes to
// the stripped binary, more than its 7,000,000-byte budget had left.
type serverMetrics struct {
	s          *server // for the gauges
	build      string  // the build_info labels
	accepted   atomic.Uint64
	deliveries atomic.Uint64
	replays    atomic.Uint64
	cutOffs    map[string]*atomic.Uint64 // by close reason; read-only after start
	refusals   map[string]*atomic.Uint64 // by error code; read-only after start
	uploadsNo  map[string]*atomic.Uint64 // uploads refused, by error code; read-only after start
	host       hostCounts                // hosted rooms' events (host.go)

	callsStarted     atomic.Uint64 // calls whose first member joined
	callJoins        atomic.Uint64 // members who joined a call
	callsRelayed     atomic.Uint64 // calls in which a member took a TURN allocation
	callParticipants atomic.Int64  // members in a call now
}

// cutOffLabels names each close reason a member can be cut off with.
var cutOffLabels = map[string]string{
	reasonTooSlow:    "too_slow",
	reasonBinary:     "binary_frame",
	reasonAbuse:      "abuse",
	reasonPingFailed: "ping_timeout",
	reasonRestarting: "restarting",
	reasonRoomMoved:  "room_moved",
	reasonReplaced:   "replaced",
	reasonTooBig:     "too_big",
}

// reasonTooBig stands for the 1009 close the WebSocket library sends itself.
const reasonTooBig = "frame too big"

// refusalCodes are the error codes counted; any other counts as "other".
var refusalCodes = []string{
	codeRateLimited, codeTooManyConns, codeMessageTooLong, codeNotEncrypted, codeBadMessage, codeBadRoom, codeBadUsername,
	codeBadRequest, codeOriginNotAllowed, codeRoomFull, codeServerFull, codeShuttingDown,
	codeUpgradeRequired, codeNotFound, codeRoomMoving, codeFileTooLarge, codeNotMember, codeBadFile,
	codeUploadTimeout, codeStorageFull, codeFileGone,
	codeNotHost, codeNoSuchMember, codeNoSuchKnock, codeRoomLocked, codeKnockRefused, codeKnockFull,
	codeCallFull, codeNotInCall, codeBadRecipient, codeSignalTooLarge, "other",
}

// uploadRefusalCodes are the reasons an upload is refused, as counted.
var uploadRefusalCodes = []string{
	codeFileTooLarge, codeNotMember, codeBadFile, codeUploadTimeout, codeStorageFull, codeRateLimited,
	codeBadRoom, codeOriginNotAllowed, codeNotFound, "other",
}

// newServerMetrics makes every series of s, at zero, so a scrape shows them
// all from the start.
func newServerMetrics(s *server) *serverMetrics {
	m := &serverMetrics{
		s:         s,
		build:     buildInfoLabels(),
		cutOffs:   make(map[string]*atomic.Uint64),
		refusals:  make(map[string]*atomic.Uint64),
		uploadsNo: make(map[string]*atomic.Uint64),
	}
	for _, code := range uploadRefusalCodes {
		m.uploadsNo[code] = new(atomic.Uint64)
	}
	for reason := range cutOffLabels {
		m.cutOffs[reason] = new(atomic.Uint64)
	}
	for _, code := range refusalCodes {
		m.refusals[code] = new(atomic.Uint64)
	}
	return m
}

// buildInfoLabels labels hallway_build_info with the module version, VCS
// revision and Go version.
func buildInfoLabels() string {
	version, revision, goVersion := "unknown", "unknown", "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		version, goVersion = info.Main.Version, info.GoVersion
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	return "version=" + strconv.Quote(version) + ",revision=" + strconv.Quote(revision) + ",goversion=" + strconv.Quote(goVersion)
}

// writeTo writes every series in the Prometheus text format 0.0.4.
func (m *serverMetrics) writeTo(w io.Writer) {
	rooms, clients := m.s.stats()
	b := &bytes.Buffer{}
	family := func(name, typ, help string) { fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ) }
	family("hallway_rooms", "gauge", "Rooms on this server now.")
	fmt.Fprintf(b, "hallway_rooms %d\n", rooms)
	family("hallway_connections", "gauge", "WebSocket connections now, joined or joining.")
	fmt.Fprintf(b, "hallway_connections %d\n", clients)
	family("hallway_messages_accepted_total", "counter", "Chat messages accepted into a room.")
	fmt.Fprintf(b, "hallway_messages_accepted_total %d\n", m.accepted.Load())
	family("hallway_deliveries_total", "counter", "Frames queued for a member.")
	fmt.Fprintf(b, "hallway_deliveries_total %d\n", m.deliveries.Load())
	family("hallway_cutoffs_total", "counter", "Members cut off by the server, by reason.")
	for _, reason := range slices.Sorted(maps.Keys(cutOffLabels)) {
		fmt.Fprintf(b, "hallway_cutoffs_total{reason=%q} %d\n", cutOffLabels[reason], m.cutOffs[reason].Load())
	}
	family("hallway_refusals_total", "counter", "Requests and frames refused, by error code.")
	for _, code := range refusalCodes {
		fmt.Fprintf(b, "hallway_refusals_total{code=%q} %d\n", code, m.refusals[code].Load())
	}
	family("hallway_files", "gauge", "Files held in rooms now.")
	fmt.Fprintf(b, "hallway_files %d\n", m.s.files.count.Load())
	family("hallway_file_bytes", "gauge", "Bytes of files held in rooms now.")
	fmt.Fprintf(b, "hallway_file_bytes %d\n", m.s.files.held.Load())
	family("hallway_uploads_refused_total", "counter", "File uploads refused, by error code.")
	for _, code := range uploadRefusalCodes {
		fmt.Fprintf(b, "hallway_uploads_refused_total{code=%q} %d\n", code, m.uploadsNo[code].Load())
	}
	m.host.writeTo(b, family)
	family("hallway_replays_total", "counter", "Requests sent to the machine that owns their room.")
	fmt.Fprintf(b, "hallway_replays_total %d\n", m.replays.Load())
	m.writeCallMetrics(b)
	m.s.relay.writeMetrics(b)
	family("hallway_build_info", "gauge", "Always 1; the labels say which build this is.")
	fmt.Fprintf(b, "hallway_build_info{%s} 1\n", m.build)
	w.Write(b.Bytes())
}

// cutOff counts one member cut off with reason.
func (m *serverMetrics) cutOff(reason string) {
	if c := m.cutOffs[reason]; c != nil {
		c.Add(1)
	}
}

// connectionEnded counts the cut-offs a read loop ends with.
func (m *serverMetrics) connectionEnded(err error) {
	switch {
	case errors.Is(err, errBinaryFrame):
		m.cutOff(reasonBinary)
	case errors.Is(err, errAbuse):
		m.cutOff(reasonAbuse)
	case errors.Is(err, websocket.ErrMessageTooBig):
		m.cutOff(reasonTooBig)
	}
}

// refused counts one refusal with its error code.
func (m *serverMetrics) refused(code string) {
	c := m.refusals[code]
	if c == nil {
		c = m.refusals["other"]
	}
	c.Add(1)
}

// uploadRefused counts one refused upload with its error code.
func (m *serverMetrics) uploadRefused(code string) {
	c := m.uploadsNo[code]
	if c == nil {
		c = m.uploadsNo["other"]
	}
	c.Add(1)
}

// metricsHandler answers GET /metrics.
func (s *server) metricsHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	s.metrics.writeTo(w)
}

// refusalCounter is a ResponseWriter that counts the error answers written
// through it, so that writeError need not know the server.
type refusalCounter struct {
	http.ResponseWriter
	m *serverMetrics
}

// Unwrap gives http.ResponseController the connection, for hijacking.
func (rc refusalCounter) Unwrap() http.ResponseWriter { return rc.ResponseWriter }

// countRefusals wraps every response in a refusalCounter.
func (s *server) countRefusals(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(refusalCounter{w, s.metrics}, r)
	})
}

// noteRefusal counts code when w counts refusals.
func noteRefusal(w http.ResponseWriter, code string) {
	if rc, ok := w.(refusalCounter); ok {
		rc.m.refused(code)
	}
}

// listenMetrics serves GET /metrics on METRICS_ADDR, apart from the public
// listener, until ctx ends. Unset, nothing is served.
func (s *server) listenMetrics(ctx context.Context) error {
	if s.cfg.MetricsAddr == "" {
		return nil
	}
	l, err := net.Listen("tcp", s.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("METRICS_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", s.metricsHandler)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	go hs.Serve(l)
	s.log.Info("metrics listening", "addr", l.Addr().String())
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	return nil
}
