//go:build tls && !wasip1

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// This file is HTTPS served by the binary itself: certificates from an ACME
// CA (Let's Encrypt by default) or from the operator's own files, and the
// TLS listener. The plain-HTTP door beside it is in tlsconfig.go.

// tlsSupported is whether this build can serve TLS itself.
const tlsSupported = true

// certFileCheck is how often, at most, a handshake looks whether
// TLS_CERT_FILE or TLS_KEY_FILE changed.
const certFileCheck = time.Second

// tlsLogEvery is how often one kind of TLS failure is logged at most, so
// that a stream of handshakes cannot flood the log.
const tlsLogEvery = time.Minute

// certRetryMin and certRetryMax bound the wait between attempts to obtain
// a certificate at startup while the ACME server fails.
const (
	certRetryMin = 30 * time.Second
	certRetryMax = time.Hour
)

// certSource answers TLS handshakes with a certificate.
type certSource interface {
	getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
}

// runTLS serves https on HOST:TLS_PORT and the plain-HTTP door on
// HOST:TLS_HTTP_PORT until ctx ends.
func runTLS(ctx context.Context, cfg config, logger *slog.Logger) error {
	var certs certSource
	var acmeHTTP func(http.Handler) http.Handler
	if len(cfg.TLSDomains) > 0 {
		if err := os.MkdirAll(cfg.TLSCacheDir, 0o700); err != nil {
			return fmt.Errorf("invalid TLS_CACHE_DIR: %w", err)
		}
		a := newACMECerts(cfg, logger)
		certs, acmeHTTP = a, a.manager.HTTPHandler
		go a.warm(ctx)
	} else {
		f := &certFiles{certPath: cfg.TLSCertFile, keyPath: cfg.TLSKeyFile, log: logger}
		f.reload(true)
		go f.reloadOnHangup(ctx)
		certs = f
	}
	tl, err := listen(net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.TLSPort)))
	if err != nil {
		return err
	}
	hl, err := listen(net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.TLSHTTPPort)))
	if err != nil {
		tl.Close()
		return err
	}
	door := &httpDoor{l: hl, tlsPort: cfg.TLSPort, acme: acmeHTTP}
	return serve(ctx, tls.NewListener(tl, tlsConfig(certs)), cfg, logger, door)
}

// tlsConfig offers HTTP/2 and HTTP/1.1, and ACME's TLS-ALPN-01 challenge.
// Browsers open WebSockets over HTTP/1.1: Go's HTTP/2 server does not offer
// WebSockets over HTTP/2 (RFC 8441) unless GODEBUG asks for it.
func tlsConfig(certs certSource) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: certs.getCertificate,
		NextProtos:     []string{"h2", "http/1.1", acme.ALPNProto},
	}
}

// tlsLog logs TLS failures without user data, each kind at most once per
// tlsLogEvery.
type tlsLog struct {
	log  *slog.Logger
	mu   sync.Mutex
	last map[string]time.Time
}

// warn logs msg unless the same msg and domain were logged lately.
func (l *tlsLog) warn(msg, domain string, err error) {
	key := msg + " " + domain
	now := time.Now()
	l.mu.Lock()
	if now.Sub(l.last[key]) < tlsLogEvery {
		l.mu.Unlock()
		return
	}
	if l.last == nil {
		l.last = make(map[string]time.Time)
	}
	l.last[key] = now
	l.mu.Unlock()
	args := []any{}
	if domain != "" {
		args = append(args, "domain", domain)
	}
	if err != nil {
		args = append(args, "error", err.Error())
	}
	l.log.Warn(msg, args...)
}

// acmeCerts obtains and renews certificates for TLS_DOMAINS from an ACME
// CA, keeping keys and certificates in TLS_CACHE_DIR.
type acmeCerts struct {
	manager *autocert.Manager
	domains []string
	tlsLog
}

// newACMECerts configures autocert for cfg's domains.
func newACMECerts(cfg config, logger *slog.Logger) *acmeCerts {
	domains := make([]string, len(cfg.TLSDomains))
	for i, d := range cfg.TLSDomains {
		domains[i] = strings.ToLower(strings.TrimSuffix(d, "."))
	}
	return &acmeCerts{
		manager: &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			Cache:      autocert.DirCache(cfg.TLSCacheDir),
			HostPolicy: autocert.HostWhitelist(domains...),
			Email:      cfg.TLSEmail,
			Client:     &acme.Client{DirectoryURL: cfg.ACMEDirectory},
		},
		domains: domains,
		tlsLog:  tlsLog{log: logger},
	}
}

// getCertificate answers a handshake for one of TLS_DOMAINS, obtaining the
// certificate first if it is not cached, and logs why it cannot.
func (a *acmeCerts) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if !slices.Contains(a.domains, name) {
		// The name a client asked for is not logged: it is the client's.
		a.warn("tls handshake for a name not in TLS_DOMAINS", "", nil)
		return nil, errors.New("no certificate for this name")
	}
	cert, err := a.manager.GetCertificate(hello)
	if err != nil && !slices.Contains(hello.SupportedProtos, acme.ALPNProto) {
		a.warn(acmeFailure(err), name, err)
	}
	return cert, err
}

// acmeFailure says in a few words why a certificate could not be had.
func acmeFailure(err error) string {
	var ae *acme.Error
	var ne net.Error
	switch {
	case errors.As(err, &ae) && (ae.StatusCode == http.StatusTooManyRequests || strings.HasSuffix(ae.ProblemType, ":rateLimited")):
		return "acme: rate limited; certificates will be asked for again later"
	case errors.As(err, &ae) && (strings.HasSuffix(ae.ProblemType, ":rejectedIdentifier") || strings.HasSuffix(ae.ProblemType, ":malformed")):
		return "acme: the CA refuses this TLS_DOMAINS entry"
	case errors.As(err, &ae):
		return "acme: the CA refused the order; check that the name points at this server and ports 80 or 443 reach it"
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded):
		return "acme: the ACME server is unreachable"
	}
	var oe *acme.OrderError
	if errors.As(err, &oe) {
		return "acme: the CA could not validate this name; check that it points at this server and ports 80 or 443 reach it"
	}
	return "acme: no certificate"
}

// warm obtains each domain's certificate once at startup, so that the
// first visitor does not wait and problems show in the log at once. It
// retries a failure with a growing wait until ctx ends.
func (a *acmeCerts) warm(ctx context.Context) {
	for _, d := range a.domains {
		go func() {
			wait := certRetryMin
			for {
				cert, err := a.getCertificate(ecdsaHello(d))
				if err == nil {
					a.log.Info("tls certificate ready", "domain", d, "expires", cert.Leaf.NotAfter)
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				wait = min(2*wait, certRetryMax)
			}
		}()
	}
}

// ecdsaHello is a handshake from a modern client for name, which asks for
// the ECDSA certificate browsers are given.
func ecdsaHello(name string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{
		ServerName:        name,
		CipherSuites:      []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedCurves:   []tls.CurveID{tls.CurveP256},
		SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
	}
}

// certFiles serves the operator's certificate from TLS_CERT_FILE and
// TLS_KEY_FILE, loaded again when either file changes or on SIGHUP. A
// failed load keeps the certificate already loaded.
type certFiles struct {
	certPath, keyPath string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string    // the files' sizes and times at the last load
	checked time.Time // when the files were last looked at
}

// getCertificate serves the loaded certificate, first loading the files
// again if they changed since they were last looked at, a second or more ago.
func (f *certFiles) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.reload(false)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cert == nil {
		return nil, errors.New("no certificate loaded")
	}
	return f.cert, nil
}

// reload loads the files again if they changed, or at once with force, and
// logs a failure.
func (f *certFiles) reload(force bool) {
	now := time.Now()
	f.mu.Lock()
	if !force && now.Sub(f.checked) < certFileCheck {
		f.mu.Unlock()
		return
	}
	f.checked = now
	stamp := fileStamp(f.certPath) + " " + fileStamp(f.keyPath)
	if !force && stamp == f.stamp {
		f.mu.Unlock()
		return
	}
	f.stamp = stamp
	f.mu.Unlock()
	cert, err := tls.LoadX509KeyPair(f.certPath, f.keyPath)
	if err != nil {
		f.log.Warn("tls certificate files unreadable; keeping the certificate already loaded", "error", err.Error())
		return
	}
	f.mu.Lock()
	f.cert = &cert
	f.mu.Unlock()
	f.log.Info("tls certificate loaded", "expires", cert.Leaf.NotAfter)
}

// fileStamp is a file's size and modification time, or its error.
func fileStamp(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return err.Error()
	}
	return strconv.FormatInt(st.Size(), 10) + "@" + strconv.FormatInt(st.ModTime().UnixNano(), 10)
}

// reloadOnHangup loads the files again on every SIGHUP until ctx ends.
func (f *certFiles) reloadOnHangup(ctx context.Context) {
	hup, stop := hangups()
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			f.reload(true)
		}
	}
}
