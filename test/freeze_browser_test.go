//go:build linux

package test

import (
	"sync"
	"syscall"
	"testing"
	"time"
)

// A server process stopped with SIGSTOP keeps its sockets open and answers
// nothing: only the page's own heartbeat can tell.

func TestBrowserStoppedServerIsNoticed(t *testing.T) {
	p, base := startServer(t, hallwayBin)
	b := startBrowser(t)
	alice := newBrowserUser(t, b, "alice")
	code := alice.createRoomFromStart(base, "Alice", "create-room")
	bob := newBrowserUser(t, b, "bob")
	bob.joinFromLink(base+"/r/"+code, "Bob")
	alice.say("before")
	bob.waitMessage("Alice", "before")

	pid := p.Cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP: %v", err)
	}
	resume := sync.OnceFunc(func() { syscall.Kill(pid, syscall.SIGCONT) })
	t.Cleanup(resume)
	for _, u := range []*browserUser{alice, bob} {
		// deadAfterMs in chat.js is 35 s; the bound leaves room for a slow machine.
		u.waitLong("the page to leave Connected", 90*time.Second,
			`() => document.getElementById('status').dataset.state !== 'open' &&
				document.getElementById('status').textContent !== 'Connected'`)
	}

	resume()
	for _, u := range []*browserUser{alice, bob} {
		u.waitLong("the page to reconnect", 90*time.Second, `() => document.getElementById('status').dataset.state === 'open'`)
	}
	bob.say("after SIGCONT")
	// A reconnect can beat the old socket's close to the server, and then
	// joins under a suffixed name: the text is what matters here.
	alice.waitFor("Bob's message after SIGCONT", `() => [...document.querySelectorAll('#message-list .msg .text')]
		.some((e) => e.textContent === 'after SIGCONT' && !e.closest('.pending'))`)
}
