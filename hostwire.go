// The wire format of a room's host, beside protocol.go's: the host frame a
// host sends, the frames the server answers with, and the codes and close
// codes of every refusal. docs/host.md shows each frame. The behaviour is
// host.go's.

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/coder/websocket"
)

// Frame types of hosted rooms.
const (
	typeHost      = "host"      // client → server: a host command; see hostCommand
	typeHostState = "hostState" // server → each host alone; see hostStatePayload
	typeKnocking  = "knocking"  // server → a knocker alone: wait for a host
	typeMoveRoom  = "moveRoom"  // server → the members a host named; see moveRoomPayload
)

// Host commands, the op of a host frame.
const (
	opClaim    = "claim"    // this connection holds the credential (after every welcome)
	opLock     = "lock"     // refuse newcomers
	opUnlock   = "unlock"   // stop refusing them
	opKnockOn  = "knockOn"  // newcomers wait for a host to admit them
	opKnockOff = "knockOff" // newcomers come straight in; waiting knockers are admitted
	opAdmit    = "admit"    // let knock Knock in
	opDeny     = "deny"     // turn knock Knock away
	opRemove   = "remove"   // close member Name with closeRemoved
	opPromote  = "promote"  // make member Name a host too
	opHandOver = "handOver" // make member Name a host and stop being one
	opMove     = "move"     // deliver Sealed to the members named in To
)

// Error codes of hosted rooms, in error frames and HTTP refusals.
const (
	codeNotHost      = "not_host"       // no credential, or not one of this room's
	codeNoSuchMember = "no_such_member" // the named member has gone
	codeNoSuchKnock  = "no_such_knock"  // that knocker stopped knocking
	codeRoomLocked   = "room_locked"    // 403: the room takes no newcomers
	codeKnockRefused = "knock_refused"  // 403: this address was denied or removed a moment ago
	codeKnockFull    = "knock_full"     // 429: too many are waiting, or from this address
)

// Close codes of hosted rooms. Reasons are fixed strings.
const (
	closeRemoved websocket.StatusCode = 4403 // a host removed this member
	closeDenied  websocket.StatusCode = 4401 // a host denied this knock, or nobody is left to answer it
)

// Close reasons of hosted rooms.
const (
	reasonRemoved = "removed by the host"
	reasonDenied  = "the host did not let you in"
	reasonNobody  = "nobody is in the room to let you in"
)

// Refusals of a join to a hosted room, answered before the upgrade.
var (
	errRoomLocked   = errors.New("this room is locked: the host is not letting anyone new in")
	errKnockRefused = errors.New("the host turned you away; try again later")
	errKnockFull    = errors.New("too many people are waiting to be let in; try again later")
)

// hostCommand is the payload of a host frame. Credential is the secret the
// creator got from POST /api/rooms, or a hostState frame gave a promoted
// member; every command carries it, and the server compares it in constant
// time. Name addresses a member, Knock a knocker, To and Sealed a move.
type hostCommand struct {
	Credential string   `json:"credential"`
	Op         string   `json:"op"`
	Name       string   `json:"name,omitempty"`
	Knock      int      `json:"knock,omitempty"`
	To         []string `json:"to,omitempty"`
	Sealed     string   `json:"sealed,omitempty"`
}

// hostStatePayload tells a host how the room stands. Credential is sent
// once, to the member just made a host (promote, hand-over, or the role
// passing on), and to nobody else.
type hostStatePayload struct {
	Credential string      `json:"credential,omitempty"`
	Host       bool        `json:"host"`
	Locked     bool        `json:"locked"`
	Knocking   bool        `json:"knocking"`
	Knocks     []knockView `json:"knocks"`
	Hosts      []string    `json:"hosts"`
}

// knockView is one person waiting: the id to admit or deny, and the name
// they asked for.
type knockView struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// moveRoomPayload is what a host's move delivers: Sealed holds the new
// room's link, sealed with the old room's key, which the server cannot read.
type moveRoomPayload struct {
	From   string `json:"from"`
	Sealed string `json:"sealed"`
}

// writeHostRefusal answers a join that a hosted room refused, and reports
// whether err was one.
func writeHostRefusal(w http.ResponseWriter, err error) bool {
	switch {
	case errors.Is(err, errRoomLocked):
		writeError(w, http.StatusForbidden, codeRoomLocked, err.Error())
	case errors.Is(err, errKnockRefused):
		setRetryAfter(w, barFor)
		writeError(w, http.StatusForbidden, codeKnockRefused, err.Error())
	case errors.Is(err, errKnockFull):
		setRetryAfter(w, retryTooMany)
		writeError(w, http.StatusTooManyRequests, codeKnockFull, err.Error())
	default:
		return false
	}
	return true
}

// hostCounts counts what hosts do, for GET /metrics: events only, never a
// room or a name.
type hostCounts struct {
	locks, knocks, admissions, denials, removals, handovers, moves atomic.Uint64
}

// writeTo writes hallway_host_events_total, one series per event.
func (h *hostCounts) writeTo(b *bytes.Buffer, family func(name, typ, help string)) {
	family("hallway_host_events_total", "counter", "What hosts did and what happened to hosted rooms, by event.")
	for _, e := range []struct {
		name string
		n    *atomic.Uint64
	}{{"admit", &h.admissions}, {"deny", &h.denials}, {"handover", &h.handovers}, {"knock", &h.knocks},
		{"lock", &h.locks}, {"move", &h.moves}, {"remove", &h.removals}} {
		fmt.Fprintf(b, "hallway_host_events_total{event=%q} %d\n", e.name, e.n.Load())
	}
}
