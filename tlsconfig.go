package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// This file is what every build knows of TLS: its settings and the
// plain-HTTP door beside it. Serving TLS is in tls.go; the WASI build has
// none (tls_wasip1.go).

// hstsHeader tells browsers to come back only over https for a year.
const hstsHeader = "max-age=31536000"

// tlsOn reports whether the server terminates TLS itself.
func (c config) tlsOn() bool { return len(c.TLSDomains) > 0 || c.TLSCertFile != "" }

// validateTLS checks the TLS settings; each error names its variable.
func (c config) validateTLS() []error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("invalid %s: "+format, append([]any{name}, args...)...))
	}
	for _, d := range c.TLSDomains {
		if !validDomain(d) {
			bad("TLS_DOMAINS", "%q is not a host name such as chat.example.com (no scheme, port, IP address or wildcard)", d)
		}
	}
	if len(c.TLSDomains) > 0 && c.TLSCertFile != "" {
		bad("TLS_CERT_FILE", "set together with TLS_DOMAINS; choose one")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("TLS_KEY_FILE", "TLS_CERT_FILE and TLS_KEY_FILE go together")
	}
	if u, err := url.Parse(c.ACMEDirectory); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("ACME_DIRECTORY", "%q is not an http(s) URL", c.ACMEDirectory)
	}
	if c.TLSEmail != "" && !strings.Contains(c.TLSEmail, "@") {
		bad("TLS_EMAIL", "%q is not an e-mail address", c.TLSEmail)
	}
	if c.TLSPort < 1 || c.TLSPort > 65535 || c.TLSHTTPPort < 1 || c.TLSHTTPPort > 65535 {
		bad("TLS_PORT", "%d and TLS_HTTP_PORT %d must be TCP ports", c.TLSPort, c.TLSHTTPPort)
	} else if c.TLSPort == c.TLSHTTPPort {
		bad("TLS_HTTP_PORT", "%d is TLS_PORT too", c.TLSHTTPPort)
	}
	if c.tlsOn() && !tlsSupported {
		bad("TLS_DOMAINS", "this build serves no TLS: build it with -tags tls (not for WASI), or unset TLS_DOMAINS and TLS_CERT_FILE and terminate TLS in a proxy")
	}
	return errs
}

// validDomain reports whether d can be a certificate's DNS name: a host
// name with at least one dot, not an IP address or a wildcard.
func validDomain(d string) bool {
	if !strings.Contains(strings.Trim(d, "."), ".") || net.ParseIP(d) != nil || !validHostname(d) {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(d, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
	}
	return true
}

// httpDoor is the plain-HTTP listener beside TLS: it answers ACME's HTTP-01
// challenges and /healthz, and redirects everything else to https.
type httpDoor struct {
	l       net.Listener
	tlsPort int
	acme    func(fallback http.Handler) http.Handler // nil with the operator's own certificate
}

// handler routes the door's requests; main serves /healthz.
func (d *httpDoor) handler(main http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", main)
	mux.HandleFunc("/", d.redirect)
	if d.acme == nil {
		return mux
	}
	return d.acme(mux)
}

// redirect sends a request to the same host and path over https.
func (d *httpDoor) redirect(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "" || !validHostname(host) && net.ParseIP(host) == nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "use https")
		return
	}
	if d.tlsPort != 443 {
		host = net.JoinHostPort(host, strconv.Itoa(d.tlsPort))
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]" // an IPv6 literal
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

// handshakeFilter drops net/http's "TLS handshake error" lines, which name
// the client's address and come by the thousand from scanners; the reasons
// worth knowing are logged, without the address, where certificates are
// chosen. It serves only as an http.Server's ErrorLog, which calls Enabled
// and Handle alone.
type handshakeFilter struct{ slog.Handler }

// Handle passes on every record but a handshake error.
func (f handshakeFilter) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "http: TLS handshake error") {
		return nil
	}
	return f.Handler.Handle(ctx, r)
}
