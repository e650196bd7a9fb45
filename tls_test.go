//go:build linux && tls

package main

// Tests of the TLS settings, the operator's own certificate files, and the
// log lines for what can go wrong with certificates.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"hallway/internal/testca"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/crypto/acme"
)

// certDomain is the name the operator's test certificates are for.
const certDomain = "chat.localhost"

func TestTLSConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, value, names string }{
		{"TLS_DOMAINS", "https://chat.example.com", "TLS_DOMAINS"},
		{"TLS_DOMAINS", "chat.example.com:443", "TLS_DOMAINS"},
		{"TLS_DOMAINS", "*.example.com", "TLS_DOMAINS"},
		{"TLS_DOMAINS", "203.0.113.7", "TLS_DOMAINS"},
		{"TLS_DOMAINS", "localhost", "TLS_DOMAINS"},
		{"TLS_DOMAINS", "chat.example.com,-bad-.example.com", "TLS_DOMAINS"},
		{"TLS_CERT_FILE", "/etc/cert.pem", "TLS_KEY_FILE"},
		{"ACME_DIRECTORY", "acme.example.com/dir", "ACME_DIRECTORY"},
		{"TLS_EMAIL", "ops", "TLS_EMAIL"},
		{"TLS_PORT", "0", "TLS_PORT"},
		{"TLS_HTTP_PORT", "443", "TLS_HTTP_PORT"},
	} {
		_, err := loadConfig(map[string]string{tc.name: tc.value})
		if err == nil || !strings.Contains(err.Error(), tc.names) {
			t.Errorf("%s=%s: error %v, want one naming %s", tc.name, tc.value, err, tc.names)
		}
	}
	_, err := loadConfig(map[string]string{"TLS_DOMAINS": "chat.example.com", "TLS_CERT_FILE": "c", "TLS_KEY_FILE": "k"})
	if err == nil || !strings.Contains(err.Error(), "TLS_CERT_FILE") {
		t.Errorf("both ACME and own files: %v, want an error naming TLS_CERT_FILE", err)
	}
	cfg := testConfig(t, map[string]string{"TLS_DOMAINS": "chat.example.com,chat.example.org"})
	if !cfg.tlsOn() || len(cfg.TLSDomains) != 2 || cfg.TLSPort != 443 || cfg.TLSHTTPPort != 80 {
		t.Fatalf("parsed %+v", cfg)
	}
	if testConfig(t, nil).tlsOn() {
		t.Fatal("TLS is on without TLS_DOMAINS or TLS_CERT_FILE")
	}
}

func TestACMEFailuresAreNamed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&acme.Error{StatusCode: 429, ProblemType: "urn:ietf:params:acme:error:rateLimited"}, "rate limited"},
		{fmt.Errorf("order: %w", &acme.Error{StatusCode: 400, ProblemType: "urn:ietf:params:acme:error:rejectedIdentifier"}), "refuses this TLS_DOMAINS entry"},
		{&acme.Error{StatusCode: 403, ProblemType: "urn:ietf:params:acme:error:unauthorized"}, "points at this server"},
		{&acme.OrderError{Status: acme.StatusInvalid}, "could not validate"},
		{&os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}, "unreachable"},
		{errors.New("acme/autocert: something else"), "no certificate"},
		{fmt.Errorf("dial: %w", errTimeout{}), "unreachable"},
	} {
		if got := acmeFailure(tc.err); !strings.Contains(got, tc.want) {
			t.Errorf("acmeFailure(%v) = %q, want it to say %q", tc.err, got, tc.want)
		}
	}
}

// errTimeout is a network timeout.
type errTimeout struct{}

func (errTimeout) Error() string   { return "i/o timeout" }
func (errTimeout) Timeout() bool   { return true }
func (errTimeout) Temporary() bool { return true }

func TestTLSLogSaysEachKindOnceAMinute(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	l := &tlsLog{log: slog.New(slog.NewTextHandler(&logs, nil))}
	for range 100 {
		l.warn("tls handshake for a name not in TLS_DOMAINS", "", nil)
	}
	l.warn("acme: rate limited", "chat.example.com", errors.New("429"))
	if n := strings.Count(logs.String(), "\n"); n != 2 {
		t.Fatalf("%d lines, want 2:\n%s", n, logs.String())
	}
}

func TestPlainDoorRedirectsAndAnswersHealth(t *testing.T) {
	t.Parallel()
	srv := newServer(testConfig(t, nil), slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		port       int
		host, path string
		status     int
		location   string
	}{
		{443, "chat.example.com", "/r/abc?x=1", http.StatusPermanentRedirect, "https://chat.example.com/r/abc?x=1"},
		{443, "chat.example.com:80", "/", http.StatusPermanentRedirect, "https://chat.example.com/"},
		{8443, "chat.example.com", "/", http.StatusPermanentRedirect, "https://chat.example.com:8443/"},
		{443, "[2001:db8::1]:80", "/", http.StatusPermanentRedirect, "https://[2001:db8::1]/"},
		{8443, "[2001:db8::1]", "/", http.StatusPermanentRedirect, "https://[2001:db8::1]:8443/"},
		{443, "bad host!", "/", http.StatusBadRequest, ""},
		{443, "chat.example.com", "/healthz", http.StatusOK, ""},
	} {
		d := &httpDoor{tlsPort: tc.port}
		r := httptest.NewRequest(http.MethodGet, tc.path, nil)
		r.Host = tc.host
		w := httptest.NewRecorder()
		d.handler(srv.handler()).ServeHTTP(w, r)
		if w.Code != tc.status || w.Header().Get("Location") != tc.location {
			t.Errorf("%s%s on a door for %d: %d to %q, want %d to %q", tc.host, tc.path, tc.port, w.Code, w.Header().Get("Location"), tc.status, tc.location)
		}
	}
}

func TestOwnCertificateFilesReloadWhenReplaced(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testca.New(t, "own test CA")
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca.Issue(t, 1, cert, key, certDomain)
	var logs syncBuffer
	files := &certFiles{certPath: cert, keyPath: key, log: slog.New(slog.NewTextHandler(&logs, nil))}
	files.reload(true)
	serial := func() string {
		c, err := files.getCertificate(&tls.ClientHelloInfo{ServerName: certDomain})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber.String()
	}
	if s := serial(); s != "1" {
		t.Fatalf("serial %s, want 1", s)
	}
	ca.Issue(t, 2, cert, key, certDomain)
	waitFor(t, "the replaced files to be served", func() bool { return serial() == "2" })

	// A half-written replacement keeps the certificate already loaded.
	testca.WriteFile(t, cert, []byte("not a certificate"))
	waitFor(t, "the unreadable files to be logged", func() bool {
		serial()
		return strings.Contains(logs.String(), "tls certificate files unreadable")
	})
	if s := serial(); s != "2" {
		t.Fatalf("serial %s after a bad replacement, want the loaded 2", s)
	}
}
