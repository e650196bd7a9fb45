// Command hallway is a privacy-first, ephemeral group chat server: one binary
// with its web UI embedded, rooms and history kept only in memory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caarlos0/env/v11"
)

// config is every setting Hallway has; each field is one environment variable.
type config struct {
	// Port is the TCP port to listen on. Defaults to 8080.
	Port int `env:"PORT" envDefault:"8080" help:"TCP port to listen on"`
	// Host is the address to listen on. Empty, the default, means every
	// interface; 127.0.0.1 keeps the server behind a local reverse proxy.
	Host string `env:"HOST" help:"address to listen on; empty for every interface, 127.0.0.1 behind a reverse proxy"`
	// Environment is "development" or "production". Defaults to development.
	Environment string `env:"ENVIRONMENT" envDefault:"development" help:"development (text logs, localhost origins allowed) or production (JSON logs)"`
	// AllowedOrigins lists extra browser origins (scheme://host[:port]) allowed
	// to open WebSockets and call /api. Same-origin is always allowed.
	AllowedOrigins []string `env:"ALLOWED_ORIGINS" envSeparator:"," help:"comma-separated extra origins allowed for WebSockets and CORS, e.g. https://chat.example.com"`
	// HistorySize is how many recent messages a room keeps for newcomers.
	// Defaults to 100; 0 keeps none.
	HistorySize int `env:"HISTORY_SIZE" envDefault:"100" help:"messages a room replays to newcomers; 0 keeps none"`
	// SendBuffer is how many frames may wait for a slow client before it is
	// disconnected. Defaults to 256.
	SendBuffer int `env:"SEND_BUFFER" envDefault:"256" help:"frames queued for one client before it is cut off as too slow"`
	// SendBufferBytes is how many bytes of frames may wait for a slow client
	// before it is disconnected; a newcomer's history replay comes on top.
	// Defaults to 1 MiB.
	SendBufferBytes byteSize `env:"SEND_BUFFER_BYTES" envDefault:"1MiB" help:"bytes queued for one client before it is cut off as too slow; a newcomer's history replay comes on top"`
	// RoomIdleTimeout is how long an empty room (and its history) survives.
	// Defaults to 5m.
	RoomIdleTimeout time.Duration `env:"ROOM_IDLE_TIMEOUT" envDefault:"5m" help:"how long an empty room keeps its history before it is destroyed"`
	// MaxRooms caps the number of rooms. Defaults to 10000.
	MaxRooms int `env:"MAX_ROOMS" envDefault:"10000" help:"most rooms at once"`
	// MaxRoomClients caps the members of one room. Defaults to 1000.
	MaxRoomClients int `env:"MAX_ROOM_CLIENTS" envDefault:"1000" help:"most members in one room"`
	// MaxClients caps WebSocket connections server-wide. Defaults to 10000.
	MaxClients int `env:"MAX_CLIENTS" envDefault:"10000" help:"most WebSocket connections at once"`
	// MaxMessageBytes is the longest message text in UTF-8 bytes. Defaults to 4096.
	MaxMessageBytes int `env:"MAX_MESSAGE_BYTES" envDefault:"4096" help:"longest chat message, in UTF-8 bytes of text"`
	// MessageRate is the sustained messages per second one connection may send.
	// Defaults to 5; 0 disables flood control.
	MessageRate float64 `env:"MESSAGE_RATE" envDefault:"5" help:"messages per second per connection; 0 disables flood control"`
	// MessageBurst is how many messages may be sent at once above MessageRate.
	// Defaults to 10.
	MessageBurst int `env:"MESSAGE_BURST" envDefault:"10" help:"messages a connection may send in a burst"`
	// RoomCreateRate is how many new rooms one IP address may start per
	// minute, through POST /api/rooms or by joining a name no room has yet.
	// Defaults to 10; 0 disables the limit.
	RoomCreateRate float64 `env:"ROOM_CREATE_RATE" envDefault:"10" help:"new rooms one client IP may start per minute, created or joined by a new name; 0 disables the limit"`
	// JoinRate is how many WebSocket joins one IP address may make per
	// minute. Defaults to 120; 0 disables the limit.
	JoinRate float64 `env:"JOIN_RATE" envDefault:"120" help:"WebSocket joins one client IP may make per minute; 0 disables the limit"`
	// MaxConnsPerIP caps the WebSocket connections of one client IP, enough
	// for an office behind one NAT address. Defaults to 200; 0 disables it.
	MaxConnsPerIP int `env:"MAX_CONNS_PER_IP" envDefault:"200" help:"most WebSocket connections from one client IP; 0 disables the cap"`
	// IPv6Prefix is how many leading bits of an IPv6 address name one client
	// for the per-client limits: one visitor holds a whole /64. IPv4
	// addresses count alone. Defaults to 64; 48 to 128.
	IPv6Prefix int `env:"IPV6_PREFIX" envDefault:"64" help:"leading bits of an IPv6 address that per-client limits count as one client (48..128); IPv4 counts each address"`
	// HistoryBytes caps one room's history in encoded bytes. Defaults to 256KiB.
	HistoryBytes byteSize `env:"HISTORY_BYTES" envDefault:"256KiB" help:"most bytes of history one room keeps; the oldest messages give way"`
	// HistoryTotalBytes caps the history of all rooms together; past it, the
	// least recently active rooms lose their oldest history first. Defaults
	// to a quarter of MEMORY_LIMIT, at most 64MiB; 64MiB without a limit.
	HistoryTotalBytes byteSize `env:"HISTORY_TOTAL_BYTES" help:"most bytes of history across all rooms; default a quarter of MEMORY_LIMIT, at most 64MiB"`
	// MemoryLimit is the Go runtime's soft memory limit. Defaults to
	// GOMEMLIMIT if set, else 90% of the cgroup's memory limit, else none.
	MemoryLimit byteSize `env:"MEMORY_LIMIT" help:"soft memory limit, e.g. 200MiB; default GOMEMLIMIT, else 90% of the cgroup memory limit, else none"`
	// ClientIPHeader names a header set by a trusted proxy that carries the
	// client's IP (e.g. Fly-Client-IP). Empty uses the connection's address.
	ClientIPHeader string `env:"CLIENT_IP_HEADER" help:"header a trusted proxy sets to the client IP, e.g. Fly-Client-IP; empty uses the peer address"`
	// PingInterval is how often idle peers are pinged; a peer that does not
	// answer within PingInterval is dropped. Defaults to 25s.
	PingInterval time.Duration `env:"PING_INTERVAL" envDefault:"25s" help:"how often connections are pinged; no pong within the same time drops them"`
	// WriteTimeout bounds every WebSocket write. Defaults to 10s.
	WriteTimeout time.Duration `env:"WRITE_TIMEOUT" envDefault:"10s" help:"deadline for each WebSocket write"`
	// ShutdownTimeout bounds the graceful shutdown. Defaults to 4s, inside
	// Fly.io's default kill timeout of 5s.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"4s" help:"time allowed for closing connections on SIGINT/SIGTERM"`
	// FlyMachineID is this machine's ID, set by Fly.io. With FlyAppName it
	// routes every room to one machine. Defaults to empty (one machine).
	FlyMachineID string `env:"FLY_MACHINE_ID" help:"set by Fly.io: this machine's ID; with FLY_APP_NAME, each room lives on one machine"`
	// FlyAppName is the app's name, set by Fly.io. Defaults to empty.
	FlyAppName string `env:"FLY_APP_NAME" help:"set by Fly.io: the app whose machines share the rooms"`
	// FleetRefresh is how often the machine list is reread on Fly.io.
	// Defaults to 5s.
	FleetRefresh time.Duration `env:"FLEET_REFRESH" envDefault:"5s" help:"how often the app's machine list is reread on Fly.io"`
	// IdleExit ends the process after this long with no rooms and no
	// connections, so a platform can stop the machine. Defaults to 0 (never).
	IdleExit time.Duration `env:"IDLE_EXIT" envDefault:"0s" help:"exit after this long with no rooms or connections; 0 never exits"`
	// FileMaxBytes caps one shared file. Defaults to 10MiB (less when the
	// room budget is smaller); 0 turns file sharing off.
	FileMaxBytes byteSize `env:"FILE_MAX_BYTES" help:"largest file one may share in a room; default 10MiB, 0 turns files off"`
	// FileRoomBytes caps the files one room holds. Defaults to 64MiB, at
	// most FILE_TOTAL_BYTES.
	FileRoomBytes byteSize `env:"FILE_ROOM_BYTES" help:"most bytes of files one room holds; the oldest give way; default 64MiB"`
	// FileTotalBytes caps the files of all rooms together. Defaults to half
	// of MEMORY_LIMIT, at most 256MiB; 256MiB without a limit.
	FileTotalBytes byteSize `env:"FILE_TOTAL_BYTES" help:"most bytes of files across all rooms; default half of MEMORY_LIMIT, at most 256MiB"`
	// FileUploadRate is how many files one IP address may upload per
	// minute. Defaults to 20; 0 disables the limit.
	FileUploadRate float64 `env:"FILE_UPLOAD_RATE" envDefault:"20" help:"files one client IP may upload per minute; 0 disables the limit"`
	// FileUploadTimeout bounds the reading of one upload's body, and the
	// writing of one download. Defaults to 2m.
	FileUploadTimeout time.Duration `env:"FILE_UPLOAD_TIMEOUT" envDefault:"2m" help:"time allowed to send one file's body, or to receive one download"`
	// TLSDomains turns on HTTPS with certificates from ACME_DIRECTORY for
	// these names, served on TLS_PORT beside plain HTTP on TLS_HTTP_PORT.
	// Defaults to empty: no TLS.
	TLSDomains []string `env:"TLS_DOMAINS" envSeparator:"," help:"comma-separated names to serve HTTPS for with automatic certificates, e.g. chat.example.com; empty serves plain HTTP on PORT"`
	// TLSEmail is the contact address given to the ACME CA. Defaults to empty.
	TLSEmail string `env:"TLS_EMAIL" help:"contact e-mail for the ACME account, told of expiring certificates"`
	// ACMEDirectory is the ACME CA's directory URL. Defaults to Let's Encrypt.
	ACMEDirectory string `env:"ACME_DIRECTORY" envDefault:"https://acme-v02.api.letsencrypt.org/directory" help:"ACME directory URL of the CA"`
	// TLSCacheDir keeps ACME account keys, certificate keys and certificates,
	// the only thing Hallway writes to disk; created 0700. Defaults to
	// /var/lib/hallway/certs.
	TLSCacheDir string `env:"TLS_CACHE_DIR" envDefault:"/var/lib/hallway/certs" help:"directory for ACME keys and certificates (never user data), created 0700"`
	// TLSCertFile and TLSKeyFile are the operator's own certificate chain
	// and key (PEM), instead of ACME; loaded again when they change or on
	// SIGHUP. Default to empty.
	TLSCertFile string `env:"TLS_CERT_FILE" help:"PEM certificate chain to serve instead of ACME; reloaded when changed or on SIGHUP"`
	// TLSKeyFile is TLSCertFile's private key.
	TLSKeyFile string `env:"TLS_KEY_FILE" help:"PEM private key of TLS_CERT_FILE"`
	// TLSPort is the HTTPS port when TLS is on. Defaults to 443.
	TLSPort int `env:"TLS_PORT" envDefault:"443" help:"HTTPS port when TLS is on"`
	// TLSHTTPPort is the plain-HTTP port when TLS is on: ACME challenges,
	// /healthz and a redirect to https. Defaults to 80.
	TLSHTTPPort int `env:"TLS_HTTP_PORT" envDefault:"80" help:"plain-HTTP port when TLS is on: ACME challenges, /healthz, redirect to https"`
	// HostGrace is how long a created room waits for a host who left
	// before the role passes to the member present longest, and how long a
	// member who left may come back into a locked or knocking room with its
	// rejoin secret. Defaults to 30s.
	HostGrace time.Duration `env:"HOST_GRACE" envDefault:"30s" help:"how long a room waits for its host to come back before the role passes on, and a member who left may come back into a locked room"`
	// MetricsAddr is where GET /metrics is served, apart from the public
	// port, e.g. 127.0.0.1:9091. Defaults to empty: no metrics served.
	MetricsAddr string `env:"METRICS_ADDR" help:"host:port serving GET /metrics apart from PORT; empty serves none"`
	// CallMax caps the members of one room's call. Every member of a mesh
	// call uploads its media once per other member, so six is about what a
	// home uplink carries with video on. Defaults to 6; 0 turns calls off.
	CallMax int `env:"CALL_MAX" envDefault:"6" help:"most people in one room's call (a mesh: each uploads to every other); 0 turns calls off"`
	// TURNPort is the UDP port of the built-in STUN/TURN relay. Defaults to
	// 0: no relay.
	TURNPort int `env:"TURN_PORT" envDefault:"0" help:"UDP port of the built-in STUN/TURN relay; 0 runs none"`
	// TURNTCPPort is a TCP port for TURN too, for networks that block UDP.
	// Defaults to 0: UDP only.
	TURNTCPPort int `env:"TURN_TCP_PORT" envDefault:"0" help:"TCP port of the built-in TURN relay, for networks that block UDP; 0 offers none"`
	// TURNPublicIP is the relay's address as the internet sees it, given to
	// pages and in relay candidates. Required with TURN_PORT.
	TURNPublicIP string `env:"TURN_PUBLIC_IP" help:"the relay's public IP address; required with TURN_PORT"`
	// TURNBind is the address the relay's sockets bind. Defaults to
	// 0.0.0.0; on Fly.io, fly-global-services.
	TURNBind string `env:"TURN_BIND" envDefault:"0.0.0.0" help:"address the relay's sockets bind; fly-global-services on Fly.io"`
	// TURNRelayPorts is the UDP port range of relayed addresses. Defaults
	// to 49152-65535.
	TURNRelayPorts string `env:"TURN_RELAY_PORTS" envDefault:"49152-65535" help:"UDP port range of relayed addresses, first-last"`
	// TURNSecret signs TURN credentials (coturn's use-auth-secret). Defaults
	// to a random secret per process; set it when several relays share it.
	TURNSecret string `env:"TURN_SECRET" help:"shared secret of TURN REST credentials (coturn use-auth-secret); default random per process"`
	// TURNCredentialTTL is how long a member's TURN credentials allow new
	// allocations and refreshes. Defaults to 2h.
	TURNCredentialTTL time.Duration `env:"TURN_CREDENTIAL_TTL" envDefault:"2h" help:"lifetime of the TURN credentials a member gets"`
	// TURNAllocationsPerIP caps the relay allocations of one client IP.
	// Defaults to 20: each peer connection of a six-person call takes one
	// or two.
	TURNAllocationsPerIP int `env:"TURN_ALLOCATIONS_PER_IP" envDefault:"20" help:"most TURN allocations held by one client IP"`
	// TURNBandwidth caps the bytes per second one allocation relays, both
	// ways together. Defaults to 512KiB (about 4 Mbit/s).
	TURNBandwidth byteSize `env:"TURN_BANDWIDTH" envDefault:"512KiB" help:"most bytes a second one TURN allocation relays"`
	// ICEServers is a JSON array of RTCIceServer objects handed to pages,
	// e.g. an operator's coturn; turn: entries without a username get TURN
	// REST credentials signed with TURN_SECRET. Defaults to none.
	ICEServers string `env:"ICE_SERVERS" help:"JSON array of extra ICE servers (RTCIceServer) for pages, e.g. an operator's coturn"`
}

// loadConfig reads the configuration from environ (os.Environ when nil) and
// checks it; an error names the variable that is wrong.
func loadConfig(environ map[string]string) (config, error) {
	cfg := config{FileMaxBytes: -1} // -1 until FILE_MAX_BYTES is read: unset
	opts := env.Options{Environment: environ}
	if err := env.ParseWithOptions(&cfg, opts); err != nil {
		return cfg, explainEnvError(err)
	}
	cfg.Environment = strings.ToLower(strings.TrimSpace(cfg.Environment))
	cfg.resolveMemory(runtimeMemoryLimit(), cgroupMemoryLimit())
	cfg.resolveFiles()
	return cfg, cfg.validate()
}

// explainEnvError rewrites the parser's field names into variable names, so
// "PORT=80a" reports PORT rather than the Go field.
func explainEnvError(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	var msgs []string
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			f, _ := reflect.TypeFor[config]().FieldByName(pe.Name)
			msgs = append(msgs, fmt.Sprintf("invalid %s: %v", f.Tag.Get("env"), pe.Err))
			continue
		}
		msgs = append(msgs, e.Error())
	}
	return errors.New(strings.Join(msgs, "; "))
}

// validate rejects values that parse but make no sense.
func (c config) validate() error {
	var errs []error
	check := func(ok bool, name, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf("invalid %s: "+format, append([]any{name}, args...)...))
		}
	}
	check(c.Port >= 0 && c.Port <= 65535, "PORT", "%d is not a TCP port", c.Port)
	check(c.Host == "" || net.ParseIP(c.Host) != nil || validHostname(c.Host), "HOST", "%q is not an IP address or host name", c.Host)
	check(c.Environment == "development" || c.Environment == "production",
		"ENVIRONMENT", "%q is neither development nor production", c.Environment)
	for _, o := range c.AllowedOrigins {
		check(validOrigin(o), "ALLOWED_ORIGINS", "%q is not scheme://host[:port]", o)
	}
	check(c.HistorySize >= 0 && c.HistorySize <= 100000, "HISTORY_SIZE", "%d is not within 0..100000", c.HistorySize)
	check(c.SendBuffer > c.HistorySize+2, "SEND_BUFFER",
		"%d must exceed HISTORY_SIZE+2 (%d) so a newcomer's replay fits its queue", c.SendBuffer, c.HistorySize+2)
	check(int(c.SendBufferBytes) >= max(minSendBufferBytes, maxFrameBytes(c.MaxMessageBytes)), "SEND_BUFFER_BYTES",
		"%v must hold 64KiB and the largest frame, %d bytes for MAX_MESSAGE_BYTES", c.SendBufferBytes, maxFrameBytes(c.MaxMessageBytes))
	check(c.RoomIdleTimeout >= 0, "ROOM_IDLE_TIMEOUT", "%v is negative", c.RoomIdleTimeout)
	check(c.MaxRooms >= 1, "MAX_ROOMS", "%d must be at least 1", c.MaxRooms)
	check(c.MaxRoomClients >= 2, "MAX_ROOM_CLIENTS", "%d must be at least 2", c.MaxRoomClients)
	check(c.MaxClients >= 1, "MAX_CLIENTS", "%d must be at least 1", c.MaxClients)
	check(c.MaxMessageBytes >= 1 && c.MaxMessageBytes <= 1<<20, "MAX_MESSAGE_BYTES", "%d is not within 1..1048576", c.MaxMessageBytes)
	check(c.MessageRate >= 0, "MESSAGE_RATE", "%v is negative", c.MessageRate)
	check(c.MessageBurst >= 1, "MESSAGE_BURST", "%d must be at least 1", c.MessageBurst)
	check(c.RoomCreateRate >= 0, "ROOM_CREATE_RATE", "%v is negative", c.RoomCreateRate)
	check(c.JoinRate >= 0, "JOIN_RATE", "%v is negative", c.JoinRate)
	check(c.MaxConnsPerIP >= 0, "MAX_CONNS_PER_IP", "%d is negative", c.MaxConnsPerIP)
	check(c.IPv6Prefix >= 48 && c.IPv6Prefix <= 128, "IPV6_PREFIX", "%d is not within 48..128", c.IPv6Prefix)
	// A frame is at most twice its text (see escapesLong) plus the envelope.
	check(int(c.HistoryBytes) >= maxFrameBytes(c.MaxMessageBytes), "HISTORY_BYTES",
		"%v must hold one message of MAX_MESSAGE_BYTES (%d bytes encoded)", c.HistoryBytes, maxFrameBytes(c.MaxMessageBytes))
	check(c.HistoryTotalBytes >= c.HistoryBytes, "HISTORY_TOTAL_BYTES",
		"%v must be at least HISTORY_BYTES (%v)", c.HistoryTotalBytes, c.HistoryBytes)
	errs = append(errs, c.validateFiles()...)
	check(c.MemoryLimit == 0 || c.MemoryLimit >= 16<<20, "MEMORY_LIMIT", "%v is below 16MiB", c.MemoryLimit)
	check(c.PingInterval > 0, "PING_INTERVAL", "%v must be positive", c.PingInterval)
	check(c.WriteTimeout > 0, "WRITE_TIMEOUT", "%v must be positive", c.WriteTimeout)
	check(c.ShutdownTimeout > 0, "SHUTDOWN_TIMEOUT", "%v must be positive", c.ShutdownTimeout)
	check(c.FlyMachineID == "" || validMachineID(c.FlyMachineID), "FLY_MACHINE_ID", "%q is not 1–40 of a-z and 0-9", c.FlyMachineID)
	check(c.FleetRefresh > 0, "FLEET_REFRESH", "%v must be positive", c.FleetRefresh)
	check(c.IdleExit >= 0, "IDLE_EXIT", "%v is negative", c.IdleExit)
	check(c.MetricsAddr == "" || validAddr(c.MetricsAddr), "METRICS_ADDR", "%q is not host:port", c.MetricsAddr)
	errs = append(errs, c.validateTLS()...)
	errs = append(errs, c.validateCalls()...)
	return errors.Join(errs...)
}

// validHostname reports whether h could name a host: letters, digits, dots
// and hyphens, as in "localhost".
func validHostname(h string) bool {
	return len(h) <= 253 && strings.Trim(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == ""
}

// usage prints the flags and every environment variable with its default.
func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: hallway [-version]\n\nHallway is configured by environment variables only:\n\n")
	t := reflect.TypeFor[config]()
	for i := range t.NumField() {
		f := t.Field(i)
		def := f.Tag.Get("envDefault")
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "  %-18s %s (default %s)\n", f.Tag.Get("env"), f.Tag.Get("help"), def)
	}
}

// version reports the module version and VCS revision baked in by go build.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "hallway (unknown version)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return fmt.Sprintf("hallway %s %s", v, info.GoVersion)
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hallway:", err)
		os.Exit(1)
	}
}

// run parses flags and configuration, serves until a shutdown signal, and
// returns the first error worth reporting.
func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("hallway", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() { usage(stdout) }
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *showVersion {
		fmt.Fprintln(stdout, version())
		return writeStaticHashes(stdout)
	}
	cfg, err := loadConfig(nil)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, os.Stderr)
	applyMemoryLimit(cfg)
	ctx, stop := shutdownContext(context.Background())
	defer stop()
	if cfg.tlsOn() {
		return runTLS(ctx, cfg, logger)
	}
	l, err := listen(net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return err
	}
	return serve(ctx, l, cfg, logger)
}

// newLogger logs text for people in development and JSON in production.
func newLogger(cfg config, w io.Writer) *slog.Logger {
	if cfg.Environment == "production" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// serve runs the HTTP server on l, and each door beside it, until ctx ends,
// then closes every WebSocket with 1001 and waits up to ShutdownTimeout for
// writers to flush.
func serve(ctx context.Context, l net.Listener, cfg config, logger *slog.Logger, doors ...*httpDoor) error {
	srv := newServer(cfg, logger)
	ctx, stopFleet := srv.runFleet(ctx)
	defer stopFleet()
	if err := srv.listenMetrics(ctx); err != nil {
		return err
	}
	if err := srv.relay.start(ctx); err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second, // WebSockets clear these deadlines once hijacked.
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(handshakeFilter{logger.Handler()}, slog.LevelWarn),
	}
	errc := make(chan error, 1+len(doors))
	go func() { errc <- hs.Serve(l) }()
	logger.Info("listening", "addr", l.Addr().String(), "environment", cfg.Environment, "tls", cfg.tlsOn())
	servers := []*http.Server{hs}
	for _, d := range doors {
		ds := &http.Server{Handler: d.handler(hs.Handler), ReadHeaderTimeout: hs.ReadHeaderTimeout, ReadTimeout: hs.ReadTimeout,
			WriteTimeout: hs.WriteTimeout, IdleTimeout: hs.IdleTimeout, MaxHeaderBytes: hs.MaxHeaderBytes, ErrorLog: hs.ErrorLog}
		servers = append(servers, ds)
		go func() { errc <- ds.Serve(d.l) }()
		logger.Info("listening for plain HTTP", "addr", d.l.Addr().String())
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// All at once: WebSocket clients hear 1001 without waiting for slow
	// plain requests to finish.
	httpErrs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, hs := range servers {
		hs.SetKeepAlivesEnabled(false)
		wg.Go(func() { httpErrs[i] = hs.Shutdown(sctx) })
	}
	chatErr := srv.shutdown(sctx)
	wg.Wait()
	err := errors.Join(append(httpErrs, chatErr)...)
	logger.Info("stopped", "error", err)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil // Clients that did not finish in time were cut off; still a clean exit.
	}
	return err
}
