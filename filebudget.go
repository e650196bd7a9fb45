package main

// The memory files may take: the room's budget, FILE_ROOM_BYTES, and every
// room's together, FILE_TOTAL_BYTES, with the oldest files of the least
// recently active rooms going first when either runs short. Uploading and
// serving files is files.go's.

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// fileBudget counts the bytes of every room's files, stored or being
// uploaded, against FILE_TOTAL_BYTES.
type fileBudget struct {
	limit int64
	mu    sync.Mutex
	used  int64        // stored plus reserved by uploads in flight
	held  atomic.Int64 // stored only, for metrics
	count atomic.Int64 // files stored, for metrics
}

// take reserves n bytes; false when that would pass the limit.
func (b *fileBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

// give returns n reserved or stored bytes.
func (b *fileBudget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// reserveFile takes n bytes of the room's budget and the server's. When
// they are short, the room's own oldest files go for its budget, and the
// oldest files of the least recently active rooms for the server's; bytes
// still being uploaded cannot go, so a reservation can still fail.
func (s *server) reserveFile(rm *room, n int64) bool {
	rm.mu.Lock()
	var freed int64
	for rm.fileBytes+n > int64(s.cfg.FileRoomBytes) && len(rm.files) > 0 {
		freed += rm.dropOldestFileLocked(&s.files)
	}
	ok := rm.fileBytes+n <= int64(s.cfg.FileRoomBytes)
	if ok {
		rm.fileBytes += n
	}
	rm.mu.Unlock()
	s.files.give(freed)
	if !ok {
		return false
	}
	if s.files.take(n) {
		return true
	}
	s.evictFiles(n)
	if s.files.take(n) {
		return true
	}
	rm.mu.Lock()
	rm.fileBytes -= n
	rm.mu.Unlock()
	return false
}

// unreserveFile gives back n bytes reserved for the room.
func (r *room) unreserveFile(n int64) {
	if n == 0 {
		return
	}
	r.mu.Lock()
	r.fileBytes -= n
	r.mu.Unlock()
	r.fileTotal.give(n)
}

// dropOldestFileLocked forgets rm's oldest file and returns its size, which
// the caller gives back to the server's budget.
func (r *room) dropOldestFileLocked(b *fileBudget) int64 {
	f := r.files[0]
	r.files[0] = nil
	r.files = r.files[1:]
	r.fileBytes -= f.size
	b.held.Add(-f.size)
	b.count.Add(-1)
	return f.size
}

// dropFilesLocked forgets all of the room's files, as it goes, keeping
// what uploads in flight reserved.
func (r *room) dropFilesLocked() {
	var freed int64
	for len(r.files) > 0 {
		freed += r.dropOldestFileLocked(r.fileTotal)
	}
	r.files = nil
	r.fileTotal.give(freed)
}

// evictFiles drops files, oldest first from the least recently active room,
// until n more bytes fit in FILE_TOTAL_BYTES.
func (s *server) evictFiles(n int64) {
	s.mu.Lock()
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	slices.SortFunc(rooms, func(a, b *room) int { return cmp.Compare(a.lastActive.Load(), b.lastActive.Load()) })
	evicted := 0
	for _, r := range rooms {
		r.mu.Lock()
		for len(r.files) > 0 && !s.files.fits(n) {
			s.files.give(r.dropOldestFileLocked(&s.files))
			evicted++
		}
		r.mu.Unlock()
		if s.files.fits(n) {
			break
		}
	}
	s.log.Debug("files evicted", "files", evicted, "bytes", s.files.held.Load())
}

// fits reports whether n more bytes are within the limit now.
func (b *fileBudget) fits(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used+n <= b.limit
}

// Defaults of the file budgets.
const (
	defaultFileMax   = 10 << 20
	defaultFileRoom  = 64 << 20
	defaultFileTotal = 256 << 20
)

// resolveFiles fills in the file settings left empty: FILE_TOTAL_BYTES as
// half of MEMORY_LIMIT (history takes a quarter, connections the rest),
// FILE_ROOM_BYTES and FILE_MAX_BYTES within it.
func (c *config) resolveFiles() {
	if c.FileTotalBytes == 0 {
		c.FileTotalBytes = defaultFileTotal
		if c.MemoryLimit > 0 {
			c.FileTotalBytes = max(0, min(defaultFileTotal, c.MemoryLimit/2, c.MemoryLimit*3/4-c.HistoryTotalBytes))
		}
	}
	if c.FileRoomBytes == 0 {
		c.FileRoomBytes = min(defaultFileRoom, c.FileTotalBytes)
	}
	if c.FileMaxBytes < 0 {
		c.FileMaxBytes = min(defaultFileMax, c.FileRoomBytes)
	}
}

// validateFiles rejects file settings that cannot work together, or that
// would not leave the memory limit room for connections.
func (c config) validateFiles() []error {
	var errs []error
	if c.FileMaxBytes > 0 && c.FileRoomBytes < c.FileMaxBytes {
		errs = append(errs, fmt.Errorf("invalid FILE_ROOM_BYTES: %v must hold one file of FILE_MAX_BYTES (%v)", c.FileRoomBytes, c.FileMaxBytes))
	}
	if c.FileTotalBytes < c.FileRoomBytes {
		errs = append(errs, fmt.Errorf("invalid FILE_TOTAL_BYTES: %v must be at least FILE_ROOM_BYTES (%v)", c.FileTotalBytes, c.FileRoomBytes))
	}
	if c.MemoryLimit > 0 && c.FileTotalBytes+c.HistoryTotalBytes > c.MemoryLimit*3/4 {
		errs = append(errs, fmt.Errorf("invalid FILE_TOTAL_BYTES: %v and HISTORY_TOTAL_BYTES (%v) must fit in three quarters of MEMORY_LIMIT (%v)",
			c.FileTotalBytes, c.HistoryTotalBytes, c.MemoryLimit))
	}
	if c.FileUploadRate < 0 {
		errs = append(errs, fmt.Errorf("invalid FILE_UPLOAD_RATE: %v is negative", c.FileUploadRate))
	}
	if c.FileUploadTimeout <= 0 {
		errs = append(errs, fmt.Errorf("invalid FILE_UPLOAD_TIMEOUT: %v must be positive", c.FileUploadTimeout))
	}
	return errs
}
