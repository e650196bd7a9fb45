// The HTTP surface: routes, security headers, origin checks and CORS, room
// creation, the WebSocket handshake and its refusals, the client's IP, and the
// embedded page. What happens after the upgrade is client.go's and chat.go's.

package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// contentSecurityPolicy lets pages load only their own scripts, styles,
// images (and the blob: images the page makes of shared files), service
// worker and manifest, talk only to this server ('self' covers its ws: and
// wss:), and never be framed.
const contentSecurityPolicy = "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; " +
	"style-src 'self'; script-src 'self'; worker-src 'self'; manifest-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// handler routes every request. Each route is a standard ServeMux pattern.
func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthHandler)
	mux.HandleFunc("POST /api/rooms", s.createRoomHandler)
	mux.HandleFunc("OPTIONS /api/", s.preflightHandler)
	mux.HandleFunc("GET /ws/{room}", s.subscribeHandler)
	mux.HandleFunc("GET /r/{room}", s.roomPageHandler)
	mux.HandleFunc("POST /r/{room}/files", s.uploadHandler)
	mux.HandleFunc("GET /r/{room}/files/{id}", s.downloadHandler)
	mux.HandleFunc("GET /sw-build.js", s.workerBuildHandler)
	mux.HandleFunc("GET /manifest.webmanifest", s.manifestHandler)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { s.serveStatic(w, r, "index.html") })
	mux.HandleFunc("GET /{file...}", func(w http.ResponseWriter, r *http.Request) { s.serveStatic(w, r, r.PathValue("file")) })
	return securityHeaders(s.countRefusals(mux))
}

// securityHeaders sets the headers every response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer") // Room codes live in URLs.
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", hstsHeader)
		}
		next.ServeHTTP(w, r)
	})
}

// writeJSON answers with a JSON body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError answers with the JSON error body {"code","text"}.
func writeError(w http.ResponseWriter, status int, code, text string) {
	noteRefusal(w, code)
	writeJSON(w, status, errorPayload{Code: code, Text: text})
}

// healthHandler answers load balancers cheaply, with counts only.
func (s *server) healthHandler(w http.ResponseWriter, r *http.Request) {
	rooms, clients := s.stats()
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "rooms": rooms, "clients": clients})
}

// subscribeHandler validates a join, refusing before the upgrade with a JSON
// error, then upgrades and runs the connection until it ends.
func (s *server) subscribeHandler(w http.ResponseWriter, r *http.Request) {
	name, ok := normalizeRoom(r.PathValue("room"))
	if !ok {
		writeError(w, http.StatusBadRequest, codeBadRoom, "room names are 1–64 characters of a-z, 0-9, _ and -")
		return
	}
	if s.route(w, r, name) {
		return
	}
	username, err := normalizeUsername(r.URL.Query().Get("username"), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadUsername, err.Error())
		return
	}
	if !s.originAllowed(r) {
		writeError(w, http.StatusForbidden, codeOriginNotAllowed, "this origin may not open WebSockets here")
		return
	}
	from, err := parseResume(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	ip := s.clientKey(r)
	if !isWebSocketUpgrade(r) {
		// A plain GET learns why a handshake would fail, which a browser's
		// WebSocket API cannot tell it.
		if err := s.check(name, ip, from.rejoin); err != nil {
			writeReserveError(w, err)
			return
		}
		writeError(w, http.StatusUpgradeRequired, codeUpgradeRequired, "this endpoint speaks WebSocket")
		return
	}
	rm, claimed, err := s.reserve(name, ip, from.rejoin)
	if err != nil {
		writeReserveError(w, err)
		return
	}
	// The origin was checked above against ALLOWED_ORIGINS and same-origin.
	sock := new(socketWriter)
	conn, err := websocket.Accept(smallBuffers{w, sock}, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		s.unreserve(rm, ip, claimed)
		return
	}
	c := s.newClient(conn, sock, rm, r.URL.Query().Get("batch") == "1")
	c.ip = ip
	s.join(c, username, from)
	go s.serveClient(c)
}

// writeReserveError maps reserve's refusals to statuses.
func writeReserveError(w http.ResponseWriter, err error) {
	var overRate *rateLimitedError
	switch {
	case writeHostRefusal(w, err):
	case errors.As(err, &overRate):
		setRetryAfter(w, overRate.wait)
		writeError(w, http.StatusTooManyRequests, codeRateLimited, err.Error())
	case errors.Is(err, errTooManyConns):
		setRetryAfter(w, retryTooMany)
		writeError(w, http.StatusTooManyRequests, codeTooManyConns, err.Error())
	case errors.Is(err, errRoomFull):
		writeError(w, http.StatusConflict, codeRoomFull, err.Error())
	case errors.Is(err, errShuttingDown):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, codeShuttingDown, err.Error())
	default:
		setRetryAfter(w, retryServerFull)
		writeError(w, http.StatusServiceUnavailable, codeServerFull, err.Error())
	}
}

// isWebSocketUpgrade reports whether r asks to become a WebSocket.
func isWebSocketUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

// headerHasToken reports whether a comma-separated header lists token.
func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// validOrigin reports whether o is a bare scheme://host[:port] origin.
func validOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.User == nil && u.Fragment == ""
}

// originAllowed applies ALLOWED_ORIGINS. Requests without an Origin (not
// from a browser) and same-origin requests are always allowed; development
// also allows any localhost port, for front-end dev servers.
func (s *server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	if slices.ContainsFunc(s.cfg.AllowedOrigins, func(a string) bool { return strings.EqualFold(a, origin) }) {
		return true
	}
	if s.cfg.Environment == "development" {
		switch u.Hostname() {
		case "localhost", "127.0.0.1", "::1":
			return true
		}
	}
	return false
}

// cors grants cross-origin access to /api for allowed origins only. It
// reports false, having answered 403, for a cross-origin request it refuses.
func (s *server) cors(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if !s.originAllowed(r) {
		writeError(w, http.StatusForbidden, codeOriginNotAllowed, "this origin may not use this API")
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	return true
}

// preflightHandler answers CORS preflights for /api.
func (s *server) preflightHandler(w http.ResponseWriter, r *http.Request) {
	if !s.cors(w, r) {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// createRoomRequest is the optional body of POST /api/rooms.
type createRoomRequest struct {
	// Capacity limits the room's members; 2 makes a private one-to-one room.
	// Zero means MAX_ROOM_CLIENTS.
	Capacity int `json:"capacity"`
	// roomCipher's {"e2ee": true} makes an end-to-end encrypted room.
	roomCipher
}

// createRoomHandler makes a room with an unguessable code.
func (s *server) createRoomHandler(w http.ResponseWriter, r *http.Request) {
	if !s.cors(w, r) {
		return
	}
	var req createRoomRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 1024))
	if err == nil && len(bytes.TrimSpace(body)) > 0 {
		err = json.Unmarshal(body, &req)
	}
	if err != nil || req.Capacity != 0 && (req.Capacity < 2 || req.Capacity > s.cfg.MaxRoomClients) || !req.valid() {
		writeError(w, http.StatusBadRequest, codeBadRequest,
			"body is optional; if given it is {\"capacity\": N} with N from 2 to "+strconv.Itoa(s.cfg.MaxRoomClients)+
				", and {\"e2ee\": true} with an optional \"keyCheck\" of 22 base64url characters")
		return
	}
	if err := limited(s.creates, s.clientKey(r), true, "too many new rooms from this address; try again later"); err != nil {
		writeReserveError(w, err)
		return
	}
	if req.Capacity == 0 {
		req.Capacity = s.cfg.MaxRoomClients
	}
	code, host, err := s.createRoom(req.Capacity, req.roomCipher)
	if err != nil {
		writeReserveError(w, err)
		return
	}
	// The host credential goes to the creator alone (host.go).
	writeJSON(w, http.StatusCreated, map[string]any{"room": code, "capacity": req.Capacity, "e2ee": req.E2EE, "host": host})
}

// roomCodeEncoding spells room codes in lower-case base32: URL-safe and easy
// to read aloud.
var roomCodeEncoding = base32.NewEncoding(roomCodeAlphabet).WithPadding(base32.NoPadding)

// roomCodeAlphabet is base32 in lower case.
const roomCodeAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// roomCodeLen is the length of a room code's random part: 80 bits.
const roomCodeLen = 16

// createRoom registers a new empty room under a fresh 80-bit code, drawn
// from its host credential (see hostCode), followed by its settings when
// they differ from a named room's (see roomSettings), and returns the code
// and the credential. Unjoined, it expires like any empty room.
func (s *server) createRoom(capacity int, cipher roomCipher) (code, host string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return "", "", errShuttingDown
	}
	var settings string
	if capacity < s.cfg.MaxRoomClients {
		settings = strconv.Itoa(capacity)
	}
	if cipher.E2EE {
		settings += "e"
	}
	if settings != "" {
		settings = "_" + settings
	}
	for {
		host = newHostSecret()
		code := s.fleet.pin(hostCode(host) + settings)
		if s.rooms[code] != nil {
			continue
		}
		r, err := s.roomLocked(code)
		if err != nil {
			return "", "", err
		}
		r.cipher.KeyCheck = cipher.KeyCheck // The one setting the code does not carry.
		r.mu.Lock()
		r.host = newHostState(host)
		s.idleIfEmptyLocked(r)
		r.mu.Unlock()
		return code, host, nil
	}
}

// roomSettings reads a created room's settings from its code, so that any
// server that meets the code holds the room as it was created: another node
// behind a load balancer, or this one after the room expired. A code is 16
// characters of base32, then, if its room is not an ordinary one, "_" and
// the capacity (a number from 2) and "e" for end-to-end encryption, each
// optional; on Fly.io, "-<machine id>" follows. Any other name is an
// ordinary room of maxClients.
func roomSettings(name string, maxClients int) (capacity int, e2ee bool) {
	head, _, _ := strings.Cut(name, "-")
	random, spec, ok := strings.Cut(head, "_")
	if !ok || len(random) != roomCodeLen || strings.Trim(random, roomCodeAlphabet) != "" {
		return maxClients, false
	}
	digits, e2ee := strings.CutSuffix(spec, "e")
	if digits == "" {
		return maxClients, e2ee
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 2 {
		return maxClients, false // Not a code this server makes.
	}
	return min(n, maxClients), e2ee
}

// randomBytes reads n bytes from crypto/rand, which never fails on
// supported platforms.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// clientIP is the address per-IP limits count by: the trusted proxy's
// header when CLIENT_IP_HEADER names one, else the peer address. Behind a
// proxy without the header, every client shares the proxy's address.
// X-Forwarded-For is a list to which each proxy appends the address it saw;
// the client may write anything before, so the last entry is taken: the one
// the trusted proxy added. A one-value header (Fly-Client-IP) is that value.
func (s *server) clientIP(r *http.Request) string {
	if h := s.cfg.ClientIPHeader; h != "" {
		if vs := r.Header.Values(h); len(vs) > 0 {
			v := vs[len(vs)-1]
			if i := strings.LastIndexByte(v, ','); i >= 0 {
				v = v[i+1:]
			}
			if v = strings.TrimSpace(v); v != "" {
				return strings.Clone(v) // Limiter keys outlive the header.
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// staticFiles is the web UI, embedded so the binary is the whole product.
//
//go:embed static
var staticFiles embed.FS

// staticFile is one embedded asset with its validator.
type staticFile struct {
	data []byte
	etag string
}

// loadStatic indexes the embedded UI and hashes each file once, so browsers
// can revalidate with If-None-Match and get 304s.
func loadStatic() map[string]staticFile {
	files := make(map[string]staticFile)
	fs.WalkDir(staticFiles, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := staticFiles.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		files[strings.TrimPrefix(p, "static/")] = staticFile{data: data, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	return files
}

// serveStatic serves one embedded file. Everything is revalidated on each
// load (no-cache with an ETag), so a deploy is never hidden behind a stale
// index.html or script.
func (s *server) serveStatic(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := s.static[path.Clean(name)]
	if !ok {
		writeError(w, http.StatusNotFound, codeNotFound, "not found")
		return
	}
	w.Header().Set("ETag", f.etag)
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.data))
}
