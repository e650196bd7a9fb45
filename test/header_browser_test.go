//go:build linux

package test

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// This test lays out the room header in Chromium on a phone: one row with
// nothing scrolling sideways, icons with accessible names and tooltips,
// and on a desktop the words kept.

// headerLayout describes the room header as laid out: whether its visible
// parts share one row, whether anything scrolls sideways, and the names of
// its two icon-only controls.
const headerLayout = `(() => {
	const bar = document.querySelector('#room .bar');
	const parts = [...bar.children].filter((e) => e.offsetParent !== null).map((e) => e.getBoundingClientRect());
	const badge = document.getElementById('e2ee-badge');
	const leave = document.getElementById('leave');
	return {
		oneRow: Math.max(...parts.map((r) => r.top)) < Math.min(...parts.map((r) => r.bottom)),
		height: bar.getBoundingClientRect().height,
		parts: parts.length,
		sideways: document.documentElement.scrollWidth > innerWidth || bar.scrollWidth > bar.clientWidth ||
			parts.some((r) => r.right > innerWidth || r.left < 0),
		badgeName: badge.textContent.trim(),
		badgeTip: badge.title,
		badgeWords: badge.querySelector('span').getBoundingClientRect().width > 2,
		leaveName: leave.getAttribute('aria-label'),
		leaveTip: leave.title,
		leaveWord: leave.querySelector('.label').getBoundingClientRect().width > 2,
	};
})()`

// TestBrowserPhoneHeader opens an encrypted room, the fullest header, at
// 360 CSS px: the header is one row with nothing scrolling sideways, the
// encryption state and Leave are icons with accessible names and tooltips,
// and every visible control has a name. On a desktop the words stay.
func TestBrowserPhoneHeader(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	maya := newBrowserUser(t, b, "maya")
	maya.do("phone size", chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
	maya.createSealedRoom(es.URL, "Maya Angelou-Smith")
	maya.waitFor("the phone layout", `() => window.innerWidth === 360`)

	phone := browserEval[map[string]any](maya, headerLayout)
	// Seven parts: the logo, the room code with Copy link, the encryption
	// state, the status, Call, the people count and Leave.
	if phone["oneRow"] != true || phone["sideways"] != false || phone["parts"] != float64(7) {
		t.Errorf("at 360 px the header is %v, want its seven parts in one row and no sideways scroll", phone)
	}
	if phone["badgeName"] != "End-to-end encrypted" || phone["badgeTip"] == "" || phone["badgeWords"] != false {
		t.Errorf("at 360 px the encryption state is %v, want an icon named End-to-end encrypted, with a tooltip", phone)
	}
	if phone["leaveName"] != "Leave room" || phone["leaveTip"] != "Leave room" || phone["leaveWord"] != false {
		t.Errorf("at 360 px Leave is %v, want an icon named Leave room, with a tooltip", phone)
	}
	maya.checkLabels("room header on a phone")
	maya.screenshot("header-phone.png")

	maya.do("desktop size", chromedp.EmulateViewport(1280, 800))
	maya.waitFor("the desktop layout", `() => window.innerWidth === 1280`)
	desktop := browserEval[map[string]any](maya, headerLayout)
	if desktop["oneRow"] != true || desktop["badgeWords"] != true || desktop["leaveWord"] != true {
		t.Errorf("on a desktop the header is %v, want one row with its words", desktop)
	}
	maya.checkLabels("room header on a desktop")
}
