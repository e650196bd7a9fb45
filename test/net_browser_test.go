//go:build linux

package test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// The room on real networks, in a real browser: a person whose network goes
// away, a server that stops answering, and resuming where the page left off.

// setOffline takes u's network away, or gives it back, as Chromium's
// DevTools do: requests fail and the page gets offline and online events.
func (u *browserUser) setOffline(offline bool) {
	u.t.Helper()
	u.do(fmt.Sprintf("set offline %v", offline), chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, t, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{Offline: offline, DownloadThroughput: -1, UploadThroughput: -1}},
		}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.OverrideNetworkState, network.OverrideNetworkStateParams{
			Offline: offline, DownloadThroughput: -1, UploadThroughput: -1,
		})
		return err
	}))
}

// waitLong is waitFor with a bound of its own, for waits that are long by
// design, such as a dead connection's detection.
func (u *browserUser) waitLong(what string, bound time.Duration, fn string) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, bound)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.PollFunction[chromedp.Void](fn,
		chromedp.WithPollingInterval(100*time.Millisecond),
		chromedp.WithPollingTimeout(bound)))
	if err != nil {
		u.fail("waiting for "+what, err)
	}
}

// countFrames counts the recorded frames holding text.
func countFrames(w *wireTap, text string) int {
	frames, _ := w.snapshot()
	n := 0
	for _, f := range frames {
		n += strings.Count(f, text)
	}
	return n
}

func TestBrowserOfflineShowsAtOnceAndResumes(t *testing.T) { offlineResumes(t, false) }

func TestBrowserEncryptedOfflineResumes(t *testing.T) { offlineResumes(t, true) }

func offlineResumes(t *testing.T, sealed bool) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	var link string
	if sealed {
		_, link = alice.createSealedRoom(es.URL, "Alice")
	} else {
		link = es.URL + "/r/" + alice.createRoomFromStart(es.URL, "Alice", "create-room")
	}
	bob := newBrowserUser(t, b, "bob")
	wire := tapWire(bob)
	bob.joinFromLink(link, "Bob")
	if sealed {
		bob.waitSealed()
	}
	alice.say("before the tunnel")
	bob.waitMessage("Alice", "before the tunnel")

	bob.setOffline(true)
	bob.waitFor("the offline state", `() => document.getElementById('status').dataset.state === 'offline' &&
		document.getElementById('status').textContent === 'Offline' &&
		document.getElementById('banner-text').textContent.includes('You are offline')`)
	alice.waitPeople("Alice") // The page let its connection go.
	alice.say("while Bob was offline")
	alice.waitMessage("Alice", "while Bob was offline")

	bob.setOffline(false)
	bob.waitJoined()
	bob.waitMessage("Alice", "while Bob was offline")
	alice.say("after")
	bob.waitMessage("Alice", "after")
	if got, want := strings.Join(bob.messages(), "|"), "Alice: before the tunnel|Alice: while Bob was offline|Alice: after"; got != want {
		t.Errorf("bob sees %q, want %q: each message once", got, want)
	}
	// Resumed, not replayed: each message crossed the wire to Bob once.
	if n := countFrames(wire, `received {"type":"chatMessage"`) + countFrames(wire, "\n"+`{"type":"chatMessage"`); n != 3 {
		t.Errorf("bob received %d chatMessage frames for 3 messages: the reconnect replayed what he had", n)
	}
	if !strings.Contains(es.requests.String(), "since=1&epoch=") {
		t.Errorf("the reconnect did not ask to resume after message 1:\n%s", es.requests)
	}
	if n := browserEval[int](bob, `document.querySelectorAll('#message-list .gap').length`); n != 0 {
		t.Errorf("bob sees %d gap markers, want none: nothing was lost", n)
	}
}

func TestBrowserResumeShowsTheGap(t *testing.T) {
	es := startE2EServer(t, map[string]string{"HISTORY_SIZE": "2"})
	alice, bob, _ := aliceAndBob(t, es)
	alice.say("one")
	bob.waitMessage("Alice", "one")

	bob.setOffline(true)
	bob.waitFor("the offline state", `() => document.getElementById('status').dataset.state === 'offline'`)
	for _, m := range []string{"two", "three", "four", "five"} {
		alice.say(m)
		alice.waitMessage("Alice", m)
	}
	bob.setOffline(false)
	bob.waitJoined()
	bob.waitMessage("Alice", "five")
	// The marker sits where messages went missing: after one, before four.
	got := browserEval[[]string](bob, `[...document.querySelectorAll('#message-list li')]
		.filter((li) => li.classList.contains('msg') || li.classList.contains('gap'))
		.map((li) => li.classList.contains('gap') ? 'GAP: ' + li.textContent : li.querySelector('.text').textContent)`)
	joined := strings.Join(got, "|")
	if !strings.HasPrefix(joined, "one|GAP: Some messages may be missing here") || !strings.HasSuffix(joined, "|four|five") {
		t.Errorf("bob sees %q, want one, the gap marker, four, five", got)
	}
}

// freezeProxy relays TCP to a server and can stop relaying, in both
// directions, without closing anything: to the browser the server looks
// like a process stopped with SIGSTOP, connections open and silent. It can
// also strand the connections it holds, silent for good, while new ones
// pass: a network that died under a page and came back.
type freezeProxy struct {
	ln       net.Listener
	target   string
	mu       sync.Mutex
	frozen   bool
	conns    int // connections accepted so far
	stranded int // connections before this one never relay again
	thaw     *sync.Cond
}

// startFreezeProxy relays a loopback port to target until the test ends.
func startFreezeProxy(t *testing.T, target string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, target: target}
	p.thaw = sync.NewCond(&p.mu)
	var conns sync.WaitGroup
	t.Cleanup(func() {
		p.mu.Lock()
		p.stranded = 0
		p.mu.Unlock()
		p.setFrozen(false)
		ln.Close()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			p.mu.Lock()
			id := p.conns
			p.conns++
			p.mu.Unlock()
			go func() { defer conns.Done(); p.relay(c, id) }()
		}
	}()
	return p
}

// URL is the proxy's base address.
func (p *freezeProxy) URL() string { return "http://" + p.ln.Addr().String() }

// setFrozen stops or resumes relaying.
func (p *freezeProxy) setFrozen(frozen bool) {
	p.mu.Lock()
	p.frozen = frozen
	p.mu.Unlock()
	p.thaw.Broadcast()
}

// strand silences every connection accepted so far until the test ends.
func (p *freezeProxy) strand() {
	p.mu.Lock()
	p.stranded = p.conns
	p.mu.Unlock()
}

// gate waits while the proxy is frozen or connection id is stranded.
func (p *freezeProxy) gate(id int) {
	p.mu.Lock()
	for p.frozen || id < p.stranded {
		p.thaw.Wait()
	}
	p.mu.Unlock()
}

func (p *freezeProxy) relay(c net.Conn, id int) {
	defer c.Close()
	p.gate(id)
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer s.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			p.gate(id)
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go pipe(s, c)
	go pipe(c, s)
	<-done
}

func TestBrowserFrozenServerIsNoticed(t *testing.T) {
	es := startE2EServer(t, nil)
	proxy := startFreezeProxy(t, es.proxy.addr())
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	code := alice.createRoomFromStart(proxy.URL(), "Alice", "create-room")
	bob := newBrowserUser(t, b, "bob")
	bob.joinFromLink(es.URL+"/r/"+code, "Bob")
	bob.say("hello")
	alice.waitMessage("Bob", "hello")

	proxy.setFrozen(true)
	bob.say("while the server was frozen for Alice")
	// deadAfterMs in chat.js is 35 s; the bound leaves room for a slow machine.
	alice.waitLong("the page to leave Connected", 90*time.Second,
		`() => document.getElementById('status').dataset.state !== 'open' &&
			document.getElementById('status').textContent !== 'Connected'`)

	proxy.setFrozen(false)
	alice.waitLong("the page to reconnect", 90*time.Second,
		`() => document.getElementById('status').dataset.state === 'open'`)
	alice.waitMessage("Bob", "while the server was frozen for Alice")
	bob.say("after")
	alice.waitMessage("Bob", "after")
	if got, want := strings.Join(alice.messages(), "|"), "Bob: hello|Bob: while the server was frozen for Alice|Bob: after"; got != want {
		t.Errorf("alice sees %q, want %q", got, want)
	}
	// She came back under her own name, whether or not the server had
	// noticed her old connection die: the reconnect took its place.
	if !strings.Contains(es.requests.String(), "&rejoin=") {
		t.Errorf("the reconnect did not present the old connection's secret:\n%s", es.requests)
	}
	alice.say("me again")
	bob.waitMessage("Alice", "me again")
	bob.waitPeople("Alice", "Bob")
}

// A network that dies under a page, in a private room of two: the server
// still holds the old connection (its ping has a long way to go) when the
// page reconnects, and the room counts two already. The page's rejoin
// secret gets it back in, under its own name, instead of "room full".
func TestBrowserPrivateRoomSurvivesADeadNetwork(t *testing.T) {
	es := startE2EServer(t, map[string]string{"PING_INTERVAL": "5m"})
	proxy := startFreezeProxy(t, es.proxy.addr())
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	code := alice.createRoomFromStart(proxy.URL(), "Alice", "create-private")
	bob := newBrowserUser(t, b, "bob")
	bob.joinFromLink(es.URL+"/r/"+code, "Bob")
	bob.say("hello")
	alice.waitMessage("Bob", "hello")

	proxy.strand()
	bob.say("while Alice's network was gone")
	// deadAfterMs in chat.js is 35 s; the bound leaves room for a slow machine.
	alice.waitLong("the page to give up on its connection", 90*time.Second,
		`() => document.getElementById('status').dataset.state !== 'open'`)
	alice.waitLong("the page to be back", 90*time.Second,
		`() => document.getElementById('status').dataset.state === 'open'`)
	alice.waitMessage("Bob", "while Alice's network was gone")
	alice.say("back")
	bob.waitMessage("Alice", "back")
	bob.waitPeople("Alice", "Bob")
	alice.waitPeople("Alice", "Bob")
}
