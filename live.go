// Keeping a connection alive and whole: ping and pong, typing, and resuming
// after a reconnect (since, epoch, rejoin). Chat messages go through chat.go.

package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"golang.org/x/time/rate"
)

// This file is what keeps a room usable on real networks: the heartbeat a
// page can see (ping and pong frames), resuming after a reconnect instead of
// replaying everything (?since=), and the typing indicator of small rooms.

// Flood control of ping and typing frames, apart from chat messages: an
// honest page sends a ping every 15 s and at most a typing start and stop
// every 3 s, far below this. A frame over it is refused with rate_limited,
// and that refusal counts against the abuse budget, so a flood ends in 1008.
const (
	controlBurst = 20
	controlRate  = 2 // frames per second
)

// pongFrame answers every ping; it is the same bytes each time.
var pongFrame = encodeFrame(typePong, struct{}{})

// control handles a frame other than chatMessage: a ping is answered to its
// sender alone, and typing is relayed to the others in a small room. Neither
// is stored, logged or counted as a message. It returns an error payload
// for a frame it refuses.
func (s *server) control(c *client, env envelope) *errorPayload {
	if env.Type == typeCall || env.Type == typeSignal {
		return s.callControl(c, env)
	}
	if env.Type == typeReact {
		return s.reactFrame(c, env.Payload)
	}
	if env.Type != typePing && env.Type != typeTyping && env.Type != typeHost {
		return errUnknownType
	}
	if c.control == nil {
		c.control = rate.NewLimiter(controlRate, controlBurst)
	}
	if !c.control.Allow() {
		return &errorPayload{Code: codeRateLimited, Text: fmt.Sprintf("slow down: at most %d ping and typing frames a second, %d at once", controlRate, controlBurst)}
	}
	if env.Type == typeHost {
		return s.hostFrame(c, env.Payload)
	}
	if env.Type == typePing {
		c.enqueue(pongFrame, false)
		return nil
	}
	var t typingPayload
	if err := json.Unmarshal(env.Payload, &t); err != nil || t.Active == nil {
		return &errorPayload{Code: codeBadMessage, Text: "typing payload must be {\"active\": true or false}"}
	}
	c.room.relayTyping(c, *t.Active)
	return nil
}

// relayTyping tells the other members of a room of up to maxListedUsers
// that c started or stopped typing, under the name the server gave c. In a
// larger room it does nothing: a crowd's typing is noise.
func (r *room) relayTyping(c *client, active bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.kicked || len(r.members) > maxListedUsers {
		return
	}
	frame := encodeFrame(typeTyping, typingPayload{Username: c.name, Active: &active})
	for _, m := range r.members {
		if m != c {
			// A member too slow for this frame is cut off by the next
			// message's broadcast; typing alone never costs anyone their place.
			m.enqueue(frame, false)
		}
	}
}

// resumePoint is where a reconnecting client left off: the last message id
// it holds, in the room's incarnation named by epoch. The zero value is a
// fresh join, which gets the whole history.
type resumePoint struct {
	ok     bool
	since  uint64
	epoch  string
	rejoin string // the old connection's secret, if the client kept it
}

// rejoinBytes is the size of a rejoin secret: 128 random bits, which no
// one guesses, sent as 22 characters of base64url.
const rejoinBytes = 16

// maxEpochLen bounds the epoch a client may send back; the server's own are
// 12 hex digits.
const maxEpochLen = 32

// parseResume reads ?since=<id>&epoch=<epoch> from a join. An epoch without
// since, a since that is not a whole number, or an epoch that is not short
// lower-case hex is an error.
func parseResume(q url.Values) (resumePoint, error) {
	since, epoch, rejoin := q.Get("since"), q.Get("epoch"), q.Get("rejoin")
	if b, err := base64.RawURLEncoding.DecodeString(rejoin); err != nil || len(b) != rejoinBytes && rejoin != "" {
		return resumePoint{}, errors.New("rejoin must be the secret a welcome frame gave")
	}
	if since == "" {
		if epoch != "" {
			return resumePoint{}, errors.New("epoch is only meaningful with since")
		}
		return resumePoint{rejoin: rejoin}, nil
	}
	n, err := strconv.ParseUint(since, 10, 64)
	if err != nil {
		return resumePoint{}, fmt.Errorf("since must be a message id, a whole number from 0")
	}
	if len(epoch) > maxEpochLen {
		return resumePoint{}, fmt.Errorf("epoch is at most %d characters", maxEpochLen)
	}
	if _, err := hex.DecodeString(epoch); err != nil {
		return resumePoint{}, errors.New("epoch must be the hex digits a welcome frame gave")
	}
	return resumePoint{ok: true, since: n, epoch: epoch, rejoin: rejoin}, nil
}

// newEpoch names a new incarnation of a room.
func newEpoch() string {
	return hex.EncodeToString(randomBytes(6))
}

// replayLocked returns the history frames a joining client gets, and
// whether some it asked for are gone. The history always holds the newest
// messages, with consecutive ids ending at lastID, so the ids it holds are
// known without decoding it.
//
// A fresh join gets everything held. A resume in this epoch gets what came
// after its id, and a gap when some of that was trimmed. A resume from
// another epoch, or with an id this room never reached (it was re-created
// since), gets everything held, and a gap when this epoch's first messages
// are gone too.
func (r *room) replayLocked(from resumePoint) (frames [][]byte, gap bool) {
	held := uint64(len(r.history))
	before := r.lastID - held // the newest id no longer held
	if !from.ok {
		return r.history, false
	}
	if (from.epoch != "" && from.epoch != r.epoch) || from.since > r.lastID {
		return r.history, before > 0
	}
	if from.since < before {
		return r.history, true
	}
	return r.history[held-(r.lastID-from.since):], false
}
