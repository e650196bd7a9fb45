package test

import "encoding/json"

// The wire protocol as docs/protocol.md documents it, written here from the
// client's side: these tests see the server only as any client would.

// envelope is one frame: a type and its payload.
type envelope struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// outEnvelope is a frame being encoded by a client.
type outEnvelope struct {
	Type    string `json:"type"`
	Payload any    `json:"payload"`
}

// welcomePayload is a member's first frame.
type welcomePayload struct {
	Username        string `json:"username"`
	Room            string `json:"room"`
	MaxMessageBytes int    `json:"maxMessageBytes"`
	Files           *struct {
		MaxBytes int64  `json:"maxBytes"`
		Token    string `json:"token"`
	} `json:"files"`
}

// filePayload is a shared file as members hear of it.
type filePayload struct {
	ID       uint64 `json:"id"`
	Username string `json:"username"`
	File     string `json:"file"`
	Size     int64  `json:"size"`
	Type     string `json:"type,omitempty"`
	Name     string `json:"name,omitempty"`
}

// chatMessagePayload is one message as members receive it.
type chatMessagePayload struct {
	ID       uint64 `json:"id"`
	Username string `json:"username"`
	Message  string `json:"message"`
	TS       int64  `json:"ts"`
	ClientID string `json:"clientId,omitempty"`
}

// errorPayload is a refusal: a stable code and a human text.
type errorPayload struct {
	Code     string `json:"code"`
	Text     string `json:"text"`
	ClientID string `json:"clientId,omitempty"`
}

// inboundMessage is what a client sends to say something.
type inboundMessage struct {
	Message  string `json:"message"`
	ClientID string `json:"clientId"`
}

// Headers of an upload, POST /r/{room}/files.
const (
	headerUploadToken = "Upload-Token"
	headerFileName    = "File-Name"
)

// Frame types, error codes and close reasons the tests look for.
const (
	typeWelcome     = "welcome"
	typePing        = "ping"
	typePong        = "pong"
	typeChatMessage = "chatMessage"
	typeFile        = "file"
	codeRoomFull    = "room_full"
	reasonAbuse     = "too many rejected frames"
)
