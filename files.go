package main

// Files shared in a room. They live in memory with their room, as its
// history does, and go when the room goes: nothing is ever written to disk.
// An upload is a plain streamed POST /r/{room}/files from a live member
// (the token its welcome gave it); the file then joins the room's history as
// a file frame, and anyone holding its unguessable id can GET it. Two
// budgets bound the memory: one per room, FILE_ROOM_BYTES, and one for
// every room together, FILE_TOTAL_BYTES; past either, the oldest files of
// the least recently active rooms go first. docs/files.md documents it all.

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Error codes of file requests, in the JSON error body {"code","text"}.
const (
	codeFileTooLarge  = "file_too_large"
	codeNotMember     = "not_member"
	codeBadFile       = "bad_file"
	codeUploadTimeout = "upload_timeout"
	codeStorageFull   = "storage_full"
	codeFileGone      = "file_gone"
)

// File upload headers. The name travels percent-encoded (UTF-8), so that
// any name fits a header; an encrypted room sends File-Meta instead, the
// name and media type sealed like a message.
const (
	headerUploadToken = "Upload-Token"
	headerFileName    = "File-Name"
	headerFileMeta    = "File-Meta"
	headerClientID    = "Client-Id"
	headerImageSize   = "Image-Size" // optional, "<width>x<height>": the page reserves the space
)

// fileChunk is the size of the pieces an upload is read into: the most
// memory an upload can hold beyond what it will keep.
const fileChunk = 64 << 10

// fileIDBytes is the size of a file id: 128 random bits, never guessed.
const fileIDBytes = 16

// maxFileName bounds a file name, in UTF-8 bytes; maxMediaType a media type.
const (
	maxFileName  = 255
	maxMediaType = 127
)

// maxFileMeta bounds the sealed name and media type of an encrypted room.
const maxFileMeta = 2048

// fileCSP is the Content-Security-Policy of every file response: a file
// opened as a page runs nothing and reaches nothing.
const fileCSP = "sandbox; default-src 'none'"

// storedFile is one file held by a room.
type storedFile struct {
	id     string
	chunks [][]byte
	size   int64
}

// errUploadTooSlow ends an upload whose body did not arrive in time.
var errUploadTooSlow = errors.New("upload too slow")

// filesEnabled reports whether rooms take files: FILE_MAX_BYTES is not 0.
func (s *server) filesEnabled() bool { return s.cfg.FileMaxBytes > 0 }

// welcomeFiles is what a member's welcome says of files: the limits, its
// upload token and, on Fly.io, the machine an upload must be sent to.
func (s *server) welcomeFiles(c *client) *fileLimits {
	if !s.filesEnabled() {
		return nil
	}
	return &fileLimits{MaxBytes: int64(s.cfg.FileMaxBytes), RoomBytes: int64(s.cfg.FileRoomBytes),
		Token: c.uploadToken, Machine: s.fleet.self}
}

// uploadRefusal is why an upload is refused: a status and an error code.
type uploadRefusal struct {
	status     int
	code, text string
}

// errNotMember answers an upload from no current member of the room.
var errNotMember = &uploadRefusal{http.StatusForbidden, codeNotMember, "only a member of the room, connected now, may upload"}

// badFile refuses an upload whose headers or body are not what they must be.
func badFile(text string) *uploadRefusal {
	return &uploadRefusal{http.StatusBadRequest, codeBadFile, text}
}

// fileUpload is an upload as its headers describe it.
type fileUpload struct {
	member   *client
	name     string // plain rooms
	typ      string // plain rooms
	sealed   string // encrypted rooms
	clientID string
	width    int // of an image, when the page said; plain rooms
	height   int
}

// uploadHandler answers POST /r/{room}/files: it checks the request, reads
// the body into the room's budget, stores the file and publishes it.
func (s *server) uploadHandler(w http.ResponseWriter, r *http.Request) {
	name, ok := normalizeRoom(r.PathValue("room"))
	if !ok {
		s.refuseUpload(w, http.StatusBadRequest, codeBadRoom, "room names are 1–64 characters of a-z, 0-9, _ and -")
		return
	}
	if s.route(w, r, name) || !s.admitUpload(w, r) {
		return
	}
	rm, up, no := s.describeUpload(r, name)
	var f *storedFile
	if no == nil {
		f, no = s.receiveFile(w, r, rm)
	}
	var p filePayload
	if no == nil {
		if p, ok = s.publishFile(rm, up, f); !ok {
			no = errNotMember
		}
	}
	if no != nil {
		s.refuseUpload(w, no.status, no.code, no.text)
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

// admitUpload answers, and reports false for, an upload refused before
// anything about it is looked at: files off, a foreign origin, the per-IP
// rate, or a Content-Length that is 0 or over the cap.
func (s *server) admitUpload(w http.ResponseWriter, r *http.Request) bool {
	if !s.filesEnabled() {
		s.refuseUpload(w, http.StatusNotFound, codeNotFound, "this server takes no files")
		return false
	}
	if !s.originAllowed(r) {
		s.refuseUpload(w, http.StatusForbidden, codeOriginNotAllowed, "this origin may not upload here")
		return false
	}
	if err := limited(s.uploads, s.clientIP(r), true, "too many uploads from this address; try again later"); err != nil {
		var overRate *rateLimitedError
		errors.As(err, &overRate)
		setRetryAfter(w, overRate.wait)
		s.refuseUpload(w, http.StatusTooManyRequests, codeRateLimited, err.Error())
		return false
	}
	switch {
	case r.ContentLength > int64(s.cfg.FileMaxBytes):
		s.refuseTooLarge(w)
		return false
	case r.ContentLength == 0:
		s.refuseUpload(w, http.StatusBadRequest, codeBadFile, "the file is empty")
		return false
	}
	return true
}

// describeUpload finds the room and the member whose token the request
// carries, and reads the file's name and media type (or sealed meta). A
// room that does not exist and a token that is no member's get one answer,
// so that uploads cannot probe for rooms.
func (s *server) describeUpload(r *http.Request, name string) (*room, fileUpload, *uploadRefusal) {
	s.mu.Lock()
	rm := s.rooms[name]
	s.mu.Unlock()
	if rm == nil {
		return nil, fileUpload{}, errNotMember
	}
	up := fileUpload{member: rm.uploader(r.Header.Get(headerUploadToken)), clientID: r.Header.Get(headerClientID)}
	if up.member == nil {
		return nil, fileUpload{}, errNotMember
	}
	if !validClientID(up.clientID) {
		return nil, fileUpload{}, badFile("Client-Id must be up to 64 of A-Z a-z 0-9 _ -")
	}
	return rm, up, up.readMeta(r, rm.cipher.E2EE)
}

// readMeta reads the file's name, media type and image size from the
// headers, or in an encrypted room its sealed meta.
func (up *fileUpload) readMeta(r *http.Request, e2ee bool) *uploadRefusal {
	if e2ee {
		up.sealed = r.Header.Get(headerFileMeta)
		body, ok := strings.CutPrefix(up.sealed, sealedPrefix)
		if !ok || body == "" || !isBase64URL(body) || len(up.sealed) > maxFileMeta || r.Header.Get(headerFileName) != "" {
			return badFile("this room is end-to-end encrypted: send File-Meta (e1. + base64url) and no File-Name")
		}
		return nil
	}
	var err error
	up.name, err = url.PathUnescape(r.Header.Get(headerFileName))
	if err != nil || up.name == "" || len(up.name) > maxFileName || !utf8.ValidString(up.name) ||
		strings.ContainsFunc(up.name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return badFile("File-Name must be 1–255 bytes of percent-encoded UTF-8 without control characters")
	}
	if up.typ = mediaType(r.Header.Get("Content-Type")); up.typ == "" {
		return badFile("Content-Type must be a media type such as image/png")
	}
	if size := r.Header.Get(headerImageSize); size != "" {
		if up.width, up.height = imageSize(size); up.width == 0 {
			return badFile("Image-Size must be <width>x<height>, each 1 to 65535")
		}
	}
	return nil
}

// mediaType reduces a Content-Type to its lower-case type/subtype, or ""
// when it is not one. Parameters are dropped: the page never needs them.
func mediaType(ct string) string {
	t, _, _ := strings.Cut(ct, ";")
	t = strings.ToLower(strings.TrimSpace(t))
	main, sub, ok := strings.Cut(t, "/")
	token := func(s string) bool {
		return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789!#$&^_.+-") == ""
	}
	if !ok || !token(main) || !token(sub) || len(t) > maxMediaType {
		return ""
	}
	return t
}

// imageSize reads "640x480"; zeros when it is not within 1..65535 each.
func imageSize(s string) (w, h int) {
	ws, hs, _ := strings.Cut(s, "x")
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if err1 != nil || err2 != nil || w < 1 || h < 1 || w > 65535 || h > 65535 {
		return 0, 0
	}
	return w, h
}

// uploader returns the member whose upload token is token, or nil.
func (r *room) uploader(token string) *client {
	if token == "" {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.members {
		if !m.kicked && subtle.ConstantTimeCompare([]byte(m.uploadToken), []byte(token)) == 1 {
			return m
		}
	}
	return nil
}

// receiveFile reads the body within FILE_UPLOAD_TIMEOUT, in chunks, each
// reserved in the room's and the server's budgets before it is read; past
// FILE_MAX_BYTES it stops reading at once. On any failure everything read
// is given back.
func (s *server) receiveFile(w http.ResponseWriter, r *http.Request, rm *room) (*storedFile, *uploadRefusal) {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(s.cfg.FileUploadTimeout))
	defer rc.SetReadDeadline(time.Time{})
	body := http.MaxBytesReader(w, r.Body, int64(s.cfg.FileMaxBytes))
	f := &storedFile{id: base64.RawURLEncoding.EncodeToString(randomBytes(fileIDBytes))}
	var reserved int64
	fail := func(status int, code, text string) (*storedFile, *uploadRefusal) {
		rm.unreserveFile(reserved)
		return nil, &uploadRefusal{status, code, text}
	}
	for r.ContentLength < 0 || f.size < r.ContentLength {
		want := int64(fileChunk)
		if r.ContentLength > 0 {
			want = min(want, r.ContentLength-f.size)
		}
		if f.size+want > reserved {
			if !s.reserveFile(rm, f.size+want-reserved) {
				setRetryAfter(w, retryServerFull)
				return fail(http.StatusInsufficientStorage, codeStorageFull, "the server holds all the files it can just now; try again later")
			}
			reserved = f.size + want
		}
		chunk := make([]byte, want)
		n, err := io.ReadFull(body, chunk)
		if n > 0 && n < len(chunk)/2 {
			chunk = bytes.Clone(chunk[:n]) // Keeps no more than it holds.
		}
		if n > 0 {
			f.chunks = append(f.chunks, chunk[:n:n])
			f.size += int64(n)
		}
		var tooBig *http.MaxBytesError
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			if r.ContentLength < 0 {
				return rm.received(f, reserved)
			}
			return fail(http.StatusBadRequest, codeBadFile, "the upload broke off")
		case errors.As(err, &tooBig):
			w.Header().Set("Connection", "close")
			return fail(http.StatusRequestEntityTooLarge, codeFileTooLarge, s.tooLargeText())
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.Header().Set("Connection", "close")
			return fail(http.StatusRequestTimeout, codeUploadTimeout, "the file did not arrive within "+s.cfg.FileUploadTimeout.String())
		default:
			return fail(http.StatusBadRequest, codeBadFile, "the upload broke off")
		}
	}
	return rm.received(f, reserved)
}

// received ends a complete upload: an empty one is refused, and what was
// reserved beyond the file's size is given back.
func (r *room) received(f *storedFile, reserved int64) (*storedFile, *uploadRefusal) {
	if f.size == 0 {
		r.unreserveFile(reserved)
		return nil, badFile("the file is empty")
	}
	r.unreserveFile(reserved - f.size)
	return f, nil
}

// tooLargeText says what the cap is.
func (s *server) tooLargeText() string {
	return fmt.Sprintf("files are at most %d bytes (%v)", int64(s.cfg.FileMaxBytes), s.cfg.FileMaxBytes)
}

// refuseTooLarge answers an upload whose Content-Length is over the cap,
// without reading it.
func (s *server) refuseTooLarge(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	s.refuseUpload(w, http.StatusRequestEntityTooLarge, codeFileTooLarge, s.tooLargeText())
}

// refuseUpload answers a file request with an error and counts it by code.
func (s *server) refuseUpload(w http.ResponseWriter, status int, code, text string) {
	s.metrics.uploadRefused(code)
	writeError(w, status, code, text)
}

// publishFile stores f with the room and publishes its file frame, as
// publish does a message, if the uploader is still a member. The bytes
// reserved for f become its stored bytes; when the uploader left, they are
// given back and ok is false.
func (s *server) publishFile(rm *room, up fileUpload, f *storedFile) (p filePayload, ok bool) {
	rm.mu.Lock()
	if up.member.kicked || !slices.Contains(rm.members, up.member) {
		rm.mu.Unlock()
		rm.unreserveFile(f.size)
		return p, false
	}
	rm.files = append(rm.files, f)
	s.files.held.Add(f.size)
	s.files.count.Add(1)
	rm.lastID++
	p = filePayload{ID: rm.lastID, Username: up.member.name, File: f.id, Size: f.size, Type: up.typ, Name: up.name,
		Sealed: up.sealed, Width: up.width, Height: up.height, TS: nowMillis(), ClientID: up.clientID}
	frame := encodeFrame(typeFile, p)
	rm.postLocked(frame, s.cfg.HistorySize, int(s.cfg.HistoryBytes))
	rm.mu.Unlock()
	if s.history.over() {
		s.trimHistory()
	}
	return p, true
}

// downloadHandler answers GET /r/{room}/files/{id} with the file's bytes,
// as an attachment that no browser runs: the page makes its own blob: URL.
func (s *server) downloadHandler(w http.ResponseWriter, r *http.Request) {
	name, ok := normalizeRoom(r.PathValue("room"))
	if !ok {
		writeError(w, http.StatusBadRequest, codeBadRoom, "room names are 1–64 characters of a-z, 0-9, _ and -")
		return
	}
	if s.route(w, r, name) {
		return
	}
	f := s.findFile(name, r.PathValue("id"))
	if f == nil {
		writeError(w, http.StatusNotFound, codeFileGone, "this file is no longer available")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", "attachment")
	h.Set("Content-Security-Policy", fileCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.FormatInt(f.size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.FileUploadTimeout))
	for _, c := range f.chunks {
		if _, err := w.Write(c); err != nil {
			return
		}
	}
}

// findFile returns the named room's file id, or nil. Its chunks are never
// changed once stored, so they are read without the lock.
func (s *server) findFile(room, id string) *storedFile {
	s.mu.Lock()
	rm := s.rooms[room]
	s.mu.Unlock()
	if rm == nil {
		return nil
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	for _, f := range rm.files {
		if subtle.ConstantTimeCompare([]byte(f.id), []byte(id)) == 1 {
			return f
		}
	}
	return nil
}
