// What the server knows of end-to-end encrypted rooms: a room's flag and key
// check, and the refusal of unsealed text. The encryption itself is the page's
// (static/crypto.js): the server never holds a key. It also prints the embedded
// web files' hashes for hallway -version.

package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// End-to-end encrypted rooms. The page encrypts every message with a key
// that lives in the link's fragment, which browsers never send; the server
// relays and replays the ciphertext without being able to read it. What the
// server does here guards against mistakes, not against itself: it marks the
// room, and refuses text that is plainly not a sealed message.

// sealedPrefix starts every message sealed by static/crypto.js (format
// version 1): "e1." then base64url of IV, ciphertext and tag.
const sealedPrefix = "e1."

// roomCipher is what the server knows of an encrypted room: that it is one,
// and the key check its creator gave, so that a page with another key can
// tell at once. Both are set when the room is created and never change.
type roomCipher struct {
	// E2EE marks a room created with {"e2ee": true}.
	E2EE bool `json:"e2ee,omitempty"`
	// KeyCheck is 16 bytes derived from the room key (base64url, 22
	// characters); it reveals nothing about the key. Optional.
	KeyCheck string `json:"keyCheck,omitempty"`
}

// keyCheckLen is the length of a key check: 16 bytes in unpadded base64url.
const keyCheckLen = 22

// valid reports whether a creation request's cipher fields make sense: a
// key check only for an encrypted room, and only of the right shape.
func (rc roomCipher) valid() bool {
	if rc.KeyCheck == "" {
		return true
	}
	return rc.E2EE && len(rc.KeyCheck) == keyCheckLen && isBase64URL(rc.KeyCheck)
}

// refuse answers a message that an encrypted room cannot take: one without
// the sealed prefix, or whose body is not base64url. It returns nil for
// every message in an ordinary room.
func (rc roomCipher) refuse(in inboundMessage) *errorPayload {
	if !rc.E2EE {
		return nil
	}
	body, ok := strings.CutPrefix(in.Message, sealedPrefix)
	if ok && body != "" && isBase64URL(body) {
		return nil
	}
	return &errorPayload{
		Code:     codeNotEncrypted,
		Text:     "this room is end-to-end encrypted: messages must be sealed (e1. + base64url)",
		ClientID: in.ClientID,
	}
}

// isBase64URL reports whether s holds only the unpadded base64url alphabet.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// writeStaticHashes prints the SHA-256 of every embedded web file, as
// sha256sum does, so that anyone can compare them with what a server sends:
// a server that altered the page's scripts could read the keys.
func writeStaticHashes(w io.Writer) error {
	files := loadStatic()
	for _, name := range slices.Sorted(maps.Keys(files)) {
		sum := sha256.Sum256(files[name].data)
		if _, err := fmt.Fprintf(w, "%s  %s\n", hex.EncodeToString(sum[:]), name); err != nil {
			return err
		}
	}
	return nil
}
