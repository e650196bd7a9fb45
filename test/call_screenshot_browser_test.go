//go:build linux

package test

import (
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// This test pictures a call for the documentation
// (docs/screenshot-call.png) and runs only with SCREENSHOTS=1; what calls do
// in Chromium is checked in call_browser_test.go.

// TestBrowserCallScreenshot pictures a call of two people with cameras on,
// one of them sharing a screen, as the other sees it on a desktop;
// docs/screenshot-call.png is a copy of it.
//
// It makes a picture for the documentation and checks nothing the call
// tests do not, so it runs only when asked, with SCREENSHOTS=1: in the
// full suite one of its videos once stayed paused for 20 s.
func TestBrowserCallScreenshot(t *testing.T) {
	if os.Getenv("SCREENSHOTS") != "1" {
		t.Skip("makes docs/screenshot-call.png; run with SCREENSHOTS=1")
	}
	es := startE2EServer(t, nil)
	b := startCallBrowser(t)
	maya := newCallUser(t, b, "maya", false)
	jonas := newCallUser(t, b, "jonas", false)
	jonas.do("desktop size", chromedp.EmulateViewport(1000, 1000), setColorScheme("light"))
	code := maya.createRoomFromStart(es.URL, "Maya", "create-room")
	jonas.joinFromLink(es.URL+"/r/"+code, "Jonas")
	for _, line := range []struct {
		who        *browserUser
		name, text string
	}{
		{maya, "Maya", "Have you got a minute for the floor plan?"},
		{jonas, "Jonas", "Sure, call me."},
	} {
		line.who.do("say", chromedp.SetValue(chromedp.ID("composer-input"), line.text), chromedp.Focus(chromedp.ID("composer-input")), pressEnter)
		jonas.waitMessage(line.name, line.text)
	}

	callOf([]*browserUser{maya, jonas}, []string{"Maya", "Jonas"})
	maya.click("call-cam")
	jonas.click("call-cam")
	maya.click("call-screen")
	jonas.waitFor("Maya's screen, large", `() => document.querySelector('#call-screens .tile[data-name="Maya"]')`)
	// Every picture shows: the screen, Maya's camera and Jonas's own.
	jonas.waitFor("every video playing", `() => {
		const videos = [...document.querySelectorAll('#call video')];
		return videos.length >= 3 && videos.every((v) => v.videoWidth > 0 && v.readyState >= 2 && !v.paused);
	}`)
	jonas.waitFor("the path to say direct", `() => document.querySelector('#call-tiles .tile:not(.self)').dataset.path === 'direct'`)
	// Well into both of Maya's videos, so that neither shows its first, dark frames.
	jonas.waitFor("frames of both of Maya's videos", `async () => {
		let frames = [];
		(await __pcs[0].getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') frames.push(s.framesDecoded); });
		return frames.length === 2 && frames.every((f) => f > 30);
	}`)
	jonas.screenshot("call-desktop.png")
}
