// Replies and reactions. A message may name the one it answers (replyTo),
// which must still be in the room's history; an ordinary room's reply gets
// a short quote of it. Members react to any held message with an emoji, one
// of each per person; reactions are room state kept beside the history,
// counted in its bytes and forgotten with their message.

package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of reactions and quotes.
const (
	// maxMessageEmoji is how many different emoji one message may carry.
	maxMessageEmoji = 20
	// maxRoomReactions is how many reactions (a person's emoji on a
	// message) a room's held messages may carry together.
	maxRoomReactions = 1000
	// maxEmojiRunes and maxEmojiBytes bound one emoji: the longest common
	// ones (a family, a kiss with skin tones) are 10 code points.
	maxEmojiRunes = 10
	maxEmojiBytes = 40
	// maxSealedEmojiBytes bounds an encrypted room's sealed emoji: "r1."
	// and base64url of a 12-byte IV, the emoji and a 16-byte tag.
	maxSealedEmojiBytes = 3 + (12+maxEmojiBytes+16+2)*4/3
	// maxQuoteRunes is how much of the original a reply quotes.
	maxQuoteRunes = 80
)

// sealedEmojiPrefix starts every emoji sealed by static/crypto.js.
const sealedEmojiPrefix = "r1."

// roomReactions is a room's reactions, by message id, for held messages
// only. Guarded by room.mu.
type roomReactions struct {
	byID  map[uint64]*heldReactions
	count int  // reactions over all held messages, against maxRoomReactions
	used  bool // any reaction was ever made here: a resume must hear of removals
}

// heldReactions is one held message's reactions and their encoded size,
// which the room's history bytes include.
type heldReactions struct {
	list  []reaction
	bytes int
}

// holdsLocked reports whether the room's history still holds message id.
// The history holds consecutive ids ending at lastID (see replayLocked).
func (r *room) holdsLocked(id uint64) bool {
	return id > 0 && id <= r.lastID && id > r.lastID-uint64(len(r.history))
}

// errUnknownMessage answers a reply or a reaction to a message not held.
func errUnknownMessage(clientID string) *errorPayload {
	return &errorPayload{Code: codeUnknownMessage, Text: "that message is no longer in this room's history", ClientID: clientID}
}

// checkReply accepts in's replyTo when the room still holds that message,
// and in an ordinary room makes its quote. A message trimmed between this
// check and its publication is still quoted correctly. The quote is left
// out of a reply so long that with it the frame could pass maxFrameBytes:
// when text and quote pass twice maxBytes (MAX_MESSAGE_BYTES).
func (r *room) checkReply(in *inboundMessage, maxBytes int) *errorPayload {
	if in.ReplyTo == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.holdsLocked(in.ReplyTo) {
		return errUnknownMessage(in.ClientID)
	}
	if !r.cipher.E2EE {
		in.quote = quoteOf(r.history[in.ReplyTo-(r.lastID-uint64(len(r.history)))-1])
		text, _ := json.Marshal(in.Message)
		quote, _ := json.Marshal(in.quote)
		if len(text)+len(quote) > 2*maxBytes {
			in.quote = nil
		}
	}
	return nil
}

// quoteOf makes the quote of a history frame: a message's author and the
// start of its text, or a file's uploader and its name.
func quoteOf(frame []byte) *quotePayload {
	var env struct {
		Type    string `json:"type"`
		Payload struct {
			Username string `json:"username"`
			Message  string `json:"message"`
			Name     string `json:"name"`
		} `json:"payload"`
	}
	json.Unmarshal(frame, &env) // The server encoded it.
	text := env.Payload.Message
	if env.Type == typeFile {
		text = "📎 " + env.Payload.Name
	}
	text = strings.Join(strings.Fields(text), " ")
	if utf8.RuneCountInString(text) > maxQuoteRunes {
		text = string([]rune(text)[:maxQuoteRunes]) + "…"
	}
	return &quotePayload{Username: env.Payload.Username, Text: text}
}

// validEmoji accepts one emoji by a rule a server can apply without
// Unicode's emoji tables: 1–10 code points and 40 bytes, a symbol (So or
// Sm) followed only by modifiers, variation selectors and tag characters,
// symbols joined by the zero-width joiner, or a flag's two regional
// indicators. Letters, digits, ASCII, spaces, controls and two emoji side
// by side are refused. The page checks one grapheme with Intl.Segmenter.
func validEmoji(e string) bool {
	if e == "" || len(e) > maxEmojiBytes || !utf8.ValidString(e) || utf8.RuneCountInString(e) > maxEmojiRunes {
		return false
	}
	needBase, flag := true, false // a symbol must come next; a flag's second half may
	for _, r := range e {
		regional := r >= 0x1f1e6 && r <= 0x1f1ff
		switch {
		case r < 0x80:
			return false
		case needBase && unicode.In(r, unicode.So, unicode.Sm):
			needBase, flag = false, regional
		case flag && regional:
			flag = false
		case needBase:
			return false
		case r == 0x200d: // zero-width joiner
			needBase, flag = true, false
		case unicode.In(r, unicode.Sk, unicode.Mn, unicode.Me), r >= 0xe0020 && r <= 0xe007f:
			flag = false
		default:
			return false
		}
	}
	return !needBase
}

// checkEmoji refuses an emoji this room cannot take: in an encrypted room
// one that is not sealed, elsewhere one that is not an emoji.
func (rc roomCipher) checkEmoji(e string) *errorPayload {
	if rc.E2EE {
		body, ok := strings.CutPrefix(e, sealedEmojiPrefix)
		if ok && body != "" && len(e) <= maxSealedEmojiBytes && isBase64URL(body) {
			return nil
		}
		return &errorPayload{Code: codeNotEncrypted, Text: "this room is end-to-end encrypted: reactions must be sealed (r1. + base64url)"}
	}
	if !validEmoji(e) {
		return &errorPayload{Code: codeBadEmoji, Text: fmt.Sprintf("a reaction is one emoji: up to %d code points, no letters, digits or spaces", maxEmojiRunes)}
	}
	return nil
}

// reactFrame handles a client's react frame. Reactions share the flood
// control of chat messages (MESSAGE_RATE).
func (s *server) reactFrame(c *client, raw json.RawMessage) *errorPayload {
	var req reactRequest
	if err := json.Unmarshal(raw, &req); err != nil || req.On == nil || req.ID == 0 {
		return &errorPayload{Code: codeBadMessage, Text: "react payload must be {\"id\": message id, \"emoji\": string, \"on\": true or false}"}
	}
	if rejected := c.room.cipher.checkEmoji(req.Emoji); rejected != nil {
		return rejected
	}
	if c.flooding() {
		return &errorPayload{Code: codeRateLimited, Text: fmt.Sprintf("slow down: at most %g messages or reactions a second, %d at once", s.cfg.MessageRate, s.cfg.MessageBurst)}
	}
	r := c.room
	r.mu.Lock()
	rejected := r.reactLocked(c, req.ID, req.Emoji, *req.On, int(s.cfg.HistoryBytes))
	r.mu.Unlock()
	if rejected == nil && s.history.over() {
		s.trimHistory()
	}
	return rejected
}

// reactLocked adds or removes c's reaction and tells the room, which then
// holds at most maxBytes (HISTORY_BYTES) of history. A change that is no
// change (a second add, a removal of nothing) is answered to c alone with
// the message's reactions as they are.
func (r *room) reactLocked(c *client, id uint64, emoji string, on bool, maxBytes int) *errorPayload {
	if c.kicked {
		return nil
	}
	if !r.holdsLocked(id) {
		return errUnknownMessage("")
	}
	held := r.react.byID[id]
	if held == nil {
		held = &heldReactions{}
	}
	at := slices.IndexFunc(held.list, func(x reaction) bool { return x.Emoji == emoji })
	mine := at >= 0 && slices.Contains(held.list[at].Users, c.name)
	frame := reactPayload{ID: id, Emoji: emoji, Username: c.name, On: on}
	if mine == on {
		frame.Reactions = append([]reaction{}, held.list...)
		c.enqueue(encodeFrame(typeReact, frame), false)
		return nil
	}
	if on && (r.react.count >= maxRoomReactions || at < 0 && len(held.list) >= maxMessageEmoji) {
		return &errorPayload{Code: codeTooManyReactions, Text: fmt.Sprintf("at most %d different emoji on a message and %d reactions in a room", maxMessageEmoji, maxRoomReactions)}
	}
	held.list = toggled(held.list, at, emoji, c.name, on)
	if on {
		r.react.count++
	} else {
		r.react.count--
	}
	r.react.used = true
	r.resizeReactionsLocked(id, held)
	frame.Reactions = held.list
	r.lastActive.Store(r.histTotal.activity.Add(1))
	r.broadcastLocked(encodeFrame(typeReact, frame), false)
	for len(r.history) > 0 && r.histBytes > maxBytes {
		r.histTotal.add(-r.dropOldestLocked())
	}
	return nil
}

// toggled returns list with name added to or removed from emoji's users
// (at is emoji's index, or -1); an emoji nobody uses any more goes.
func toggled(list []reaction, at int, emoji, name string, on bool) []reaction {
	if on {
		if at < 0 {
			return append(list, reaction{Emoji: emoji, Users: []string{name}})
		}
		list[at].Users = append(list[at].Users, name)
		return list
	}
	list[at].Users = slices.DeleteFunc(list[at].Users, func(u string) bool { return u == name })
	if len(list[at].Users) == 0 {
		list = slices.Delete(list, at, at+1)
	}
	return list
}

// resizeReactionsLocked stores held as message id's reactions, or forgets
// them when there are none, and counts the change of their encoded size in
// the room's history bytes and in the history budget of all rooms.
func (r *room) resizeReactionsLocked(id uint64, held *heldReactions) {
	size := 0
	if len(held.list) > 0 {
		b, _ := json.Marshal(messageReactions{ID: id, Reactions: held.list})
		size = len(b)
		if r.react.byID == nil {
			r.react.byID = make(map[uint64]*heldReactions)
		}
		r.react.byID[id] = held
	} else {
		delete(r.react.byID, id)
	}
	r.histBytes += size - held.bytes
	r.histTotal.add(size - held.bytes)
	held.bytes = size
}

// forgetReactionsLocked drops the reactions of message id, which left the
// history, and returns their encoded size.
func (r *room) forgetReactionsLocked(id uint64) int {
	held := r.react.byID[id]
	if held == nil {
		return 0
	}
	delete(r.react.byID, id)
	for _, x := range held.list {
		r.react.count -= len(x.Users)
	}
	return held.bytes
}

// reactionsFrameLocked encodes the reactions frame that follows a join's
// replay, or returns nil when there is nothing to say: no held message has
// reactions, and on a fresh join (or in a room that never had any) no
// earlier state needs correcting.
func (r *room) reactionsFrameLocked(resume bool) []byte {
	if len(r.react.byID) == 0 && (!resume || !r.react.used) {
		return nil
	}
	p := reactionsPayload{From: r.lastID - uint64(len(r.history)) + 1, Messages: []messageReactions{}}
	for id := p.From; id <= r.lastID; id++ {
		if held := r.react.byID[id]; held != nil {
			p.Messages = append(p.Messages, messageReactions{ID: id, Reactions: held.list})
		}
	}
	return encodeFrame(typeReactions, p)
}
