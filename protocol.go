package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// This file is the wire format: every frame, both ways, is one text message
// holding an envelope {"type": …, "payload": {…}}. docs/protocol.md shows each frame.

// Frame types.
const (
	typeWelcome     = "welcome"
	typeChatMessage = "chatMessage"
	typeSystem      = "system"
	typeUserCount   = "userCount"
	typeError       = "error"
	typePing        = "ping"   // client → server: are you there?
	typePong        = "pong"   // server → that client alone: yes
	typeTyping      = "typing" // both ways; see typingPayload
	typeFile        = "file"   // server → clients: a file shared; see filePayload
	typeCall        = "call"   // client: join or leave the call (callRequest); server → all: who is in it (callInfo)
	typeSignal      = "signal" // both ways, to one call member only; see signalPayload

	typeReact     = "react"     // client: add or remove a reaction (reactRequest); server → all: reactPayload
	typeReactions = "reactions" // server → a joining client, after the replay: reactionsPayload
)

// Error codes carried by error frames and HTTP error bodies. They are stable:
// clients switch on them.
const (
	codeRateLimited      = "rate_limited"
	codeTooManyConns     = "too_many_connections"
	codeMessageTooLong   = "message_too_long"
	codeBadMessage       = "bad_message"
	codeBadRoom          = "bad_room"
	codeBadUsername      = "bad_username"
	codeBadRequest       = "bad_request"
	codeOriginNotAllowed = "origin_not_allowed"
	codeRoomFull         = "room_full"
	codeServerFull       = "server_full"
	codeShuttingDown     = "shutting_down"
	codeUpgradeRequired  = "upgrade_required"
	codeNotFound         = "not_found"
	codeNotEncrypted     = "not_encrypted"
	codeCallFull         = "call_full"        // the call has CALL_MAX members already
	codeNotInCall        = "not_in_call"      // a signal between members not both in the call
	codeBadRecipient     = "bad_recipient"    // a signal to oneself or to no member of the room
	codeSignalTooLarge   = "signal_too_large" // a signal payload over maxSignalBytes

	codeUnknownMessage   = "unknown_message"    // a reply or reaction to an id the room's history no longer holds
	codeBadEmoji         = "bad_emoji"          // a reaction that is not one emoji
	codeTooManyReactions = "too_many_reactions" // past maxMessageEmoji on a message or maxRoomReactions in a room
)

// Limits of the protocol itself, as opposed to the configurable ones.
const (
	maxRoomLen     = 64
	maxUsernameLen = 32 // in characters
	maxClientIDLen = 64
	// maxListedUsers is the largest room whose userCount frames carry the
	// member list and whose joins and leaves are announced one by one. Past
	// it, the count alone tells of arrivals: a crowd filling a room would
	// otherwise send every member a notice and a list per newcomer.
	maxListedUsers = 64
)

// envelope is the outer shape of every frame.
type envelope struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`

	// chat is a chatMessage's payload when decodeEnvelope decoded it with
	// the envelope; Payload is then empty.
	chat *inboundMessage
}

// outEnvelope is an envelope being encoded by the server.
type outEnvelope struct {
	Type    string `json:"type"`
	Payload any    `json:"payload"`
}

// welcomePayload is always a client's first frame: who it is and where.
type welcomePayload struct {
	Username        string `json:"username"`
	Room            string `json:"room"`
	MaxMessageBytes int    `json:"maxMessageBytes"`
	roomCipher             // an encrypted room says so; ordinary rooms omit both fields
	// Epoch names this incarnation of the room: message ids restart from 1
	// when a room is destroyed and made again, under a new epoch.
	Epoch string `json:"epoch,omitempty"`
	// Gap is true on a resume (?since=) when the replay cannot hold every
	// message after the client's id: history was trimmed, or the id belongs
	// to another epoch and this one's first messages are gone.
	Gap bool `json:"gap,omitempty"`
	// Rejoin is this connection's secret. A client that reconnects with
	// ?rejoin=<it> while the server still holds this connection (its
	// network died unnoticed) takes its place and its name.
	Rejoin string `json:"rejoin,omitempty"`
	// Files says how to share files here; absent when the server takes none.
	Files *fileLimits `json:"files,omitempty"`
	// Call is who is in the room's call, and how many it may hold; absent
	// when calls are turned off (CALL_MAX=0).
	Call *callInfo `json:"call,omitempty"`
	// ICEServers are the STUN and TURN servers for this member's calls,
	// with TURN credentials made for this connection alone (see turn.go).
	// Absent when none is configured: calls then use host candidates only.
	ICEServers []iceServer `json:"iceServers,omitempty"`
}

// fileLimits is what a welcome says of files: the largest one, what one
// room holds, this connection's upload token (the Upload-Token header of
// POST /r/{room}/files, good while this connection lasts) and, on Fly.io,
// the machine uploads must name in fly-force-instance-id.
type fileLimits struct {
	MaxBytes  int64  `json:"maxBytes"`
	RoomBytes int64  `json:"roomBytes"`
	Token     string `json:"token"`
	Machine   string `json:"machine,omitempty"`
}

// filePayload is a file shared in a room, in history like a message: its
// id is the next message id. File is the unguessable id to fetch with GET
// /r/{room}/files/{file}. In an ordinary room Type, Name and an image's
// Width and Height are the uploader's; in an encrypted one they are all
// sealed in Sealed instead.
type filePayload struct {
	ID       uint64 `json:"id"`
	Username string `json:"username"`
	File     string `json:"file"`
	Size     int64  `json:"size"`
	Type     string `json:"type,omitempty"`
	Name     string `json:"name,omitempty"`
	Sealed   string `json:"sealed,omitempty"`
	Width    int    `json:"width,omitempty"` // of an image, as its uploader measured it
	Height   int    `json:"height,omitempty"`
	TS       int64  `json:"ts"`
	ClientID string `json:"clientId,omitempty"`
}

// callRequest is a client's call frame: {"action": "join"} or "leave".
type callRequest struct {
	Action string `json:"action"`
}

// callInfo is the server's call frame, sent to every member of the room
// whenever the call changes: its members by name, in order of joining.
type callInfo struct {
	Members []string `json:"members"`
	Max     int      `json:"max"`
}

// signalPayload is a signal frame: a session description or ICE candidate
// for one member. From a client it carries To and Data; the server delivers
// From and Data to that member alone. Data is opaque to the server, except
// that in an encrypted room it must be a sealed string.
type signalPayload struct {
	To   string          `json:"to,omitempty"`
	From string          `json:"from,omitempty"`
	Data json.RawMessage `json:"data"`
}

// iceServer is one entry of RTCConfiguration.iceServers, as the page hands
// it to RTCPeerConnection.
type iceServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// typingPayload is a typing frame. From a client it carries only Active;
// the server relays it to the other members with the sender's name.
type typingPayload struct {
	Username string `json:"username,omitempty"`
	Active   *bool  `json:"active"`
}

// chatMessagePayload is a message as the room saw it. ID strictly increases
// within a room; TS is Unix milliseconds; ClientID echoes the sender's tag.
type chatMessagePayload struct {
	ID       uint64 `json:"id"`
	Username string `json:"username"`
	Message  string `json:"message"`
	TS       int64  `json:"ts"`
	ClientID string `json:"clientId,omitempty"`
	// ReplyTo is the id of the message this one answers, which the room
	// held when it was sent. Quote is a short excerpt of it, made by the
	// server in an ordinary room; an encrypted room's quote is sealed in
	// Message by the page instead.
	ReplyTo uint64        `json:"replyTo,omitempty"`
	Quote   *quotePayload `json:"quote,omitempty"`
}

// quotePayload is what a reply shows of the message it answers: its
// author and its first maxQuoteRunes characters, whitespace folded.
type quotePayload struct {
	Username string `json:"username"`
	Text     string `json:"text"`
}

// reactRequest is a client's react frame: add (On true) or remove its
// reaction Emoji to the message ID. In an encrypted room Emoji is sealed.
type reactRequest struct {
	ID    uint64 `json:"id"`
	Emoji string `json:"emoji"`
	On    *bool  `json:"on"`
}

// reactPayload is the server's react frame to every member: who changed
// which reaction, and the message's reactions as they now are.
type reactPayload struct {
	ID        uint64     `json:"id"`
	Emoji     string     `json:"emoji"`
	Username  string     `json:"username"`
	On        bool       `json:"on"`
	Reactions []reaction `json:"reactions"`
}

// reaction is one emoji on a message and who chose it, in order of choosing.
type reaction struct {
	Emoji string   `json:"emoji"`
	Users []string `json:"users"`
}

// reactionsPayload follows a joining client's replay: the reactions of
// every held message that has any. Held messages from From on that it does
// not list have none, so a resumed page drops what it showed for them.
type reactionsPayload struct {
	From     uint64             `json:"from"`
	Messages []messageReactions `json:"messages"`
}

// messageReactions is one message's reactions in a reactions frame.
type messageReactions struct {
	ID        uint64     `json:"id"`
	Reactions []reaction `json:"reactions"`
}

// systemPayload is a notice from the server, such as a join or a leave.
type systemPayload struct {
	Text string `json:"text"`
	TS   int64  `json:"ts"`
}

// userCountPayload tells everyone how many are in the room and, in rooms of
// up to maxListedUsers, who, in order of arrival.
type userCountPayload struct {
	Count int      `json:"count"`
	Users []string `json:"users,omitempty"`
}

// errorPayload explains why a frame from the client was not accepted.
// ClientID names the rejected message when the client tagged it.
type errorPayload struct {
	Code     string `json:"code"`
	Text     string `json:"text"`
	ClientID string `json:"clientId,omitempty"`
}

// inboundMessage is the payload of a client's chatMessage frame. A username
// in it is ignored: the server stamps the sender's own.
type inboundMessage struct {
	Message  string `json:"message"`
	ClientID string `json:"clientId"`
	ReplyTo  uint64 `json:"replyTo,omitempty"` // the id of the message answered, if any

	quote *quotePayload // the excerpt the server made of ReplyTo (reactions.go)
}

// encodeFrame encodes one envelope; the result is shared by every recipient.
// It does not HTML-escape: every client renders text as text, and escaping
// would store and send "<" as the six bytes \u003c.
func encodeFrame(typ string, payload any) []byte {
	e := frameEncoders.Get().(*frameEncoder)
	e.buf.Reset()
	if err := e.enc.Encode(outEnvelope{Type: typ, Payload: payload}); err != nil {
		panic(fmt.Sprintf("encode %s frame: %v", typ, err)) // Only plain structs are encoded.
	}
	// The copy is the frame's exact size: history keeps it for as long as
	// the room holds the message.
	frame := bytes.Clone(bytes.TrimSuffix(e.buf.Bytes(), []byte{'\n'}))
	if e.buf.Cap() <= maxPooledFrame {
		frameEncoders.Put(e)
	}
	return frame
}

// frameEncoder is a JSON encoder with its buffer, reused across frames.
type frameEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// frameEncoders holds idle frameEncoders, so that a message costs one
// allocation for its frame rather than a buffer and an encoder besides.
var frameEncoders = sync.Pool{New: func() any {
	e := &frameEncoder{}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}}

// maxPooledFrame is the largest buffer kept for reuse by encodeFrame and
// readFrame: a welcome or a replay may be far larger, once in a while, and
// pooling it would keep that memory for good.
const maxPooledFrame = 16 << 10

// nowMillis is the ts of frames.
func nowMillis() int64 { return time.Now().UnixMilli() }

// parseClientFrame decodes one chatMessage frame from a client. It returns
// the message to publish, or an error payload to send back instead.
func parseClientFrame(data []byte, maxBytes int) (inboundMessage, *errorPayload) {
	env, rejected := decodeEnvelope(data)
	if rejected != nil {
		return inboundMessage{}, rejected
	}
	if env.Type != typeChatMessage {
		return inboundMessage{}, errUnknownType
	}
	return parseChatMessage(env, maxBytes)
}

// errUnknownType answers a frame of a type clients may not send.
var errUnknownType = &errorPayload{Code: codeBadMessage, Text: "unknown frame type; clients send chatMessage, ping, typing, react, call or signal"}

// chatPrefix starts a chatMessage frame as the page and most clients
// write it, type first.
var chatPrefix = []byte(`{"type":"chatMessage",`)

// decodeEnvelope decodes the outer shape of one client frame. Nearly every
// frame is a chat message, so one that starts like one is decoded whole in
// a single pass; if that fails in any way, the frame is decoded as any
// other, and answered as before.
func decodeEnvelope(data []byte) (envelope, *errorPayload) {
	if bytes.HasPrefix(data, chatPrefix) {
		var f struct {
			Type    string          `json:"type"`
			Payload *inboundMessage `json:"payload"`
		}
		if json.Unmarshal(data, &f) == nil && f.Type == typeChatMessage && f.Payload != nil {
			return envelope{Type: typeChatMessage, chat: f.Payload}, nil
		}
	}
	return decodeAnyEnvelope(data)
}

// decodeAnyEnvelope decodes the outer shape of a client frame of any type,
// leaving the payload undecoded.
func decodeAnyEnvelope(data []byte) (envelope, *errorPayload) {
	var env envelope
	// Unmarshal refuses anything after the envelope but white space.
	if err := json.Unmarshal(data, &env); err != nil {
		return envelope{}, &errorPayload{Code: codeBadMessage, Text: "frame is not one JSON envelope {\"type\",\"payload\"}"}
	}
	return env, nil
}

// parseChatMessage checks the payload of env, a chatMessage frame.
func parseChatMessage(env envelope, maxBytes int) (inboundMessage, *errorPayload) {
	var in inboundMessage
	if env.chat != nil {
		in = *env.chat
	} else if err := json.Unmarshal(env.Payload, &in); err != nil {
		return inboundMessage{}, &errorPayload{Code: codeBadMessage, Text: "chatMessage payload must be {\"message\": string}"}
	}
	if !validClientID(in.ClientID) {
		return inboundMessage{}, &errorPayload{Code: codeBadMessage, Text: "clientId must be up to 64 of A-Z a-z 0-9 _ -"}
	}
	tagged := func(code, text string) *errorPayload {
		return &errorPayload{Code: code, Text: text, ClientID: in.ClientID}
	}
	switch {
	case strings.TrimSpace(in.Message) == "":
		return in, tagged(codeBadMessage, "message is empty")
	case len(in.Message) > maxBytes:
		return in, tagged(codeMessageTooLong, fmt.Sprintf("message is %d bytes; the limit is %d", len(in.Message), maxBytes))
	case strings.ContainsFunc(in.Message, escapesLong):
		return in, tagged(codeBadMessage, "message holds control characters; only tab and line breaks are allowed")
	}
	return in, nil
}

// maxFrameBytes bounds the encoded chatMessage frame of a message of
// maxBytes: twice the text (see escapesLong) plus the envelope, the id,
// the name, the time and the client's tag. A reply's quote fits in what
// its text leaves of twice maxBytes (see checkReply).
func maxFrameBytes(maxBytes int) int {
	return 2*maxBytes + 512
}

// escapesLong reports the characters a message may not hold: the control
// characters that JSON writes as six bytes (\u0001). Tab, line feed and
// carriage return stay allowed as two bytes each, so an encoded message is
// never more than twice its text (a quote, a backslash, or U+2028 and
// U+2029, which encoding/json always escapes, are the other doublings).
func escapesLong(r rune) bool {
	return r < 0x20 && r != '\t' && r != '\n' && r != '\r'
}

// validClientID accepts the short opaque tags a UI uses to match echoes.
func validClientID(s string) bool {
	if len(s) > maxClientIDLen {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// normalizeRoom folds a room name to lower case and checks it is 1–64 of
// [a-z0-9_-].
func normalizeRoom(s string) (string, bool) {
	if len(s) == 0 || len(s) > maxRoomLen {
		return "", false
	}
	s = strings.ToLower(s)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return "", false
		}
	}
	return strings.Clone(s), true // Not a piece of the request line, which it would keep alive.
}

// errBadUsername says what a username may be; it is shown to users as is.
var errBadUsername = errors.New("usernames are 1–32 characters of letters, digits, spaces and _ - .")

// normalizeUsername trims a requested name and checks it; blank becomes
// Anon_HHmmss from now.
func normalizeUsername(s string, now time.Time) (string, error) {
	if !utf8.ValidString(s) {
		return "", errBadUsername
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "Anon_" + now.Format("150405"), nil
	}
	if utf8.RuneCountInString(s) > maxUsernameLen {
		return "", errBadUsername
	}
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == ' ' || r == '_' || r == '-' || r == '.') {
			return "", errBadUsername
		}
	}
	if mixesLookalikeScripts(s) {
		return "", errMixedScripts
	}
	return strings.Clone(s), nil // Not a piece of the request line.
}

// errMixedScripts refuses a name such as "Аlice" with a Cyrillic А, which
// would pass for another member's name; it is shown to users as is.
var errMixedScripts = errors.New("usernames may not mix Latin, Greek and Cyrillic letters, which look alike")

// lookalikeScripts are the scripts whose letters are most often mistaken
// for one another.
var lookalikeScripts = []*unicode.RangeTable{unicode.Latin, unicode.Greek, unicode.Cyrillic}

// mixesLookalikeScripts reports whether s has letters from more than one of
// lookalikeScripts. Other mixes (Latin with Han, kana with kanji) are fine.
func mixesLookalikeScripts(s string) bool {
	seen := -1
	for _, r := range s {
		for i, script := range lookalikeScripts {
			if unicode.Is(script, r) {
				if seen >= 0 && seen != i {
					return true
				}
				seen = i
			}
		}
	}
	return false
}

// uniqueName returns name, or name with the first free suffix _2, _3, …,
// so that no two members share a name ignoring case. The result stays
// within maxUsernameLen characters.
func uniqueName(name string, taken func(key string) bool) string {
	if !taken(strings.ToLower(name)) {
		return name
	}
	for n := 2; ; n++ {
		suffix := fmt.Sprintf("_%d", n)
		base := []rune(name)
		if keep := maxUsernameLen - len(suffix); len(base) > keep {
			base = base[:keep]
		}
		candidate := string(base) + suffix
		if !taken(strings.ToLower(candidate)) {
			return candidate
		}
	}
}
