//go:build linux && tls

package test

import (
	"crypto/x509"
	"errors"
	"hallway/internal/loadgen"
	"hallway/internal/testca"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The operator's own certificate files, served by the server built with
// the tls tag: loaded, reloaded on SIGHUP, and a missing file that leaves
// the plain-HTTP health check answering.

// ownCertFiles is a certificate and key the operator gave, and the CA that
// signed them.
type ownCertFiles struct {
	ca              *testca.CA
	cert, key, dir  string
	certEnv, keyEnv string
}

// newOwnCertFiles writes a certificate with serial 1 for acmeDomain.
func newOwnCertFiles(t *testing.T) *ownCertFiles {
	t.Helper()
	dir := t.TempDir()
	f := &ownCertFiles{ca: testca.New(t, "own test CA"), dir: dir, cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem")}
	f.ca.Issue(t, 1, f.cert, f.key, acmeDomain)
	f.certEnv, f.keyEnv = "TLS_CERT_FILE="+f.cert, "TLS_KEY_FILE="+f.key
	return f
}

// pool trusts the files' CA.
func (f *ownCertFiles) pool() *x509.CertPool {
	return f.ca.Pool()
}

func TestOwnCertificateServedAndReloadedOnHangup(t *testing.T) {
	t.Parallel()
	f := newOwnCertFiles(t)
	tlsPort, err1 := loadgen.FreePort()
	httpPort, err2 := loadgen.FreePort()
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	h := startTLSHallway(t, tlsPort, httpPort, f.certEnv, f.keyEnv)
	waitProcess(t, "the certificate loaded", func() bool { return strings.Contains(h.p.Out.String(), "tls certificate loaded") }, h.p)
	if s, err := h.serial(acmeDomain, f.pool()); err != nil || s != "1" {
		t.Fatalf("serial %s, %v; want 1", s, err)
	}
	// A replacement that keeps the old files' sizes and times is only seen
	// on SIGHUP.
	old := map[string]os.FileInfo{}
	for _, p := range []string{f.cert, f.key} {
		st, _ := os.Stat(p)
		old[p] = st
	}
	f.ca.Issue(t, 3, f.cert, f.key, acmeDomain)
	for p, st := range old {
		if now, _ := os.Stat(p); now.Size() != st.Size() {
			t.Skipf("the new %s differs in size; the SIGHUP would not be needed", filepath.Base(p))
		}
		os.Chtimes(p, st.ModTime(), st.ModTime())
	}
	time.Sleep(2 * time.Second) // Past the next look at the files (at most once a second, says docs/https.md), which sees no change.
	if s, _ := h.serial(acmeDomain, f.pool()); s != "1" {
		t.Fatalf("serial %s before SIGHUP, want 1", s)
	}
	h.p.Cmd.Process.Signal(syscall.SIGHUP)
	waitProcess(t, "the reloaded certificate", func() bool {
		s, _ := h.serial(acmeDomain, f.pool())
		return s == "3"
	}, h.p)
}

func TestUnreadableCertificateFilesKeepHealthCheck(t *testing.T) {
	t.Parallel()
	tlsPort, err1 := loadgen.FreePort()
	httpPort, err2 := loadgen.FreePort()
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h := startTLSHallway(t, tlsPort, httpPort, "TLS_CERT_FILE="+filepath.Join(dir, "missing.pem"), "TLS_KEY_FILE="+filepath.Join(dir, "missing.key"))
	waitProcess(t, "the unreadable files logged", func() bool { return strings.Contains(h.p.Out.String(), "tls certificate files unreadable") }, h.p)
	if _, err := h.serial(acmeDomain, nil); err == nil {
		t.Fatal("a handshake succeeded without a certificate")
	}
	resp, err := http.Get("http://127.0.0.1:" + httpPort + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %v %v", resp, err)
	}
	resp.Body.Close()
}
