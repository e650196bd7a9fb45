//go:build linux

package test

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// Sharing a room to a phone: the QR code drawn in the page.

// shownQR decodes the QR code u's share panel shows, as a phone's camera
// would read it.
func (u *browserUser) shownQR() string {
	u.t.Helper()
	u.waitFor("the QR code", `() => !document.getElementById('share').hidden && document.getElementById('share-qr').width > 0`)
	url := browserEval[string](u, `document.getElementById('share-qr').toDataURL('image/png')`)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(url, "data:image/png;base64,"))
	if err != nil {
		u.t.Fatalf("%s: the canvas gave %.40q…: %v", u.name, url, err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		u.t.Fatalf("%s: decode the canvas PNG: %v", u.name, err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		u.t.Fatalf("%s: binarize the QR code: %v", u.name, err)
	}
	// The detector that looks for a code in a photo once lost this
	// canvas's symbol in a full-suite run (a corner placed outside the
	// picture), while 300 random encrypted-room links all read back from
	// static/qr.js as whole symbols. The canvas holds the code alone, so a
	// reader that takes the picture as one whole symbol is tried next.
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		var perr error
		if res, perr = qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true}); perr != nil {
			u.t.Fatalf("%s: the QR code does not decode: %v; read as a whole symbol: %v", u.name, err, perr)
		}
	}
	return res.GetText()
}

func TestBrowserShareQRCode(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)

	plain := newBrowserUser(t, b, "alice")
	code := plain.createRoomFromStart(es.URL, "Alice", "create-room")
	link := plain.copyLink(es.URL)
	if link != es.URL+"/r/"+code {
		t.Fatalf("copied %q", link)
	}
	if got := plain.shownQR(); got != link {
		t.Errorf("the QR code says %q, want the link %q", got, link)
	}
	plain.checkLabels("share panel")

	sealed := newBrowserUser(t, b, "bob")
	wire := tapWire(sealed)
	_, sealedLink := sealed.createSealedRoom(es.URL, "Bob")
	if got := sealed.copyLink(es.URL); got != sealedLink {
		t.Fatalf("copied %q, want %q", got, sealedLink)
	}
	if got := sealed.shownQR(); got != sealedLink {
		t.Errorf("the QR code says %q, want the link with its key %q", got, sealedLink)
	}
	sealed.screenshot("share-qr.png")
	key := sealed.roomKey()
	frames, requests := wire.snapshot()
	if len(frames) == 0 || len(requests) == 0 || es.requests.String() == "" {
		t.Fatalf("recorded %d frames, %d requests and %d bytes of the server's requests: nothing to search for the key",
			len(frames), len(requests), len(es.requests.String()))
	}
	for _, s := range append(append(frames, requests...), es.requests.String(), es.logs.String()) {
		if strings.Contains(s, key) {
			t.Fatalf("the room key left the page: %.200q", s)
		}
	}
}
