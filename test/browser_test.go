//go:build linux

// The browser tests need a native Chromium; chromedp does not build for wasip1.

package test

import (
	"context"
	"fmt"
	"hallway/internal/loadgen"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// These tests drive the embedded web UI in a real headless Chromium against
// the built server, started as an operator starts it. They skip when no
// Chromium is installed, unless E2E=1 demands them. Screenshots go to
// $E2E_ARTIFACTS.

// e2eTimeout bounds each wait in a browser test, so that a bug fails the test
// instead of hanging it. It is never an assertion about speed.
const e2eTimeout = 20 * time.Second

// e2eBrowserStartTimeout bounds the start of Chromium itself.
const e2eBrowserStartTimeout = 60 * time.Second

// e2eServer is the built server behind a loopback proxy of the test's own,
// whose address stays while the server process behind it is replaced (a
// restart) or its connections are cut (a network drop). The proxy records
// every byte the browsers send, which is every request as the server got it.
type e2eServer struct {
	URL      string
	t        *testing.T
	env      []string
	port     string // the server process's own port, behind the proxy
	proxy    *wireProxy
	logs     *serverLogs // everything the server processes printed
	requests *wireLog    // every byte sent to the server
	mu       sync.Mutex
	proc     *loadgen.Process // the server process now running
}

// serverLogs is what every server process of one test printed, in order.
type serverLogs struct {
	mu    sync.Mutex
	procs []*loadgen.Process
}

func (l *serverLogs) add(p *loadgen.Process) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.procs = append(l.procs, p)
}

func (l *serverLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, p := range l.procs {
		b.WriteString(p.Out.String())
	}
	return b.String()
}

// startE2EServer starts the server configured by environ behind a proxy on
// loopback and stops both when the test ends.
func startE2EServer(t *testing.T, environ map[string]string) *e2eServer {
	t.Helper()
	port, err := loadgen.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	es := &e2eServer{t: t, port: port, logs: &serverLogs{}, requests: &wireLog{}}
	for k, v := range environ {
		es.env = append(es.env, k+"="+v)
	}
	es.startProcess()
	es.proxy = startWireProxy(t, "127.0.0.1:"+port, es.requests)
	es.URL = "http://" + es.proxy.addr()
	return es
}

// startProcess starts a server process on es's port and waits until it is
// healthy.
func (es *e2eServer) startProcess() {
	es.t.Helper()
	p, _ := startServerOn(es.t, hallwayBin, es.port, es.env...)
	es.logs.add(p)
	es.mu.Lock()
	es.proc = p
	es.mu.Unlock()
}

// restart replaces the server with a fresh process, as a deploy does: the
// old one closes every WebSocket with 1001 on SIGTERM and its rooms are gone;
// the address stays.
func (es *e2eServer) restart() {
	es.t.Helper()
	es.mu.Lock()
	old := es.proc
	es.mu.Unlock()
	if err := old.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		es.t.Fatalf("stop the server: %v", err)
	}
	select {
	case <-old.Exited:
	case <-time.After(e2eTimeout):
		es.t.Fatalf("the server did not stop on SIGTERM; it printed:\n%s", old.Out.String())
	}
	es.startProcess()
}

// stop ends the server and its address: the site is gone.
func (es *e2eServer) stop() {
	es.proxy.close()
	es.mu.Lock()
	defer es.mu.Unlock()
	es.proc.Stop()
}

// dropConnections cuts every TCP connection without a close frame, as a
// network failure does; the server and its rooms stay.
func (es *e2eServer) dropConnections() {
	es.proxy.closeAll()
}

// browserExecPath finds Chromium or Chrome on PATH. It skips the test when
// there is none, and fails it when E2E=1 says the browser tests must run.
func browserExecPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found on PATH (chromium, chromium-browser, google-chrome); install it, e.g. apt-get install chromium"
	if os.Getenv("E2E") == "1" {
		t.Fatal("E2E=1 but " + msg)
	}
	t.Skip(msg + "; set E2E=1 to make this a failure")
	return ""
}

// startBrowser starts a headless Chromium for this test, with any extra
// flags, and closes it gracefully when the test ends. Users get their own
// browser contexts in it.
func startBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := browserExecPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], extra...)
	opts = append(opts,
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("lang", "en-US"),
	)
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, _ := chromedp.NewContext(allocCtx)

	// The first Do starts Chromium and binds it to ctx, so it gets no step
	// timeout; a timer guards against a start that hangs.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			allocCancel()
			t.Fatalf("start Chromium %s: %v", path, err)
		}
	case <-time.After(e2eBrowserStartTimeout):
		allocCancel()
		t.Fatalf("Chromium %s did not start within %v", path, e2eBrowserStartTimeout)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(ctx, e2eTimeout)
		defer cancel()
		if err := chromedp.Cancel(cctx); err != nil {
			t.Logf("close Chromium: %v", err)
		}
		allocCancel() // waits for the process to exit
	})
	return ctx
}

// e2eRecorder runs in every page before its own scripts. It records script
// errors and CSP violations, and every state the status line and the
// connection banner went through, so tests can assert on them afterwards
// without racing the page.
const e2eRecorder = `
window.__e2e = { problems: [], statuses: [], banners: [] };
addEventListener('error', (e) => __e2e.problems.push('error: ' + e.message));
addEventListener('unhandledrejection', (e) => __e2e.problems.push('unhandled rejection: ' + e.reason));
document.addEventListener('securitypolicyviolation', (e) => __e2e.problems.push('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));
document.addEventListener('DOMContentLoaded', () => {
  const status = document.getElementById('status');
  const banner = document.getElementById('banner');
  if (!status || !banner) return;
  new MutationObserver(() => __e2e.statuses.push(status.dataset.state + ':' + status.textContent))
    .observe(status, { attributes: true, childList: true, characterData: true, subtree: true });
  new MutationObserver(() => { if (!banner.hidden) __e2e.banners.push(banner.textContent.replace(/\s+/g, ' ').trim()); })
    .observe(banner, { attributes: true, childList: true, characterData: true, subtree: true });
});
`

// browserUser is one person: a tab in a browser context of its own, so that
// cookies, storage and the clipboard are not shared with anyone else.
type browserUser struct {
	t    *testing.T
	name string
	ctx  context.Context
	// sealed makes the rooms this person starts end-to-end encrypted, as
	// the start screen offers by default; false starts ordinary rooms.
	sealed bool
}

// newBrowserUser opens a tab in a fresh browser context of b.
func newBrowserUser(t *testing.T, b context.Context, name string) *browserUser {
	t.Helper()
	ctx, _ := chromedp.NewContext(b, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil { // Creates the tab; bound to ctx, so no step timeout.
		t.Fatalf("%s: open tab: %v", name, err)
	}
	u := &browserUser{t: t, name: name, ctx: ctx}
	t.Cleanup(func() {
		if !t.Failed() {
			u.checkNoProblems()
		}
		cctx, cancel := context.WithTimeout(ctx, e2eTimeout)
		defer cancel()
		chromedp.Cancel(cctx)
	})
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: e2eRecorder}); err != nil {
		t.Fatalf("%s: add recorder: %v", name, err)
	}
	return u
}

// checkNoProblems fails the test if the page threw or broke its CSP.
func (u *browserUser) checkNoProblems() {
	u.t.Helper()
	problems := browserEval[[]string](u, `window.__e2e ? window.__e2e.problems : []`)
	for _, p := range problems {
		u.t.Errorf("%s: page problem: %s", u.name, p)
	}
}

// step returns a context for one action, bounded by e2eTimeout.
func (u *browserUser) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(u.ctx, e2eTimeout)
}

// do runs actions and fails the test, with a screenshot, if one fails.
func (u *browserUser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := u.step()
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		u.fail(what, err)
	}
}

// fail saves what the user sees and ends the test.
func (u *browserUser) fail(what string, err error) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 5*time.Second)
	defer cancel()
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 3000) : ''`))
	if png, serr := chromedp.Run(ctx, chromedp.CaptureScreenshot()); serr == nil {
		name := strings.NewReplacer("/", "-", " ", "-").Replace(u.t.Name() + "-" + u.name + "-failure.png")
		p := filepath.Join(e2eArtifacts(u.t), name)
		if os.WriteFile(p, png, 0o644) == nil {
			u.t.Logf("%s: screenshot of the failure: %s", u.name, p)
		}
	}
	u.t.Fatalf("%s: %s: %v\npage text:\n%s", u.name, what, err, text)
}

// browserEval evaluates a JavaScript expression in u's page.
func browserEval[T any](u *browserUser, expr string) T {
	u.t.Helper()
	ctx, cancel := u.step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, func(p *runtime.EvaluateParams) {
		p.AwaitPromise = new(true)
	}))
	if err != nil {
		u.fail("evaluate "+expr, err)
	}
	return v
}

// waitFor waits until the JavaScript function fn returns a truthy value for
// args; what says, in the failure message, what was awaited.
func (u *browserUser) waitFor(what, fn string, args ...any) {
	u.t.Helper()
	ctx, cancel := u.step()
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.PollFunction[chromedp.Void](fn,
		chromedp.WithPollingArgs(args...),
		chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(e2eTimeout)))
	if err != nil {
		u.fail("waiting for "+what, err)
	}
}

// open navigates to url.
// The page it leaves is checked first, since the recorder starts afresh
// with each document.
func (u *browserUser) open(url string) {
	u.t.Helper()
	u.checkNoProblems()
	u.do("open "+url, chromedp.Navigate(url))
}

// reload reloads the page, checking the one it leaves as open does.
func (u *browserUser) reload() {
	u.t.Helper()
	u.checkNoProblems()
	u.do("reload", chromedp.Reload())
}

// pressEnter presses Enter in the focused element without a char event, as
// a keyboard does when the page handles the keydown.
var pressEnter = pressKey("Enter", 13)

// pressTab moves the focus on, as the Tab key does.
var pressTab = pressKey("Tab", 9)

// pressKey presses and releases one key that types no character.
func pressKey(key string, keyCode int64) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: typ, Key: key, Code: key, WindowsVirtualKeyCode: keyCode, NativeVirtualKeyCode: keyCode,
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// tabTo presses Tab until the element with id has the focus, as a person
// using only the keyboard does.
func (u *browserUser) tabTo(id string) {
	u.t.Helper()
	for range 40 {
		if browserEval[string](u, `document.activeElement ? document.activeElement.id : ''`) == id {
			return
		}
		u.do("press Tab", pressTab)
	}
	u.fail("Tab to #"+id, fmt.Errorf("forty presses of Tab never reached it"))
}

// unlabelledControls lists the visible controls a screen reader could not
// name: no label, aria-label, aria-labelledby or button text.
const unlabelledControls = `() => [...document.querySelectorAll('button, input, textarea, select')]
	.filter((el) => el.offsetParent !== null && el.type !== 'hidden')
	.filter((el) => !(
		(el.labels && [...el.labels].some((l) => l.textContent.trim())) ||
		(el.getAttribute('aria-label') || '').trim() ||
		(el.getAttribute('aria-labelledby') || '').split(' ').some((id) => id && document.getElementById(id) && document.getElementById(id).textContent.trim()) ||
		(el.tagName === 'BUTTON' && el.textContent.trim())))
	.map((el) => el.id || el.outerHTML.slice(0, 80))`

// checkLabels fails the test for every visible control without a name.
func (u *browserUser) checkLabels(screen string) {
	u.t.Helper()
	for _, c := range browserEval[[]string](u, "("+unlabelledControls+")()") {
		u.t.Errorf("%s: on the %s, control %s has no accessible name", u.name, screen, c)
	}
}

// type types text into the composer and presses Enter to send it.
func (u *browserUser) say(text string) {
	u.t.Helper()
	u.do("say "+text,
		chromedp.SendKeys(chromedp.CSS("#composer-input"), text),
		pressEnter,
	)
}

// waitJoined waits until the room screen shows a live connection.
func (u *browserUser) waitJoined() {
	u.t.Helper()
	u.waitFor("the room to be connected",
		`() => !document.getElementById('room').hidden && document.getElementById('status').dataset.state === 'open'`)
}

// waitMessage waits until a confirmed message from author with text shows.
// A message keeps the text as written in data-text; what it shows may be
// formatted (markdown_browser_test.go checks that).
func (u *browserUser) waitMessage(author, text string) {
	u.t.Helper()
	u.waitFor(fmt.Sprintf("message %q from %s", text, author), `(author, text) =>
		[...document.querySelectorAll('#message-list .msg')].some((li) =>
			li.dataset.author === author && li.dataset.text === text &&
			!li.classList.contains('pending') && !li.classList.contains('failed'))`, author, text)
}

// waitSystem waits for a system line containing text.
func (u *browserUser) waitSystem(text string) {
	u.t.Helper()
	u.waitFor(fmt.Sprintf("system line %q", text), `(text) =>
		[...document.querySelectorAll('#message-list .sys')].some((li) => li.textContent.includes(text))`, text)
}

// waitPeople waits until the people list shows exactly names (any order)
// and the count says len(names).
func (u *browserUser) waitPeople(names ...string) {
	u.t.Helper()
	u.waitFor(fmt.Sprintf("people %v", names), `(...names) => {
		const shown = [...document.querySelectorAll('#people-list .person')].map((e) => e.textContent).sort();
		return document.getElementById('people-count').textContent === String(names.length) &&
			JSON.stringify(shown) === JSON.stringify([...names].sort());
	}`, stringsToAny(names)...)
}

// messages returns "author: text" for every chat message shown, in order,
// with each message's text as written.
func (u *browserUser) messages() []string {
	u.t.Helper()
	return browserEval[[]string](u, `[...document.querySelectorAll('#message-list .msg')]
		.map((li) => li.dataset.author + ': ' + li.dataset.text)`)
}

// screenshot saves the viewport as a PNG in the artifacts directory.
func (u *browserUser) screenshot(name string) string {
	u.t.Helper()
	ctx, cancel := u.step()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		u.fail("screenshot "+name, err)
	}
	p := filepath.Join(e2eArtifacts(u.t), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		u.t.Fatalf("write %s: %v", p, err)
	}
	u.t.Logf("screenshot: %s", p)
	return p
}

// e2eArtifacts is where screenshots go: $E2E_ARTIFACTS, or hallway-e2e in
// the system's temporary directory.
func e2eArtifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("E2E_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "hallway-e2e")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts directory: %v", err)
	}
	return dir
}

func stringsToAny(s []string) []any {
	a := make([]any, len(s))
	for i, v := range s {
		a[i] = v
	}
	return a
}

// createRoomFromStart is what a person does on /: type a name and start a
// room. It returns the room code shown in the room.
func (u *browserUser) createRoomFromStart(baseURL, name, button string) string {
	u.t.Helper()
	u.open(baseURL + "/")
	u.do("wait for the start screen", chromedp.WaitVisible(chromedp.ID("home-name")))
	if browserEval[bool](u, `document.getElementById('home-e2ee').checked`) != u.sealed {
		u.do("choose whether to encrypt", chromedp.Click(chromedp.ID("home-e2ee")))
	}
	u.do("start a room",
		chromedp.SendKeys(chromedp.ID("home-name"), name),
		chromedp.Click(chromedp.ID(button)),
	)
	u.waitJoined()
	code := browserEval[string](u, `document.getElementById('room-code').textContent`)
	if path := browserEval[string](u, `location.pathname`); path != "/r/"+code {
		u.t.Fatalf("%s: address is %q, want /r/%s", u.name, path, code)
	}
	return code
}

// joinFromLink opens a room link as a person who has no name remembered yet:
// the page asks for one first.
func (u *browserUser) joinFromLink(link, name string) {
	u.t.Helper()
	u.open(link)
	u.do("join as "+name,
		chromedp.WaitVisible(chromedp.ID("gate-name")),
		chromedp.SendKeys(chromedp.ID("gate-name"), name),
		chromedp.Click(chromedp.CSS("#gate-form button[type=submit]")),
	)
	u.waitJoined()
}

// joinFromStart is what a person does on / with a code or a link someone
// sent them: type a name, paste, press Join.
func (u *browserUser) joinFromStart(baseURL, name, codeOrLink string) {
	u.t.Helper()
	u.open(baseURL + "/")
	u.do("join from the start screen",
		chromedp.WaitVisible(chromedp.ID("join-code")),
		chromedp.SendKeys(chromedp.ID("home-name"), name),
		chromedp.SendKeys(chromedp.ID("join-code"), codeOrLink),
		chromedp.Click(chromedp.CSS("#join-form button[type=submit]")),
	)
	u.waitJoined()
}

// copyLink clicks Copy link, with the clipboard allowed for origin, and
// returns what it copied.
func (u *browserUser) copyLink(origin string) string {
	u.t.Helper()
	for _, perm := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(u.ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: perm}, Setting: browser.PermissionSettingGranted,
			Origin: origin, BrowserContextID: chromedp.FromContext(u.ctx).BrowserContextID,
		}); err != nil {
			u.t.Fatalf("grant %s: %v", perm, err)
		}
	}
	u.do("copy the link", chromedp.Click(chromedp.ID("copy-link")))
	u.waitFor("the copy button to say it copied", `() => document.querySelector('#copy-link .label').textContent === 'Copied'`)
	return browserEval[string](u, `navigator.clipboard.readText()`)
}

// aliceAndBob starts a browser in which Alice starts a room and Bob joins it
// from its link, each in a browser context of their own.
func aliceAndBob(t *testing.T, es *e2eServer) (alice, bob *browserUser, code string) {
	t.Helper()
	b := startBrowser(t)
	alice = newBrowserUser(t, b, "alice")
	code = alice.createRoomFromStart(es.URL, "Alice", "create-room")
	bob = newBrowserUser(t, b, "bob")
	bob.joinFromLink(es.URL+"/r/"+code, "Bob")
	return alice, bob, code
}

func TestBrowserTwoPeopleChat(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	bob := newBrowserUser(t, b, "bob")

	code := alice.createRoomFromStart(es.URL, "Alice", "create-room")

	// Alice copies the link with one click (the clipboard is allowed here).
	link := alice.copyLink(es.URL)
	if want := es.URL + "/r/" + code; link != want {
		t.Fatalf("copied link %q, want %q", link, want)
	}

	// Bob opens the link, is asked for a name, and joins.
	bob.joinFromLink(link, "Bob")
	if got := browserEval[string](bob, `document.getElementById('room-code').textContent`); got != code {
		t.Fatalf("bob sees room code %q, want %q", got, code)
	}
	alice.waitPeople("Alice", "Bob")
	bob.waitPeople("Alice", "Bob")
	alice.waitSystem("Bob joined")

	alice.say("Hi Bob, welcome in!")
	bob.waitMessage("Alice", "Hi Bob, welcome in!")
	alice.waitMessage("Alice", "Hi Bob, welcome in!")
	bob.say("Thanks Alice. Good to be here.")
	alice.waitMessage("Bob", "Thanks Alice. Good to be here.")
	bob.waitMessage("Bob", "Thanks Alice. Good to be here.")

	// Own messages look different from everyone else's, and all show a time.
	for _, u := range []*browserUser{alice, bob} {
		own := browserEval[[]string](u, `[...document.querySelectorAll('#message-list .msg.own')].map((li) => li.dataset.author)`)
		if len(own) != 1 || !strings.EqualFold(own[0], u.name) {
			t.Errorf("%s: own messages by %v, want one by %s", u.name, own, u.name)
		}
		if n := browserEval[int](u, `[...document.querySelectorAll('#message-list .msg time')].filter((e) => e.textContent.trim() !== '').length`); n != 2 {
			t.Errorf("%s: %d messages show a time, want 2", u.name, n)
		}
	}
	if got := browserEval[string](bob, `localStorage.getItem('hallway.name')`); got != "Bob" {
		t.Errorf("bob's remembered name is %q, want Bob", got)
	}

	// Bob leaves; Alice sees the count drop and a quiet notice.
	bob.do("leave", chromedp.Click(chromedp.ID("leave")))
	bob.do("back on the start screen", chromedp.WaitVisible(chromedp.ID("create-room")))
	if got := browserEval[string](bob, `document.getElementById('home-name').value`); got != "Bob" {
		t.Errorf("start screen offers name %q, want the remembered Bob", got)
	}
	alice.waitPeople("Alice")
	alice.waitSystem("Bob left")

	// With his name remembered, the link takes Bob straight back in: nobody
	// fills in the "join as" form this time.
	bob.open(link)
	bob.waitJoined()
	alice.waitPeople("Alice", "Bob")
}

func TestBrowserHistoryReplayInOrder(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	code := alice.createRoomFromStart(es.URL, "Alice", "create-room")
	said := []string{"first", "second", "third, with a\nline break"}
	for _, m := range said {
		alice.do("fill the composer", chromedp.SetValue(chromedp.ID("composer-input"), m), chromedp.Focus(chromedp.ID("composer-input")), pressEnter)
		alice.waitMessage("Alice", m)
	}

	carol := newBrowserUser(t, b, "carol")
	carol.joinFromStart(es.URL, "Carol", "  "+es.URL+"/r/"+strings.ToUpper(code)+"  ") // pasted, untidy
	if got := browserEval[string](carol, `location.pathname`); got != "/r/"+code {
		t.Errorf("carol's address is %q, want /r/%s", got, code)
	}
	carol.waitMessage("Alice", said[2])
	want := []string{"Alice: first", "Alice: second", "Alice: third, with a\nline break"}
	if got := carol.messages(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("carol sees %q, want the history in order %q", got, want)
	}
	// The replay comes before Carol's own arrival; live traffic after it.
	alice.say("live now")
	carol.waitMessage("Alice", "live now")
	order := browserEval[[]string](carol, `[...document.querySelectorAll('#message-list > li')]
		.map((li) => li.classList.contains('sys') ? 'sys: ' + li.querySelector('.sys-text').textContent : li.querySelector('.text').textContent)
		.filter((s) => !s.startsWith('sys: ') || s.includes('joined'))`)
	wantOrder := []string{"first", "second", "third, with a\nline break", "sys: Carol joined", "live now"}
	if strings.Join(order, "|") != strings.Join(wantOrder, "|") {
		t.Fatalf("carol's conversation is %q, want %q", order, wantOrder)
	}
}

func TestBrowserMessagesAreText(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	mallory := newBrowserUser(t, b, "mallory")
	code := mallory.createRoomFromStart(es.URL, "Mallory", "create-room")
	victim := newBrowserUser(t, b, "victim")
	victim.joinFromLink(es.URL+"/r/"+code, "Victim")

	attacks := []string{
		`<img src=x onerror="window.__pwned=1">`,
		`<script>window.__pwned=2</script>`,
		`<a href="javascript:window.__pwned=3">click</a> javascript:alert(1) and https://example.com/ok?a=1&b=<2>.`,
	}
	for _, m := range attacks {
		mallory.do("send markup", chromedp.SetValue(chromedp.ID("composer-input"), m), chromedp.Focus(chromedp.ID("composer-input")), pressEnter)
		victim.waitMessage("Mallory", m)
		mallory.waitMessage("Mallory", m)
	}
	for _, u := range []*browserUser{mallory, victim} {
		got := browserEval[map[string]any](u, `({
			pwned: window.__pwned === undefined ? 0 : window.__pwned,
			imgs: document.querySelectorAll('#message-list img').length,
			scripts: document.querySelectorAll('#message-list script, body script:not([src])').length,
			links: [...document.querySelectorAll('#message-list a')].map((a) => [a.href, a.rel, a.target].join(' ')),
		})`)
		if got["pwned"] != float64(0) || got["imgs"] != float64(0) || got["scripts"] != float64(0) {
			t.Errorf("%s: markup in a message became page content: %v", u.name, got)
		}
		links, _ := got["links"].([]any)
		if len(links) != 1 || links[0] != "https://example.com/ok?a=1&b= noopener noreferrer nofollow _blank" {
			t.Errorf("%s: links %v, want only the https one, opening with noopener noreferrer nofollow", u.name, links)
		}
	}
}

func TestBrowserReconnectsAfterRestart(t *testing.T) {
	es := startE2EServer(t, nil)
	alice, bob, code := aliceAndBob(t, es)
	alice.say("before the restart")
	bob.waitMessage("Alice", "before the restart")

	es.restart() // Every socket closes with 1001; the new server has no rooms.

	for _, u := range []*browserUser{alice, bob} {
		u.waitFor("a reconnect", `() => __e2e.statuses.some((s) => s.includes('Reconnecting')) &&
			document.getElementById('status').dataset.state === 'open'`)
	}
	alice.waitPeople("Alice", "Bob")
	bob.waitPeople("Alice", "Bob")
	for _, u := range []*browserUser{alice, bob} {
		// Quiet: no alarming banner, and the messages from before are still on screen.
		if banners := browserEval[[]string](u, `__e2e.banners`); len(banners) > 0 {
			t.Errorf("%s: a restart showed banners %q, want a quiet reconnect", u.name, banners)
		}
		if got := browserEval[string](u, `location.pathname`); got != "/r/"+code {
			t.Errorf("%s: address changed to %q (a reload?)", u.name, got)
		}
	}
	bob.say("after the restart")
	alice.waitMessage("Bob", "after the restart")
	bob.waitMessage("Bob", "after the restart")
	alice.say("and back again")
	bob.waitMessage("Alice", "and back again")
	if got := bob.messages(); strings.Join(got, "|") != "Alice: before the restart|Bob: after the restart|Alice: and back again" {
		t.Errorf("bob sees %q", got)
	}
}

func TestBrowserReconnectsAfterDropWithoutDuplicates(t *testing.T) {
	es := startE2EServer(t, nil)
	alice, bob, _ := aliceAndBob(t, es)
	alice.say("one")
	bob.say("two")
	alice.waitMessage("Bob", "two")
	bob.waitMessage("Bob", "two")

	es.dropConnections() // No close frame: the page must notice and come back.

	for _, u := range []*browserUser{alice, bob} {
		u.waitFor("the lost connection to be shown", `() => __e2e.banners.some((b) => b.includes('Connection lost'))`)
		u.waitSystem("Reconnected as " + map[string]string{"alice": "Alice", "bob": "Bob"}[u.name])
		u.waitJoined()
	}
	alice.waitPeople("Alice", "Bob")
	alice.say("three")
	bob.waitMessage("Alice", "three")
	alice.waitMessage("Alice", "three")
	want := "Alice: one|Bob: two|Alice: three"
	for _, u := range []*browserUser{alice, bob} {
		// The history replay after the reconnect resent one and two.
		if got := u.messages(); strings.Join(got, "|") != want {
			t.Errorf("%s sees %q, want %q without duplicates", u.name, got, want)
		}
	}
}

func TestBrowserRateLimitedMessageFails(t *testing.T) { rateLimitedMessageFails(t, false) }

// rateLimitedMessageFails has a message refused as too fast, retried,
// refused again and discarded, in an ordinary or an encrypted (sealed) room.
func rateLimitedMessageFails(t *testing.T, sealed bool) {
	es := startE2EServer(t, map[string]string{"MESSAGE_RATE": "0.01", "MESSAGE_BURST": "1"})
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	alice.sealed = sealed
	alice.createRoomFromStart(es.URL, "Alice", "create-room")
	alice.say("this one goes through")
	alice.waitMessage("Alice", "this one goes through")
	alice.say("this one is too soon")

	failed := `() => {
		const li = [...document.querySelectorAll('#message-list .msg.failed')]
			.find((li) => li.querySelector('.text').textContent === 'this one is too soon');
		return li && li.querySelector('.state').textContent.includes('too fast') && li.querySelector('button.retry');
	}`
	alice.waitFor("the message to be marked failed with the reason", failed)
	first := browserEval[string](alice, `document.querySelector('#message-list .msg.failed').dataset.clientId`)
	alice.do("retry", chromedp.Click(chromedp.CSS("#message-list .msg.failed button.retry")))
	// Still limited: the retry is sent under a new client id, and the
	// server's refusal of that id marks it failed again with the reason.
	alice.waitFor("the retry to fail again under a new client id", `(first) => {
		const li = document.querySelector('#message-list .msg.failed');
		return li && li.dataset.clientId && li.dataset.clientId !== first && (`+failed+`)();
	}`, first)
	if n := browserEval[int](alice, `document.querySelectorAll('#message-list .msg').length`); n != 2 {
		t.Errorf("%d messages shown, want 2 (a retry must not duplicate)", n)
	}
	alice.do("discard", chromedp.Click(chromedp.CSS("#message-list .msg.failed button.discard")))
	if got := alice.messages(); strings.Join(got, "|") != "Alice: this one goes through" {
		t.Errorf("after discarding, messages are %q", got)
	}
}

func TestBrowserComposer(t *testing.T) {
	es := startE2EServer(t, map[string]string{"MAX_MESSAGE_BYTES": "40"})
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	alice.createRoomFromStart(es.URL, "Alice", "create-room")

	// Shift+Enter adds a line break; Enter sends.
	alice.do("type two lines",
		chromedp.SendKeys(chromedp.ID("composer-input"), "line one"),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierShift)),
		chromedp.SendKeys(chromedp.ID("composer-input"), "line two"),
		pressEnter,
	)
	alice.waitMessage("Alice", "line one\nline two")
	if v := browserEval[string](alice, `document.getElementById('composer-input').value`); v != "" {
		t.Errorf("composer holds %q after sending, want it empty", v)
	}

	// The counter counts UTF-8 bytes and warns near the limit of 40.
	counter := func() map[string]any {
		return browserEval[map[string]any](alice, `({
			hidden: document.getElementById('counter').hidden,
			text: document.getElementById('counter').textContent,
			over: document.getElementById('counter').classList.contains('over'),
			disabled: document.getElementById('send').disabled,
		})`)
	}
	alice.do("type a short message", chromedp.SendKeys(chromedp.ID("composer-input"), "short"))
	if c := counter(); c["hidden"] != true {
		t.Errorf("counter shown for a short message: %v", c)
	}
	alice.do("type near the limit", chromedp.SendKeys(chromedp.ID("composer-input"), " and then ééééééééééé")) // 5+10+22 = 37 bytes
	if c := counter(); c["hidden"] != false || c["text"] != "3 bytes left" || c["over"] != false {
		t.Errorf("near the limit the counter is %v, want it showing 3 bytes left", c)
	}
	alice.do("type past the limit", chromedp.SendKeys(chromedp.ID("composer-input"), "éé"))
	if c := counter(); c["text"] != "1 byte over the limit" || c["over"] != true || c["disabled"] != true {
		t.Errorf("past the limit the counter is %v, want it over and send disabled", c)
	}
	alice.do("press Enter past the limit", pressEnter)
	if n := browserEval[int](alice, `document.querySelectorAll('#message-list .msg').length`); n != 1 {
		t.Errorf("%d messages after Enter past the limit, want the long one not sent", n)
	}
}

func TestBrowserKeyboardOnly(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	dana := newBrowserUser(t, b, "Dana")
	dana.open(es.URL + "/")
	dana.do("wait for the start screen", chromedp.WaitVisible(chromedp.ID("home-name")))
	dana.checkLabels("start screen")

	// Only keys from here on: Tab to the name, type it, Tab to the button,
	// Enter.
	dana.tabTo("home-name")
	dana.do("type a name", chromedp.KeyEvent("Dana"))
	dana.tabTo("create-room")
	dana.do("start a room with Enter", chromedp.KeyEvent("\r")) // keydown, keypress, keyup, as a keyboard sends
	dana.waitJoined()
	dana.checkLabels("room")
	if got := browserEval[string](dana, `document.getElementById('messages').getAttribute('aria-live')`); got != "polite" {
		t.Errorf("message list aria-live = %q, want polite: a screen reader should read new messages", got)
	}
	dana.tabTo("composer-input")
	dana.do("type and send with Enter", chromedp.KeyEvent("typed, never clicked"), pressEnter)
	dana.waitMessage("Dana", "typed, never clicked")
	dana.tabTo("copy-link") // Every control in the bar is reachable too.
	dana.tabTo("leave")
}

func TestBrowserUnreadCountInTitle(t *testing.T) {
	es := startE2EServer(t, nil)
	alice, bob, _ := aliceAndBob(t, es)

	// Headless tabs are always visible, so Bob's page is told it is hidden.
	setHidden := func(hidden bool) {
		browserEval[chromedp.Void](bob, fmt.Sprintf(`Object.defineProperty(document, 'hidden', { configurable: true, get: () => %t });
			document.dispatchEvent(new Event('visibilitychange'))`, hidden))
	}
	setHidden(true)
	alice.say("are you there?")
	alice.say("hello?")
	bob.waitMessage("Alice", "hello?")
	bob.waitFor("the unread count in the title", `() => document.title === '(2) Hallway'`)
	setHidden(false)
	bob.waitFor("the title to be plain again", `() => document.title === 'Hallway'`)
}

func TestBrowserPrivateRoomTurnsAwayAThirdPerson(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	code := alice.createRoomFromStart(es.URL, "Alice", "create-private")
	alice.waitSystem("Private room")
	bob := newBrowserUser(t, b, "bob")
	bob.joinFromLink(es.URL+"/r/"+code, "Bob")
	carol := newBrowserUser(t, b, "carol")
	carol.open(es.URL + "/r/" + code)
	carol.do("join as Carol",
		chromedp.WaitVisible(chromedp.ID("gate-name")),
		chromedp.SendKeys(chromedp.ID("gate-name"), "Carol"),
		chromedp.Click(chromedp.CSS("#gate-form button[type=submit]")),
	)
	carol.waitFor("the room-full reason", `() => !document.getElementById('banner').hidden &&
		document.getElementById('banner-text').textContent.includes('full') &&
		document.getElementById('status').dataset.state === 'stopped'`)
	alice.waitPeople("Alice", "Bob")
	// A refusal is not retried in a loop: the page stays stopped until Carol acts.
	statuses := browserEval[[]string](carol, `__e2e.statuses.filter((s) => s.startsWith('connecting'))`)
	if len(statuses) > 1 {
		t.Errorf("carol's page tried %d times after a refusal: %q", len(statuses), statuses)
	}
}

// TestBrowserScreenshots writes phone (360x740) and desktop (1280x800)
// pictures of the start screen and of a conversation, light and dark.
func TestBrowserScreenshots(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	maya := newBrowserUser(t, b, "maya")
	maya.do("desktop size", chromedp.EmulateViewport(1280, 800), setColorScheme("light"))
	maya.open(es.URL + "/")
	maya.do("start screen", chromedp.WaitVisible(chromedp.ID("create-room")))
	maya.screenshot("start-desktop.png")
	code := maya.createRoomFromStart(es.URL, "Maya", "create-room")

	jonas := newBrowserUser(t, b, "jonas")
	jonas.joinFromLink(es.URL+"/r/"+code, "Jonas")
	priya := newBrowserUser(t, b, "priya")
	priya.joinFromLink(es.URL+"/r/"+code, "Priya")
	script := []struct {
		who  *browserUser
		name string
		text string
	}{
		{jonas, "Jonas", "Morning! Is the design review still at 10?"},
		{maya, "Maya", "Yes, same room as last week. I'll bring the prototypes."},
		{maya, "Maya", "Printed ones too, for once."},
		{priya, "Priya", "Running about 5 minutes late, start without me."},
		{jonas, "Jonas", "Agenda and notes are here: https://example.com/review-notes"},
		{maya, "Maya", "Perfect, thanks. See you both there."},
	}
	for _, line := range script {
		line.who.do("say", chromedp.SetValue(chromedp.ID("composer-input"), line.text), chromedp.Focus(chromedp.ID("composer-input")), pressEnter)
		maya.waitMessage(line.name, line.text)
	}
	maya.waitPeople("Jonas", "Maya", "Priya")
	maya.do("type a draft", chromedp.SendKeys(chromedp.ID("composer-input"), "On my way"))
	maya.screenshot("room-desktop.png") // docs/screenshot.png is a copy of this one.

	maya.do("phone size", chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
	maya.waitFor("the phone layout", `() => window.innerWidth === 360`)
	maya.do("scroll to the end", chromedp.Evaluate[chromedp.Void](`document.getElementById('messages').scrollTop = 1e6`))
	maya.screenshot("room-phone.png")
	maya.do("open the people list", chromedp.Click(chromedp.ID("people-toggle")))
	maya.screenshot("room-phone-people.png")
	maya.do("close the people list", chromedp.Click(chromedp.ID("people-close")))

	maya.do("dark", setColorScheme("dark"))
	maya.screenshot("room-phone-dark.png")
	maya.do("desktop size", chromedp.EmulateViewport(1280, 800))
	maya.waitFor("the desktop layout", `() => window.innerWidth === 1280`)
	maya.screenshot("room-desktop-dark.png")

	newcomer := newBrowserUser(t, b, "newcomer")
	newcomer.do("phone size", chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch), setColorScheme("light"))
	newcomer.open(es.URL + "/")
	newcomer.do("start screen", chromedp.WaitVisible(chromedp.ID("create-room")))
	newcomer.screenshot("start-phone.png")
	newcomer.open(es.URL + "/r/" + code)
	newcomer.do("join screen", chromedp.WaitVisible(chromedp.ID("gate-name")))
	newcomer.screenshot("join-phone.png")
}

// setColorScheme emulates prefers-color-scheme, with reduced motion so that
// no colour transition is caught half-way in a screenshot.
func setColorScheme(scheme string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{
				{Name: "prefers-color-scheme", Value: scheme},
				{Name: "prefers-reduced-motion", Value: "reduce"},
			},
		})
		return err
	})
}
