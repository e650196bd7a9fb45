//go:build linux && tls

package test

// Tests of automatic HTTPS against Pebble, a real ACME server, which
// validates every challenge by connecting to the server built with the tls
// tag on loopback.
// A tiny DNS server answers 127.0.0.1 for every name Pebble asks about.

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hallway/internal/loadgen"
	"hallway/internal/testca"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// acmeDomain is the name Hallway gets a certificate for; Chromium resolves
// every .localhost name to loopback, and the test's DNS server does too.
const acmeDomain = "chat.localhost"

// blockedDomain is a name Pebble refuses to issue for.
const blockedDomain = "blocked.localhost"

// These tests need the server built with the tls tag.
func init() { tlsTests = true }

// acmeTimeout bounds getting a certificate from Pebble.
const acmeTimeout = 60 * time.Second

// pebbleTool finds the pebble binary, skipping the test without it unless
// CI=1 or E2E=1 demands it (.ci/run installs it with go install).
func pebbleTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("pebble"); err == nil {
		return p
	}
	for _, dir := range []string{os.Getenv("GOBIN"), filepath.Join(goEnv("GOPATH"), "bin")} {
		if p := filepath.Join(dir, "pebble"); dir != "" && fileExists(p) {
			return p
		}
	}
	msg := "pebble is not installed (go install github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3)"
	if os.Getenv("CI") == "1" || os.Getenv("E2E") == "1" {
		t.Fatal("CI=1 or E2E=1 but " + msg)
	}
	t.Skip(msg + "; set E2E=1 to make this a failure")
	return ""
}

// goEnv reads one go env variable, or "" without a go tool.
func goEnv(name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// fileExists reports whether path names a file.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// startLoopbackDNS answers every A query over TCP with 127.0.0.1 and every
// other query with no records, as Pebble asks over TCP. It returns its
// address.
func startLoopbackDNS(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveLoopbackDNS(c)
		}
	}()
	return l.Addr().String()
}

// serveLoopbackDNS answers the queries on one connection.
func serveLoopbackDNS(c net.Conn) {
	defer c.Close()
	for {
		var n uint16
		if binary.Read(c, binary.BigEndian, &n) != nil {
			return
		}
		q := make([]byte, n)
		if _, err := io.ReadFull(c, q); err != nil || len(q) < 17 {
			return
		}
		// One question: the name's labels end at a zero byte, then type and class.
		end := 12
		for end < len(q) && q[end] != 0 {
			end += int(q[end]) + 1
		}
		if end+5 > len(q) {
			return
		}
		qtype := binary.BigEndian.Uint16(q[end+1:])
		resp := append([]byte{}, q[:end+5]...)
		resp[2], resp[3] = 0x84|q[2]&0x01, 0x00 // response, authoritative, recursion as asked
		binary.BigEndian.PutUint16(resp[6:], 0) // answers
		binary.BigEndian.PutUint32(resp[8:], 0) // authority and additional
		if qtype == 1 {
			binary.BigEndian.PutUint16(resp[6:], 1)
			resp = append(resp, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1)
		}
		out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
		if _, err := c.Write(append(out, resp...)); err != nil {
			return
		}
	}
}

// pebble is a running Pebble.
type pebble struct {
	p         *loadgen.Process
	directory string
	mgmt      string
	tlsCA     []byte // PEM of the CA that signed Pebble's own HTTPS certificate
}

// startPebble runs Pebble so that it validates challenges on httpPort and
// tlsPort of 127.0.0.1.
func startPebble(t *testing.T, httpPort, tlsPort string) *pebble {
	t.Helper()
	bin := pebbleTool(t)
	dir := t.TempDir()
	ca := testca.New(t, "pebble listener test CA")
	ca.Issue(t, 2, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), "127.0.0.1", "localhost")
	caFile := filepath.Join(dir, "ca.pem")
	testca.WriteFile(t, caFile, ca.PEM)
	ports := make([]string, 2)
	for i := range ports {
		p, err := loadgen.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": "127.0.0.1:" + ports[0], "managementListenAddress": "127.0.0.1:" + ports[1],
		"certificate": filepath.Join(dir, "cert.pem"), "privateKey": filepath.Join(dir, "key.pem"),
		"httpPort": atoi(t, httpPort), "tlsPort": atoi(t, tlsPort),
		"ocspResponderURL": "", "externalAccountBindingRequired": false, "domainBlocklist": []string{blockedDomain},
		"retryAfter": map[string]int{"authz": 1, "order": 1}, "keyAlgorithm": "ecdsa",
		"profiles": map[string]any{"default": map[string]any{"description": "default", "validityPeriod": 7776000}},
	}}
	b, _ := json.Marshal(cfg)
	testca.WriteFile(t, filepath.Join(dir, "pebble.json"), b)
	cmd := exec.Command(bin, "-config", filepath.Join(dir, "pebble.json"), "-dnsserver", startLoopbackDNS(t))
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	p, err := loadgen.StartProcess(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	pb := &pebble{p: p, directory: "https://127.0.0.1:" + ports[0] + "/dir", mgmt: "https://127.0.0.1:" + ports[1], tlsCA: ca.PEM}
	waitProcess(t, "Pebble to answer", func() bool {
		_, err := pb.get(pb.directory)
		return err == nil
	}, p)
	return pb
}

// atoi parses a port.
func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// get fetches url from Pebble, trusting its listener's CA.
func (pb *pebble) get(url string) ([]byte, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pb.tlsCA)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// roots is the pool of Pebble's root CA, which issues Hallway's certificate.
func (pb *pebble) roots(t *testing.T) *x509.CertPool {
	t.Helper()
	b, err := pb.get(pb.mgmt + "/roots/0")
	if err != nil {
		t.Fatalf("Pebble's root: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("Pebble's root is not PEM: %q", b)
	}
	return pool
}

// waitProcess polls cond until it holds, failing if p exits first or
// acmeTimeout passes.
func waitProcess(t *testing.T, what string, cond func() bool, p *loadgen.Process) {
	t.Helper()
	deadline := time.Now().Add(acmeTimeout)
	for !cond() {
		select {
		case <-p.Exited:
			t.Fatalf("waiting for %s, the process exited:\n%s", what, p.Out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v; the process printed:\n%s", what, acmeTimeout, p.Out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tlsHallway is the server built with the tls tag, serving https.
type tlsHallway struct {
	p                 *loadgen.Process
	tlsPort, httpPort string
}

// startTLSHallway runs the server with environ on free loopback ports and
// waits for its plain-HTTP /healthz.
func startTLSHallway(t *testing.T, tlsPort, httpPort string, environ ...string) *tlsHallway {
	t.Helper()
	cmd := exec.Command(hallwayTLSBin)
	cmd.Env = append(os.Environ(), "HOST=127.0.0.1", "TLS_PORT="+tlsPort, "TLS_HTTP_PORT="+httpPort)
	cmd.Env = append(cmd.Env, environ...)
	p, err := loadgen.StartProcess(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	h := &tlsHallway{p: p, tlsPort: tlsPort, httpPort: httpPort}
	waitProcess(t, "a plain-HTTP /healthz", func() bool {
		resp, err := http.Get("http://127.0.0.1:" + httpPort + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, p)
	return h
}

// httpsClient trusts roots and reaches every name at the server's TLS port
// on loopback.
func (h *tlsHallway) httpsClient(roots *x509.CertPool, http2 bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: http2,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, "127.0.0.1:"+h.tlsPort)
		},
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// serial is the serial number of the certificate served for name, or an
// error when the handshake fails.
func (h *tlsHallway) serial(name string, roots *x509.CertPool) (string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+h.tlsPort,
		&tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

// acmeSetup is Pebble and Hallway, the certificate obtained.
type acmeSetup struct {
	pebble   *pebble
	hallway  *tlsHallway
	roots    *x509.CertPool
	cacheDir string
	environ  []string
}

// setupACME starts Pebble and Hallway for acmeDomain and any other names,
// and waits until Hallway holds acmeDomain's certificate.
func setupACME(t *testing.T, others ...string) *acmeSetup {
	t.Helper()
	tlsPort, err1 := loadgen.FreePort()
	httpPort, err2 := loadgen.FreePort()
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	pb := startPebble(t, httpPort, tlsPort)
	dir := t.TempDir()
	testca.WriteFile(t, filepath.Join(dir, "pebble-ca.pem"), pb.tlsCA)
	s := &acmeSetup{pebble: pb, cacheDir: filepath.Join(dir, "certs")}
	s.environ = []string{"TLS_DOMAINS=" + strings.Join(append([]string{acmeDomain}, others...), ","), "ACME_DIRECTORY=" + pb.directory, "TLS_EMAIL=ops@example.com",
		"TLS_CACHE_DIR=" + s.cacheDir, "SSL_CERT_FILE=" + filepath.Join(dir, "pebble-ca.pem")}
	s.hallway = startTLSHallway(t, tlsPort, httpPort, s.environ...)
	waitProcess(t, "a certificate", func() bool { return strings.Contains(s.hallway.p.Out.String(), "tls certificate ready") }, s.hallway.p)
	s.roots = pb.roots(t)
	return s
}

func TestACMECertificateServesPageAndChat(t *testing.T) {
	s := setupACME(t)
	h := s.hallway
	base := "https://" + acmeDomain + ":" + h.tlsPort
	resp, err := h.httpsClient(s.roots, true).Get(base + "/")
	if err != nil {
		t.Fatalf("GET / over https: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("GET / over https: %s %s, HSTS %q; want 200 over HTTP/2 with HSTS",
			resp.Status, resp.Proto, resp.Header.Get("Strict-Transport-Security"))
	}
	if st, err := os.Stat(s.cacheDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("cache dir: %v, mode %v; want 0700", err, st.Mode().Perm())
	}

	// Two people chat over wss://, the WebSockets on HTTP/1.1.
	ws := "wss://" + acmeDomain + ":" + h.tlsPort + "/ws/tlsroom?username="
	opts := &websocket.DialOptions{HTTPClient: h.httpsClient(s.roots, false)}
	alice, bob := joinBare(t, ws+"alice", opts), joinBare(t, ws+"bob", opts)
	alice.say("over tls", "")
	if m := bob.nextMessage(); m.Message != "over tls" || m.Username != "alice" {
		t.Fatalf("bob got %+v", m)
	}

	// Plain HTTP sends people to https; /healthz stays plain.
	plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+h.httpPort+"/r/tlsroom?x=1", nil)
	req.Host = acmeDomain
	resp, err = plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := base + "/r/tlsroom?x=1"; resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Fatalf("http GET: %s to %q, want 308 to %q", resp.Status, resp.Header.Get("Location"), want)
	}

	// A handshake for a name not served fails and is logged without the name.
	if _, err := h.serial("stranger.localhost", s.roots); err == nil {
		t.Fatal("a handshake for a name not in TLS_DOMAINS succeeded")
	}
	waitProcess(t, "the unknown name logged", func() bool { return strings.Contains(h.p.Out.String(), "not in TLS_DOMAINS") }, h.p)
	if out := h.p.Out.String(); strings.Contains(out, "stranger") || strings.Contains(out, "TLS handshake error") {
		t.Fatalf("the log names the client's SNI or address:\n%s", out)
	}
}

func TestACMERestartReusesCachedCertificate(t *testing.T) {
	s := setupACME(t)
	first, err := s.hallway.serial(acmeDomain, s.roots)
	if err != nil {
		t.Fatal(err)
	}
	// With the CA gone, a new order could not succeed: only the cache can
	// answer the next handshake.
	s.pebble.p.Stop()
	s.hallway.p.Stop()
	again := startTLSHallway(t, s.hallway.tlsPort, s.hallway.httpPort, s.environ...)
	waitProcess(t, "the cached certificate", func() bool { return strings.Contains(again.p.Out.String(), "tls certificate ready") }, again.p)
	second, err := again.serial(acmeDomain, s.roots)
	if err != nil || second != first {
		t.Fatalf("after a restart: serial %s, %v; want the cached %s", second, err, first)
	}
	if strings.Contains(again.p.Out.String(), "acme:") {
		t.Fatalf("the restart talked to the CA:\n%s", again.p.Out.String())
	}
}

func TestACMERefusedNameIsLoggedAndTheOthersServed(t *testing.T) {
	s := setupACME(t, blockedDomain)
	out := s.hallway.p
	waitProcess(t, "the refused name logged", func() bool {
		return strings.Contains(out.Out.String(), "the CA refuses this TLS_DOMAINS entry") &&
			strings.Contains(out.Out.String(), "domain="+blockedDomain)
	}, out)
	if _, err := s.hallway.serial(acmeDomain, s.roots); err != nil {
		t.Fatalf("the good name beside a refused one: %v", err)
	}
	resp, err := http.Get("http://127.0.0.1:" + s.hallway.httpPort + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestACMEServerUnreachableKeepsHealthCheck(t *testing.T) {
	t.Parallel()
	tlsPort, err1 := loadgen.FreePort()
	httpPort, err2 := loadgen.FreePort()
	closed, err3 := loadgen.FreePort()
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	h := startTLSHallway(t, tlsPort, httpPort, "TLS_DOMAINS="+acmeDomain, "TLS_CACHE_DIR="+filepath.Join(t.TempDir(), "certs"),
		"ACME_DIRECTORY=https://127.0.0.1:"+closed+"/dir")
	waitProcess(t, "the failure logged", func() bool { return strings.Contains(h.p.Out.String(), "ACME server is unreachable") }, h.p)
	resp, err := http.Get("http://127.0.0.1:" + httpPort + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz with the CA down: %v %v", resp, err)
	}
	resp.Body.Close()
}

// spkiHash is the base64 SHA-256 of cert's public key, as Chromium's
// --ignore-certificate-errors-spki-list takes it.
func spkiHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}
