//go:build linux

package test

import (
	"context"
	"fmt"
	"hallway/internal/netnstest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Calls in a real Chromium with fake media devices: a test pattern and a
// tone for the camera and microphone, and a fake screen for
// getDisplayMedia. Media flows between browser contexts over loopback.

// callRecorder runs in every page before its own scripts. It keeps every
// RTCPeerConnection and every track the page captured, so that tests can
// read statistics and check that tracks end; with relayOnly it makes every
// connection use TURN relays only (iceTransportPolicy "relay").
const callRecorder = `
window.__pcs = []; window.__tracks = []; window.__screens = []; window.__log = [];
(() => {
  const Native = RTCPeerConnection;
  window.RTCPeerConnection = function (cfg) {
    if (window.__relayOnly) cfg = { ...cfg, iceTransportPolicy: 'relay' };
    const pc = new Native(cfg);
    __pcs.push(pc);
    const log = (what) => __log.push(__pcs.indexOf(pc) + ' ' + what + ' [' + pc.signalingState + '/' + pc.iceConnectionState + '/' + pc.iceGatheringState + ']');
    pc.addEventListener('icecandidate', (e) => log('local candidate ' + (e.candidate ? e.candidate.type : 'end')));
    pc.addEventListener('signalingstatechange', () => log('signaling'));
    pc.addEventListener('iceconnectionstatechange', () => log('ice'));
    for (const m of ['setLocalDescription', 'setRemoteDescription', 'addIceCandidate']) {
      const f = pc[m].bind(pc);
      pc[m] = (...a) => { log(m + ' ' + (a[0] && (a[0].type || a[0].candidate && a[0].candidate.split(' ')[7]) || '')); return f(...a).then((v) => { log(m + ' ok'); return v; }, (err) => { log(m + ' ' + err.name); throw err; }); };
    }
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
  for (const name of ['getUserMedia', 'getDisplayMedia']) {
    const native = navigator.mediaDevices[name].bind(navigator.mediaDevices);
    navigator.mediaDevices[name] = async (c) => {
      const s = await native(c);
      __tracks.push(...s.getTracks());
      if (name === 'getDisplayMedia') __screens.push(...s.getTracks());
      return s;
    };
  }
})();
// __inbound sums inbound-rtp bytes by kind, per open connection.
window.__inbound = async () => {
  const out = [];
  for (const pc of __pcs) {
    if (pc.connectionState === 'closed') continue;
    const n = { audio: 0, video: 0 };
    (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp') n[s.kind] += s.bytesReceived; });
    out.push(n);
  }
  return out;
};
// __flowing resolves once conns open connections each receive more bytes
// of every kind in kinds than at the first look.
window.__flowing = async (conns, kinds) => {
  let first = null;
  for (const end = Date.now() + 12000; Date.now() < end;) {
    const now = await __inbound();
    if (now.length === conns) {
      if (!first) first = now;
      else if (now.every((n, i) => kinds.every((k) => n[k] > first[i][k]))) return true;
    } else {
      first = null;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return JSON.stringify({ log: __log, inbound: await __inbound(), first, pcs: __pcs.map((pc) => [pc.connectionState, pc.signalingState, pc.iceConnectionState,
    pc.getTransceivers().map((t) => t.mid + ':' + t.currentDirection + ':' + t.receiver.track.kind + (t.receiver.track.muted ? ' muted' : ''))]) });
};
// __selectedPair describes each open connection's selected candidate pair.
window.__selectedPairs = async () => {
  const out = [];
  for (const pc of __pcs) {
    if (pc.connectionState === 'closed') continue;
    const r = await pc.getStats();
    let id = '';
    r.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) id = s.selectedCandidatePairId; });
    const pair = r.get(id);
    const local = pair && r.get(pair.localCandidateId);
    out.push(local ? local.candidateType + ' ' + local.address + ':' + local.port : 'none');
  }
  return out;
};
`

// startCallBrowser starts Chromium with fake media devices and a fake
// screen, and with host candidates in the clear, so that two contexts on
// one host can reach each other.
func startCallBrowser(t *testing.T) context.Context {
	t.Helper()
	return startBrowser(t,
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("auto-accept-this-tab-capture", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,WebRtcHideLocalIpsWithMdns"),
	)
}

// newCallUser is newBrowserUser with the call recorder installed.
func newCallUser(t *testing.T, b context.Context, name string, relayOnly bool) *browserUser {
	t.Helper()
	u := newBrowserUser(t, b, name)
	src := callRecorder
	if relayOnly {
		src = "window.__relayOnly = true;\n" + src
	}
	if _, err := chromedp.Call(u.ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: src}); err != nil {
		t.Fatalf("%s: add call recorder: %v", name, err)
	}
	return u
}

// click clicks the element with id once it is visible.
func (u *browserUser) click(id string) {
	u.t.Helper()
	u.do("click #"+id, chromedp.WaitVisible(chromedp.ID(id)), chromedp.Click(chromedp.ID(id)))
}

// waitFlowing waits until u receives growing media of kinds on conns
// connections at once.
func (u *browserUser) waitFlowing(conns int, kinds ...string) {
	u.t.Helper()
	ks := `['` + strings.Join(kinds, `','`) + `']`
	if got := browserEval[any](u, fmt.Sprintf(`__flowing(%d, %s)`, conns, ks)); got != true {
		u.t.Fatalf("%s: no media flowing: %v", u.name, got)
	}
}

// waitTiles waits until u's call shows exactly the tiles of names.
func (u *browserUser) waitTiles(names ...string) {
	u.t.Helper()
	u.waitFor(fmt.Sprintf("call tiles %v", names), `(...names) => {
		const shown = [...document.querySelectorAll('#call-tiles .tile')].map((e) => e.dataset.name).sort();
		return JSON.stringify(shown) === JSON.stringify([...names].sort());
	}`, stringsToAny(names)...)
}

// callOf starts a call from the first user and has every other join it
// from the banner, then waits until everyone's tiles show everyone.
func callOf(users []*browserUser, names []string) {
	users[0].click("call-start")
	for _, u := range users[1:] {
		u.waitFor("the call banner", `() => !document.getElementById('call-banner').hidden`)
		u.click("call-join")
	}
	for _, u := range users {
		u.waitTiles(names...)
	}
}

func TestBrowserCallTwoPeopleAudioVideoAndScreen(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startCallBrowser(t)
	alice := newCallUser(t, b, "alice", false)
	bob := newCallUser(t, b, "bob", false)
	code := alice.createRoomFromStart(es.URL, "Alice", "create-room")
	bob.joinFromLink(es.URL+"/r/"+code, "Bob")

	callOf([]*browserUser{alice, bob}, []string{"Alice", "Bob"})
	alice.click("call-cam")
	bob.click("call-cam")
	alice.waitFlowing(1, "audio", "video")
	bob.waitFlowing(1, "audio", "video")
	for _, u := range []*browserUser{alice, bob} {
		u.waitFor("the path to say direct", `() => document.querySelector('#call-tiles .tile:not(.self)').dataset.path === 'direct'`)
	}

	// Alice shares her screen: Bob gets another video track, shown large.
	alice.click("call-screen")
	bob.waitFor("Alice's screen", `() => document.querySelector('#call-screens .tile[data-name="Alice"]') &&
		__pcs[0].getReceivers().filter((r) => r.track.kind === 'video' && !r.track.muted).length === 2`)
	bob.waitFor("frames of the screen", `async () => {
		let frames = 0;
		(await __pcs[0].getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') frames = Math.min(frames || Infinity, s.framesDecoded); });
		return frames > 10;
	}`)
	bob.screenshot("call-screen-share.png")
	// On a phone, the call fits 360 px.
	bob.do("phone size", chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
	bob.waitFor("the call to fit 360 px", `() => window.innerWidth === 360 && document.documentElement.scrollWidth <= 360 &&
		[...document.querySelectorAll('#call-start, .call-controls button, #call-tiles .tile')].every((e) => {
			const r = e.getBoundingClientRect();
			return r.width > 0 && r.left >= 0 && r.right <= 360;
		})`)
	bob.screenshot("call-phone.png")
	alice.click("call-screen") // Stop sharing
	bob.waitFor("Alice's screen to go", `() => !document.querySelector('#call-screens .tile')`)
	alice.waitFor("the screen track to end", `() => __screens.length === 1 && __screens[0].readyState === 'ended'`)

	// Leaving ends every track, and Bob's connection to Alice closes.
	alice.click("call-leave")
	alice.waitFor("every track to end", `() => __tracks.length >= 3 && __tracks.every((t) => t.readyState === 'ended') &&
		__pcs.every((pc) => pc.connectionState === 'closed')`)
	bob.waitFor("the connection to Alice to close", `() => __pcs.every((pc) => pc.connectionState === 'closed')`)
	bob.waitTiles("Bob")
	bob.click("call-leave")
	bob.waitFor("every track to end", `() => __tracks.every((t) => t.readyState === 'ended')`)
	bob.waitFor("the banner to go", `() => document.getElementById('call-banner').hidden`)
}

// relayNetns gives the relay test a network of its own in which the relay
// has an address that is neither loopback nor private: relays refuse to
// send to those, and on the machine's loopback the browsers' relayed
// addresses would be 127.0.0.1. A veth pair gives Chromium an interface
// that is not loopback to gather on.
const relayNetns = `set -e
ip link set lo up
ip link add hw0 type veth peer name hw1
ip addr add 203.0.113.1/24 dev hw0
ip link set hw0 up
ip link set hw1 up
exec "$0" -test.run='^TestBrowserCallThroughTheBuiltInRelay$' -test.count=1 -test.v`

func TestBrowserCallThroughTheBuiltInRelay(t *testing.T) {
	if !netnstest.Inside() {
		browserExecPath(t) // Skips, or fails under E2E=1, before the namespace is made.
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		netnstest.Run(t, relayNetns, self, builtBinEnv+"="+hallwayBin)
		return
	}
	metrics := "127.0.0.1:9090"
	es := startE2EServer(t, map[string]string{
		"TURN_PORT": "3478", "TURN_BIND": "203.0.113.1", "TURN_PUBLIC_IP": "203.0.113.1", "TURN_RELAY_PORTS": "50000-59999",
		"METRICS_ADDR": metrics,
	})
	b := startCallBrowser(t)
	alice := newCallUser(t, b, "alice", true)
	bob := newCallUser(t, b, "bob", true)
	code := alice.createRoomFromStart(es.URL, "Alice", "create-room")
	bob.joinFromLink(es.URL+"/r/"+code, "Bob")
	callOf([]*browserUser{alice, bob}, []string{"Alice", "Bob"})
	alice.click("call-cam")
	alice.waitFlowing(1, "audio")
	bob.waitFlowing(1, "audio", "video")

	relay := regexp.MustCompile(`^relay 203\.0\.113\.1:5\d{4}$`)
	for _, u := range []*browserUser{alice, bob} {
		pairs := browserEval[[]string](u, `__selectedPairs()`)
		if len(pairs) != 1 || !relay.MatchString(pairs[0]) {
			t.Fatalf("%s: selected pairs %v, want a relay candidate on the built-in relay", u.name, pairs)
		}
		u.waitFor("the path to say relayed", `() => document.querySelector('#call-tiles .tile:not(.self)').dataset.path === 'relayed'`)
	}
	m := scrapeMetrics(t, "http://"+metrics+"/metrics")
	if m["hallway_turn_relayed_bytes_total"] == 0 || m["hallway_calls_relayed_total"] != 1 {
		t.Fatalf("relayed %v bytes in %v calls, want bytes in 1 call", m["hallway_turn_relayed_bytes_total"], m["hallway_calls_relayed_total"])
	}
}

func TestBrowserCallOfThreeAndAFourthTurnedAway(t *testing.T) {
	es := startE2EServer(t, map[string]string{"CALL_MAX": "3"})
	b := startCallBrowser(t)
	names := []string{"Alice", "Bob", "Carol", "Dave"}
	var users []*browserUser
	for _, n := range names {
		users = append(users, newCallUser(t, b, strings.ToLower(n), false))
	}
	code := users[0].createRoomFromStart(es.URL, "Alice", "create-room")
	for i, u := range users[1:] {
		u.joinFromLink(es.URL+"/r/"+code, names[i+1])
	}
	callOf(users[:3], names[:3])
	for _, u := range users[:3] {
		u.waitFlowing(2, "audio")
	}
	dave := users[3]
	dave.waitFor("the call to say it is full", `() => {
		const start = document.getElementById('call-start');
		return start.disabled && start.textContent === 'Call full (3)' &&
			document.getElementById('call-join').hidden &&
			document.getElementById('call-banner-text').textContent.includes('the most it can hold');
	}`)
	if n := browserEval[int](dave, `__pcs.length`); n != 0 {
		t.Fatalf("dave opened %d connections to a full call", n)
	}
}

func TestBrowserCallInEncryptedRoomSealsSignalling(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startCallBrowser(t)
	alice := newCallUser(t, b, "alice", false)
	bob := newCallUser(t, b, "bob", false)
	taps := []*wireTap{tapWire(alice), tapWire(bob)}
	alice.sealed = true
	code := alice.createRoomFromStart(es.URL, "Alice", "create-room")
	alice.waitSealed()
	bob.joinFromLink(es.URL+"/r/"+code+"#k="+alice.roomKey(), "Bob")
	callOf([]*browserUser{alice, bob}, []string{"Alice", "Bob"})
	alice.click("call-cam")
	alice.waitFlowing(1, "audio")
	bob.waitFlowing(1, "audio", "video")

	clear := regexp.MustCompile(`v=0|a=fingerprint|candidate:|ice-ufrag|"sdp"|"candidate"|"description"`)
	signals := 0
	for _, tap := range taps {
		frames, _ := tap.snapshot()
		for _, f := range frames {
			if strings.Contains(f, `"type":"signal"`) {
				signals++
			}
			if clear.MatchString(f) {
				t.Fatalf("a frame carries signalling in the clear: %.300s", f)
			}
		}
	}
	if signals < 4 {
		t.Fatalf("saw %d signal frames, want the offers, answers and candidates", signals)
	}
	if out := es.logs.String() + es.requests.String(); clear.MatchString(out) {
		t.Fatal("the server's output holds signalling in the clear")
	}
}
