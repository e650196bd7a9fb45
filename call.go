package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"golang.org/x/time/rate"
)

// This file is a room's call: who is in it, and the signalling frames that
// let the pages of its members open peer-to-peer connections (WebRTC) to
// each other. Media never passes through the chat server; at most it goes
// through the TURN relay (turn.go). Signalling frames go to one member
// only, carry the sender's name as the server knows it, and are never
// stored, logged or replayed.

// Flood control of signalling frames. Joining a call of CALL_MAX members
// sends each other member an offer and a handful of ICE candidates, and a
// screen share or a network change renegotiates: a burst of 100 covers a
// full mesh several times over, and 20 a second is far above any steady
// use. A frame over it is refused with rate_limited.
const (
	signalBurst = 100
	signalRate  = 20 // frames per second
)

// maxSignalBytes bounds a signal frame's payload. A session description
// for audio, video and a screen share is 5–10 KB; sealed in an encrypted
// room it grows by a third. Larger is refused with signal_too_large.
const maxSignalBytes = 32 << 10

// roomCall is a room's call: its members in order of joining, a subset of
// the room's members. It is guarded by room.mu.
type roomCall struct {
	members []*client
	// relayed is set once a member of the current call took a TURN
	// allocation, so that the call counts once in calls_relayed.
	relayed bool
}

// callControl handles a call or signal frame from c.
func (s *server) callControl(c *client, env envelope) *errorPayload {
	if s.cfg.CallMax == 0 {
		return &errorPayload{Code: codeBadMessage, Text: "calls are turned off on this server"}
	}
	if env.Type == typeCall {
		return c.room.callAction(c, env.Payload)
	}
	if len(env.Payload) > maxSignalBytes {
		return &errorPayload{Code: codeSignalTooLarge, Text: fmt.Sprintf("signal payload is %d bytes; the limit is %d", len(env.Payload), maxSignalBytes)}
	}
	if c.signal == nil {
		c.signal = rate.NewLimiter(signalRate, signalBurst)
	}
	if !c.signal.Allow() {
		return &errorPayload{Code: codeRateLimited, Text: fmt.Sprintf("slow down: at most %d signal frames a second, %d at once", signalRate, signalBurst)}
	}
	var in signalPayload
	if err := json.Unmarshal(env.Payload, &in); err != nil || in.To == "" || len(in.Data) == 0 || bytes.Equal(in.Data, []byte("null")) {
		return &errorPayload{Code: codeBadMessage, Text: "signal payload must be {\"to\": member name, \"data\": any JSON}"}
	}
	return c.room.relaySignal(c, in)
}

// callAction handles {"action": "join"} and {"action": "leave"} from c, a
// member of the room.
func (r *room) callAction(c *client, payload json.RawMessage) *errorPayload {
	var in callRequest
	if err := json.Unmarshal(payload, &in); err != nil || in.Action != "join" && in.Action != "leave" {
		return &errorPayload{Code: codeBadMessage, Text: "call payload must be {\"action\": \"join\" or \"leave\"}"}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.kicked {
		return nil
	}
	if in.Action == "leave" {
		r.leaveCallLocked(c)
		return nil
	}
	if slices.Contains(r.call.members, c) {
		c.enqueue(r.callFrameLocked(r.callMax), false)
		return nil
	}
	if len(r.call.members) >= r.callMax {
		return &errorPayload{Code: codeCallFull, Text: fmt.Sprintf("the call is full: at most %d people", r.callMax)}
	}
	if len(r.call.members) == 0 {
		r.metrics.callsStarted.Add(1)
	}
	r.call.members = append(r.call.members, c)
	r.metrics.callJoins.Add(1)
	r.metrics.callParticipants.Add(1)
	r.broadcastLocked(r.callFrameLocked(r.callMax), false)
	return nil
}

// leaveCallLocked takes c out of the room's call, if it was in it, and
// tells the room who is left.
func (r *room) leaveCallLocked(c *client) {
	i := slices.Index(r.call.members, c)
	if i < 0 {
		return
	}
	r.call.members = slices.Delete(r.call.members, i, i+1)
	r.metrics.callParticipants.Add(-1)
	if len(r.call.members) == 0 {
		r.call.relayed = false
	}
	r.broadcastLocked(r.callFrameLocked(r.callMax), false)
}

// replaceInCallLocked gives a reconnecting member's call place to its new
// connection, so that a dropped WebSocket does not end the member's call:
// its media never went through the server.
func (r *room) replaceInCallLocked(old, c *client) {
	if i := slices.Index(r.call.members, old); i >= 0 {
		r.call.members[i] = c
	}
}

// relaySignal delivers a signal frame from c to the member it names, both
// in the call, stamped with c's name.
func (r *room) relaySignal(c *client, in signalPayload) *errorPayload {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.kicked {
		return nil
	}
	if in.To == c.name {
		return &errorPayload{Code: codeBadRecipient, Text: "a signal cannot be addressed to oneself"}
	}
	at := slices.IndexFunc(r.members, func(m *client) bool { return m.name == in.To })
	if at < 0 {
		return &errorPayload{Code: codeBadRecipient, Text: "no member of this room has that name"}
	}
	to := r.members[at]
	if !slices.Contains(r.call.members, c) || !slices.Contains(r.call.members, to) {
		return &errorPayload{Code: codeNotInCall, Text: "signals go between members of the room's call; join it first"}
	}
	if r.cipher.E2EE && !sealedSignal(in.Data) {
		return &errorPayload{Code: codeNotEncrypted, Text: "this room is end-to-end encrypted: signal data must be a sealed string (e1. + base64url)"}
	}
	// Too slow a recipient is cut off by the next broadcast, as for typing.
	to.enqueue(encodeFrame(typeSignal, signalPayload{From: c.name, Data: in.Data}), false)
	return nil
}

// sealedSignal reports whether data is a JSON string sealed by the page.
func sealedSignal(data json.RawMessage) bool {
	var str string
	if json.Unmarshal(data, &str) != nil {
		return false
	}
	body, ok := strings.CutPrefix(str, sealedPrefix)
	return ok && body != "" && isBase64URL(body)
}

// callFrameLocked encodes the call frame that tells the room who is in its
// call.
func (r *room) callFrameLocked(max int) []byte {
	return encodeFrame(typeCall, r.callInfoLocked(max))
}

// callInfoLocked is the call's state as welcome and call frames carry it.
func (r *room) callInfoLocked(max int) *callInfo {
	info := &callInfo{Max: max, Members: make([]string, len(r.call.members))}
	for i, m := range r.call.members {
		info.Members[i] = m.name
	}
	return info
}

// noteRelayed counts, once per call, a call in which the member whose TURN
// credentials carry id took a relay allocation.
func (s *server) noteRelayed(id string) {
	v, ok := s.turnIDs.Load(id)
	if !ok {
		return
	}
	c := v.(*client)
	c.room.noteRelayed(c)
}

// noteRelayed counts the room's call as relayed, once per call, when c is
// in it.
func (r *room) noteRelayed(c *client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.call.relayed && slices.Contains(r.call.members, c) {
		r.call.relayed = true
		r.metrics.callsRelayed.Add(1)
	}
}

// writeCallMetrics writes the call series: counts only, never names.
func (m *serverMetrics) writeCallMetrics(b io.Writer) {
	family := func(name, typ, help string) { fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ) }
	family("hallway_calls_total", "counter", "Calls started: a first member joined a room's call.")
	fmt.Fprintf(b, "hallway_calls_total %d\n", m.callsStarted.Load())
	family("hallway_calls_relayed_total", "counter", "Calls in which a member used the built-in TURN relay.")
	fmt.Fprintf(b, "hallway_calls_relayed_total %d\n", m.callsRelayed.Load())
	family("hallway_call_joins_total", "counter", "Times a member joined a call.")
	fmt.Fprintf(b, "hallway_call_joins_total %d\n", m.callJoins.Load())
	family("hallway_call_participants", "gauge", "Members in a call now.")
	fmt.Fprintf(b, "hallway_call_participants %d\n", m.callParticipants.Load())
}

// callWelcomeLocked is the call state a newcomer's welcome carries, or nil
// when calls are off.
func (r *room) callWelcomeLocked() *callInfo {
	if r.callMax == 0 {
		return nil
	}
	return r.callInfoLocked(r.callMax)
}
