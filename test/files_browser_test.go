//go:build linux

// The browser tests need a native Chromium; chromedp does not build for wasip1.

package test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// Sharing files in a real browser: the three ways to attach one, what the
// other page shows, downloads that match, and files that never run.

// pngFile encodes a w×h PNG.
func pngFile(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 200, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// writeTemp writes data to a file called name in a directory of the test's
// own, for the browser to pick, and returns its path.
func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// attachByButton picks the file at path through the attach button's file
// input and sends it from the preview.
func (u *browserUser) attachByButton(path string) {
	u.t.Helper()
	u.do("choose "+filepath.Base(path), chromedp.SetUploadFiles(chromedp.ID("file-input"), []string{path}))
	u.sendStaged(filepath.Base(path))
}

// sendStaged checks the preview shows name and presses Send file.
func (u *browserUser) sendStaged(name string) {
	u.t.Helper()
	u.waitFor("the preview of "+name, `(name) => !document.getElementById('file-preview').hidden &&
		document.getElementById('file-preview-name').textContent === name && !document.getElementById('file-send').disabled`, name)
	u.do("send "+name, chromedp.Click(chromedp.ID("file-send")))
}

// jsFile is JavaScript that makes a File of data called name, of type typ.
func jsFile(data []byte, name, typ string) string {
	return fmt.Sprintf(`new File([Uint8Array.from(atob(%q), (c) => c.charCodeAt(0))], %q, { type: %q })`,
		base64.StdEncoding.EncodeToString(data), name, typ)
}

// dropFile drops a file on the room, as a drag from the desktop does.
func (u *browserUser) dropFile(data []byte, name, typ string) {
	u.t.Helper()
	browserEval[bool](u, fmt.Sprintf(`(() => {
		const dt = new DataTransfer();
		dt.items.add(%s);
		const room = document.getElementById('room');
		room.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
		return room.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
	})()`, jsFile(data, name, typ)))
	u.sendStaged(name)
}

// pasteFile pastes a file into the composer, as pasting a copied image does.
func (u *browserUser) pasteFile(data []byte, name, typ string) {
	u.t.Helper()
	browserEval[bool](u, fmt.Sprintf(`(() => {
		const dt = new DataTransfer();
		dt.items.add(%s);
		return document.getElementById('composer-input').dispatchEvent(
			new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
	})()`, jsFile(data, name, typ)))
	u.sendStaged(name)
}

// waitImage waits until a confirmed message from author shows the image
// called name, loaded, in a box of the shape w:h.
func (u *browserUser) waitImage(author, name string, w, h int) {
	u.t.Helper()
	u.waitFor(fmt.Sprintf("image %q from %s", name, author), `(author, name, w, h) =>
		[...document.querySelectorAll('#message-list .file-msg')].some((li) => {
			const img = li.querySelector('.thumb-img');
			const box = li.querySelector('.thumb');
			return li.dataset.author === author && !li.classList.contains('pending') && img && img.alt === name &&
				img.complete && img.naturalWidth === w && img.naturalHeight === h && img.src.startsWith('blob:') &&
				Math.abs(box.clientWidth / box.clientHeight - w / h) < 0.05;
		})`, author, name, w, h)
}

// waitCard waits until a confirmed message from author shows a card for
// name with label as its type and a Download button.
func (u *browserUser) waitCard(author, name, label string) {
	u.t.Helper()
	u.waitFor(fmt.Sprintf("card %q from %s", name, author), `(author, name, label) =>
		[...document.querySelectorAll('#message-list .file-msg')].some((li) =>
			li.dataset.author === author && !li.classList.contains('pending') &&
			li.querySelector('.file-card .file-name')?.textContent === name &&
			li.querySelector('.file-type')?.textContent === label && li.querySelector('button.download'))`, author, name, label)
}

// allowDownloads saves u's downloads, under their own names, in a
// directory of the test's, and returns it.
func (u *browserUser) allowDownloads() string {
	u.t.Helper()
	dir := u.t.TempDir()
	if _, err := chromedp.CallBrowser(u.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir,
		BrowserContextID: chromedp.FromContext(u.ctx).BrowserContextID,
	}); err != nil {
		u.t.Fatalf("%s: allow downloads: %v", u.name, err)
	}
	return dir
}

// download presses Download on the card of name and returns the bytes
// saved in dir.
func (u *browserUser) download(dir, name string) []byte {
	u.t.Helper()
	browserEval[bool](u, fmt.Sprintf(`(() => {
		const li = [...document.querySelectorAll('#message-list .file-msg')]
			.find((li) => li.querySelector('.file-card .file-name')?.textContent === %q);
		li.querySelector('button.download').click();
		return true;
	})()`, name))
	u.waitFor("the download of "+name, `(name) => [...document.querySelectorAll('#message-list .file-msg')]
		.some((li) => li.querySelector('.file-card .file-name')?.textContent === name &&
			li.querySelector('.file-status').textContent === 'Downloaded')`, name)
	p := filepath.Join(dir, name)
	deadline := time.Now().Add(e2eTimeout)
	for {
		data, err := os.ReadFile(p)
		if err == nil {
			if _, err := os.Stat(p + ".crdownload"); os.IsNotExist(err) {
				return data
			}
		}
		if time.Now().After(deadline) {
			u.t.Fatalf("%s: %s was not saved in %s", u.name, name, dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBrowserFilesShareByButtonDropAndPaste(t *testing.T) {
	es := startE2EServer(t, nil)
	alice, bob, code := aliceAndBob(t, es)
	alice.waitPeople("Alice", "Bob")

	// The button: a photo.
	photo := pngFile(t, 300, 200)
	alice.attachByButton(writeTemp(t, "beach.png", photo))
	bob.waitImage("Alice", "beach.png", 300, 200)
	alice.waitImage("Alice", "beach.png", 300, 200)

	// A drop: a PDF becomes a card, and its download is the same file.
	pdf := append([]byte("%PDF-1.4\n"), randomBytes(200<<10)...)
	bob.dropFile(pdf, "minutes.pdf", "application/pdf")
	alice.waitCard("Bob", "minutes.pdf", "PDF")
	dir := alice.allowDownloads()
	if got := alice.download(dir, "minutes.pdf"); sha256.Sum256(got) != sha256.Sum256(pdf) {
		t.Errorf("downloaded %d bytes, not the %d sent", len(got), len(pdf))
	}

	// A paste: a copied screenshot.
	shot := pngFile(t, 120, 240)
	bob.pasteFile(shot, "image.png", "image/png")
	alice.waitImage("Bob", "image.png", 120, 240)

	// The full-size view opens on a click and closes with Escape and with
	// its button.
	alice.do("open the image", chromedp.Click(chromedp.CSS(`#message-list .thumb`)))
	alice.waitFor("the viewer", `() => document.getElementById('viewer').open &&
		document.getElementById('viewer-img').naturalWidth === 300`)
	alice.do("press Escape", pressKey("Escape", 27))
	alice.waitFor("the viewer to close", `() => !document.getElementById('viewer').open`)
	alice.do("open the image again", chromedp.Click(chromedp.CSS(`#message-list .thumb`)))
	alice.do("close it", chromedp.Click(chromedp.ID("viewer-close")))
	alice.waitFor("the viewer to close", `() => !document.getElementById('viewer').open`)

	// A newcomer gets the earlier files from the history.
	carol := newBrowserUser(t, startBrowser(t), "carol")
	carol.joinFromLink(es.URL+"/r/"+code, "Carol")
	carol.waitImage("Alice", "beach.png", 300, 200)
	carol.waitCard("Bob", "minutes.pdf", "PDF")
	carol.waitImage("Bob", "image.png", 120, 240)
	alice.say("all three arrived")
	bob.waitMessage("Alice", "all three arrived")
	alice.waitMessage("Alice", "all three arrived")
	alice.screenshot("files-desktop.png")
}

func TestBrowserLargeFileShowsProgress(t *testing.T) {
	es := startE2EServer(t, nil)
	alice, bob, _ := aliceAndBob(t, es)
	alice.waitPeople("Alice", "Bob")
	watch := `window.__progress = new Set();
		new MutationObserver(() => document.querySelectorAll('#message-list .file-progress').forEach((p) => {
			if (!p.hidden) window.__progress.add(p.closest('.file-msg').classList.contains('pending') ? 'upload' : p.value);
		})).observe(document.getElementById('message-list'), { subtree: true, attributes: true, childList: true });
		true`
	browserEval[bool](alice, watch)
	browserEval[bool](bob, watch)
	data := randomBytes(6 << 20)
	alice.attachByButton(writeTemp(t, "backup.zip", data))
	bob.waitCard("Alice", "backup.zip", "ZIP")
	if !browserEval[bool](alice, `window.__progress.has('upload')`) {
		t.Error("the upload showed no progress bar")
	}
	dir := bob.allowDownloads()
	if got := bob.download(dir, "backup.zip"); sha256.Sum256(got) != sha256.Sum256(data) {
		t.Errorf("downloaded %d bytes, not the %d sent", len(got), len(data))
	}
	if !browserEval[bool](bob, `[...window.__progress].some((v) => typeof v === 'number' && v > 0 && v < 1)`) {
		t.Errorf("the download of 6 MiB showed no progress between 0 and 1: %v", browserEval[[]any](bob, `[...window.__progress]`))
	}
}

func TestBrowserEncryptedFileKeepsItsBytesAndNameFromTheServer(t *testing.T) {
	es := startE2EServer(t, nil)
	alice, bob := sealedPair(t, es)
	aliceWire, bobWire := tapWire(alice), tapWire(bob)
	mark := canary("filecanary")
	name := mark + ".txt"
	data := []byte(strings.Repeat(mark+" is in every line of this file\n", 4000))
	alice.attachByButton(writeTemp(t, name, data))
	bob.waitCard("Alice", name, "TXT")
	dir := bob.allowDownloads()
	if got := bob.download(dir, name); sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("Bob downloaded %d bytes, not the %d sent", len(got), len(data))
	}
	key := alice.roomKey()
	code := browserEval[string](alice, `document.getElementById('room-code').textContent`)
	history := roomHistory(t, es, code)
	_, stored := roomFiles(t, es, code, history)
	stored = append(stored, []byte(strings.Join(history, "\n")))
	if len(stored) < 2 {
		t.Fatalf("the server holds no file")
	}
	places := map[string]string{"server logs": es.logs.String(), "requests the server got": es.requests.String()}
	for i, b := range stored {
		places[fmt.Sprintf("server memory %d", i)] = string(b)
	}
	for who, tap := range map[string]*wireTap{"alice": aliceWire, "bob": bobWire} {
		frames, requests := tap.snapshot()
		places[who+"'s frames"] = strings.Join(frames, "\n")
		places[who+"'s requests"] = strings.Join(requests, "\n")
	}
	for where, text := range places {
		for _, secret := range []string{mark, key} {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds %q", where, secret)
			}
		}
	}
}

func TestBrowserUploadedPagesNeverRun(t *testing.T) {
	es := startE2EServer(t, nil)
	alice, bob, code := aliceAndBob(t, es)
	alice.waitPeople("Alice", "Bob")
	html := []byte(`<!doctype html><title>x</title><script>fetch('/ran-html'); parent.postMessage('ran', '*')</script><img src=x onerror="fetch('/ran-img')">`)
	svg := []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="fetch('/ran-svg')"><script>fetch('/ran-svg-script')</script><circle r="5"/></svg>`)
	alice.dropFile(html, "page.html", "text/html")
	alice.dropFile(svg, "drawing.svg", "image/svg+xml")
	bob.waitCard("Alice", "page.html", "HTML")
	bob.waitCard("Alice", "drawing.svg", "SVG")
	dir := bob.allowDownloads()
	if got := bob.download(dir, "drawing.svg"); !bytes.Equal(got, svg) {
		t.Errorf("the SVG downloaded as %q", got)
	}
	bob.download(dir, "page.html")
	// Opened directly, each is an attachment in a sandbox, never a page.
	ids := browserEval[[]string](alice, `[...document.querySelectorAll('#message-list .file-msg')].map((li) => li.dataset.id)`)
	if len(ids) != 2 {
		t.Fatalf("alice shows %d files, want 2", len(ids))
	}
	held, _ := roomFiles(t, es, code, roomHistory(t, es, code))
	if len(held) != 2 {
		t.Fatalf("the server holds %d files, want 2", len(held))
	}
	for _, id := range held {
		// A link to the file itself is saved, not shown: the page stays.
		browserEval[bool](bob, fmt.Sprintf(`(() => { location.href = %q; return true })()`, "/r/"+code+"/files/"+id))
		bob.waitFor("the download of the file opened by its link", `(n) => document.getElementById('room') && !document.getElementById('room').hidden`, 0)
	}
	bob.open(es.URL + "/r/" + code) // A script that ran in any of them has asked for /ran-… by now.
	if regexp.MustCompile(`(?m)^\S+ /ran-`).MatchString(es.requests.String()) {
		t.Errorf("an uploaded file ran script:\n%s", es.requests)
	}
}

// sealFileAsAnyone seals data in format f1 (docs/files.md) apart from the
// page's code, so that a test checks the page against the format itself.
func sealFileAsAnyone(t *testing.T, secret, room string, data []byte) []byte {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	salt := randomBytes(16)
	key, err1 := hkdf.Key(sha256.New, raw, salt, "file key\n"+room, 32)
	nonce, err2 := hkdf.Key(sha256.New, raw, salt, "file nonce\n"+room, 12)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	const rs = 65536
	out := binary.BigEndian.AppendUint32(salt, rs)
	records := max(1, (len(data)+rs-1)/rs)
	for i := range records {
		plain := append([]byte(nil), data[i*rs:min(len(data), (i+1)*rs)]...)
		plain = append(plain, map[bool]byte{true: 2, false: 1}[i == records-1])
		iv := append([]byte(nil), nonce...)
		binary.BigEndian.PutUint64(iv[4:], binary.BigEndian.Uint64(iv[4:])^uint64(i))
		out = gcm.Seal(out, iv, plain, nil)
	}
	return out
}

// An encrypted file sealed by the format's definition, not the page's
// code, opens in the page; one altered on the way shows so on its card.
func TestBrowserEncryptedFileFormatAndDamage(t *testing.T) {
	es := startE2EServer(t, nil)
	alice, bob := sealedPair(t, es)
	code := browserEval[string](alice, `document.getElementById('room-code').textContent`)
	secret := alice.roomKey()
	eve := dialRoom(t, es, code, "Eve")
	share := func(name string, data, sealed []byte) {
		t.Helper()
		meta, _ := json.Marshal(map[string]any{"f": name, "t": "application/octet-stream", "s": base64.RawURLEncoding.EncodeToString(sealed[:16])})
		if status, _ := eve.upload(es.URL, code, "application/octet-stream", sealAsAnyone(t, secret, code, "Eve", string(meta)), sealed); status != http.StatusCreated {
			t.Fatalf("Eve's upload: %d", status)
		}
	}
	data := randomBytes(150 << 10) // three records
	share("report.bin", data, sealFileAsAnyone(t, secret, code, data))
	bob.waitCard("Eve", "report.bin", "BIN")
	dir := bob.allowDownloads()
	if got := bob.download(dir, "report.bin"); sha256.Sum256(got) != sha256.Sum256(data) {
		t.Errorf("Bob downloaded %d bytes, not the %d sealed", len(got), len(data))
	}
	damaged := sealFileAsAnyone(t, secret, code, data)
	damaged = append(damaged[:20+65553], damaged[20+2*65553:]...) // the middle record taken out
	share("damaged.bin", data, damaged)
	bob.waitCard("Eve", "damaged.bin", "BIN")
	browserEval[bool](bob, `(() => { [...document.querySelectorAll('#message-list .file-msg')]
		.find((li) => li.querySelector('.file-name')?.textContent === 'damaged.bin').querySelector('button.download').click(); return true })()`)
	bob.waitFor("the damaged file's card to say so", `() => [...document.querySelectorAll('#message-list .file-msg')].some((li) =>
		li.querySelector('.file-name')?.textContent === 'damaged.bin' && li.querySelector('.file-status').textContent.includes('could not be decrypted'))`)
	alice.waitCard("Eve", "damaged.bin", "BIN")
	skipUntil[filePayload](eve, typeFile)
}
