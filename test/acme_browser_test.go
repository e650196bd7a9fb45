//go:build linux && tls

package test

// Chromium over https with a certificate from Pebble: a secure context, in
// which an end-to-end encrypted room works.

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestBrowserEncryptedRoomOverACMECertificate(t *testing.T) {
	browserExecPath(t) // Skips before Pebble starts when there is no browser.
	s := setupACME(t)
	// Chromium trusts the test CA that issued the certificate by its key's
	// hash, and nothing else: every other check of the chain still applies.
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+s.hallway.tlsPort,
		&tls.Config{ServerName: acmeDomain, RootCAs: s.roots})
	if err != nil {
		t.Fatal(err)
	}
	chain := c.ConnectionState().PeerCertificates
	c.Close()
	if len(chain) < 2 {
		t.Fatalf("the server sent %d certificates, want the leaf and its issuer", len(chain))
	}
	b := startBrowser(t,
		chromedp.Flag("ignore-certificate-errors-spki-list", spkiHash(chain[1])),
		chromedp.Flag("host-resolver-rules", "MAP "+acmeDomain+" 127.0.0.1"),
	)
	base := "https://" + acmeDomain + ":" + s.hallway.tlsPort
	alice := newBrowserUser(t, b, "alice")
	_, link := alice.createSealedRoom(base, "Alice")
	if !browserEval[bool](alice, `window.isSecureContext && !!(crypto && crypto.subtle) && location.protocol === 'https:'`) {
		t.Fatal("the page over https is not a secure context with crypto.subtle")
	}
	bob := newBrowserUser(t, b, "bob")
	bob.joinFromLink(link, "Bob")
	bob.waitSealed()
	alice.say("sealed over tls")
	bob.waitMessage("Alice", "sealed over tls")
	bob.say("and back")
	alice.waitMessage("Bob", "and back")
}
