//go:build linux

package test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// Formatted messages in a real browser: what renders, that markup stays
// text, and that in an encrypted room the formatting travels sealed.

// formattedInline is a message using every inline rule.
const formattedInline = "**bold** and _italic_ and ~~gone~~, `a < b && c`, see https://example.com/notes?x=1."

// formattedCode is a message with a fenced code block whose lines are
// wider than any phone.
const formattedCode = "Try this:\n```go\nfunc main() {\n\tfmt.Println(\"" + "a very long line that must scroll sideways inside the bubble, never the page" + "\")\n}\n```\nthen run it."

// formattedCodeText is what the code block holds and its button copies.
const formattedCodeText = "func main() {\n\tfmt.Println(\"" + "a very long line that must scroll sideways inside the bubble, never the page" + "\")\n}"

// allowedInMessages lists every element a message's text may contain.
const allowedInMessages = `['DIV', 'PRE', 'CODE', 'STRONG', 'EM', 'DEL', 'A', 'BUTTON']`

// formatted describes how u's page shows the message with source text.
func (u *browserUser) formatted(source string) map[string]any {
	u.t.Helper()
	return browserEval[map[string]any](u, fmt.Sprintf(`(() => {
		const li = [...document.querySelectorAll('#message-list .msg')].find((li) => li.dataset.text === %q);
		const t = li.querySelector('.text');
		const all = (sel) => [...t.querySelectorAll(sel)].map((e) => e.textContent);
		const pre = t.querySelector('pre');
		return {
			strong: all('strong'), em: all('em'), del: all('del'), code: all(':not(pre) > code'),
			links: [...t.querySelectorAll('a')].map((a) => [a.href, a.rel, a.target, a.textContent].join(' ')),
			block: pre ? pre.querySelector('code').textContent : null,
			blockStyle: pre ? getComputedStyle(pre).whiteSpace + ' ' + getComputedStyle(pre).overflowX + ' ' + getComputedStyle(pre).fontFamily : '',
			blockScrolls: pre ? pre.scrollWidth > pre.clientWidth : false,
			bubbleFits: t.getBoundingClientRect().right <= document.getElementById('messages').getBoundingClientRect().right,
			pageFits: document.documentElement.scrollWidth <= innerWidth && document.getElementById('messages').scrollWidth <= document.getElementById('messages').clientWidth,
			copy: [...t.querySelectorAll('button')].map((b) => b.getAttribute('aria-label')),
			text: t.textContent,
		};
	})()`, source))
}

// checkOnlyAllowedElements fails the test for any element in a message's
// text outside the formatting ones, or any script that ran.
func (u *browserUser) checkOnlyAllowedElements() {
	u.t.Helper()
	bad := browserEval[[]string](u, `[...document.querySelectorAll('#message-list .text *')]
		.filter((e) => !`+allowedInMessages+`.includes(e.tagName) || [...e.attributes].some((a) => a.name.startsWith('on')))
		.map((e) => e.outerHTML.slice(0, 120))
		.concat(window.__pwned === undefined ? [] : ['window.__pwned = ' + window.__pwned])`)
	for _, b := range bad {
		u.t.Errorf("%s: a message made page content: %s", u.name, b)
	}
}

// xssPayloads are the markup TestBrowserMessagesAreText sends, and the same
// wrapped in formatting.
var xssPayloads = []string{
	`<img src=x onerror="window.__pwned=1">`,
	`<script>window.__pwned=2</script>`,
	`<a href="javascript:window.__pwned=3">click</a> javascript:alert(1) and https://example.com/ok?a=1&b=<2>.`,
	"**<img src=x onerror=\"window.__pwned=4\">** _<svg onload=\"window.__pwned=5\">_ `<b>code</b>`",
	"```html\n<img src=x onerror=\"window.__pwned=6\">\n```",
}

// checkFormatting has from send the formatted messages and the XSS
// payloads, and checks what to sees.
func checkFormatting(t *testing.T, origin string, from, to *browserUser, name string) {
	t.Helper()
	for _, m := range append([]string{formattedInline, formattedCode}, xssPayloads...) {
		from.do("send", chromedp.SetValue(chromedp.ID("composer-input"), m), chromedp.Focus(chromedp.ID("composer-input")), pressEnter)
		to.waitMessage(name, m)
		from.waitMessage(name, m)
	}
	for _, u := range []*browserUser{from, to} {
		got := u.formatted(formattedInline)
		want := map[string]string{"strong": "[bold]", "em": "[italic]", "del": "[gone]", "code": "[a < b && c]",
			"links": "[https://example.com/notes?x=1 noopener noreferrer nofollow _blank https://example.com/notes?x=1]"}
		for k, v := range want {
			if s := fmt.Sprint(got[k]); s != v {
				t.Errorf("%s: inline formatting %s = %s, want %s", u.name, k, s, v)
			}
		}
		if want := "bold and italic and gone, a < b && c, see https://example.com/notes?x=1."; got["text"] != want {
			t.Errorf("%s: the formatted message reads %q, want %q", u.name, got["text"], want)
		}

		got = u.formatted(formattedCode)
		if got["block"] != formattedCodeText {
			t.Errorf("%s: code block holds %q, want %q", u.name, got["block"], formattedCodeText)
		}
		if s := fmt.Sprint(got["blockStyle"]); !strings.HasPrefix(s, "pre auto ") || !strings.Contains(s, "monospace") {
			t.Errorf("%s: code block style %q, want whitespace kept, scrolling, monospace", u.name, s)
		}
		if got["blockScrolls"] != true || got["bubbleFits"] != true || got["pageFits"] != true {
			t.Errorf("%s: the long line should scroll inside the bubble, not the page: %v", u.name, got)
		}
		if fmt.Sprint(got["copy"]) != "[Copy code]" {
			t.Errorf("%s: code block buttons %v, want one named Copy code", u.name, got["copy"])
		}

		for _, m := range xssPayloads[:3] {
			if got := u.formatted(m); got["text"] != m {
				t.Errorf("%s: markup shows as %q, want the text as written %q", u.name, got["text"], m)
			}
		}
		u.checkOnlyAllowedElements()
		u.checkLabels("room with formatted messages")
	}

	// The copy button copies the code as written.
	for _, perm := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(to.ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: perm}, Setting: browser.PermissionSettingGranted,
			Origin: origin, BrowserContextID: chromedp.FromContext(to.ctx).BrowserContextID,
		}); err != nil {
			t.Fatalf("grant %s: %v", perm, err)
		}
	}
	to.do("copy the code", chromedp.Click(chromedp.CSS(".codeblock .copy-code")))
	to.waitFor("the button to say it copied", `() => document.querySelector('.codeblock .copy-code').getAttribute('aria-label') === 'Code copied'`)
	if got := browserEval[string](to, `navigator.clipboard.readText()`); got != formattedCodeText {
		t.Errorf("copied %q, want the code %q", got, formattedCodeText)
	}
}

func TestBrowserFormattedMessages(t *testing.T) {
	es := startE2EServer(t, nil)
	alice, bob, _ := aliceAndBob(t, es)
	checkFormatting(t, es.URL, alice, bob, "Alice")

	// On a phone the code scrolls inside its bubble, and the page does not.
	bob.do("phone size", chromedp.EmulateViewport(360, 740, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
	bob.waitFor("the phone layout", `() => window.innerWidth === 360`)
	if got := bob.formatted(formattedCode); got["blockScrolls"] != true || got["bubbleFits"] != true || got["pageFits"] != true {
		t.Errorf("on a phone: %v", got)
	}
	bob.do("scroll to the code", chromedp.Evaluate[chromedp.Void](`document.querySelector('.codeblock').scrollIntoView({ block: 'center' })`))
	bob.screenshot("formatting-phone.png")
}

func TestBrowserEncryptedFormattedMessages(t *testing.T) {
	es := startE2EServer(t, nil)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	bob := newBrowserUser(t, b, "bob")
	taps := []*wireTap{tapWire(alice), tapWire(bob)}
	code, link := alice.createSealedRoom(es.URL, "Alice")
	bob.joinFromLink(link, "Bob")
	bob.waitSealed()
	checkFormatting(t, es.URL, alice, bob, "Alice")

	// Neither the text nor any of its pieces crossed the wire in the clear.
	secrets := []string{"bold", "italic", "a < b", `a \u003c b`, "notes?x=1", "very long line", "__pwned", "onerror"}
	sealed := 0
	for i, tap := range taps {
		frames, _ := tap.snapshot()
		for _, f := range frames {
			sealed += strings.Count(f, `"message":"e1.`)
			for _, s := range secrets {
				if strings.Contains(f, s) {
					t.Errorf("%s's WebSocket frame carries %q: %.200s", []string{"alice", "bob"}[i], s, f)
				}
			}
		}
	}
	if n := 2 + len(xssPayloads); sealed < 3*n { // each sent once and received twice
		t.Errorf("the frames hold %d sealed messages, want at least %d: the tap is not working", sealed, 3*n)
	}
	history := strings.Join(roomHistory(t, es, code), "\n")
	for _, s := range secrets {
		if strings.Contains(history, s) {
			t.Errorf("the server's history holds %q", s)
		}
	}
}
