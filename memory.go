// Memory budgets: byte sizes in configuration, the Go runtime's soft limit
// from MEMORY_LIMIT or the cgroup, and history trimmed across all rooms past
// HISTORY_TOTAL_BYTES. One client's queue budget is client.go's.

package main

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// This file is the memory budget: sizes in configuration, the Go runtime's
// soft limit, and the server-wide cap on history bytes.

// byteSize is a size in bytes, configured as a plain number or with a unit:
// KiB, MiB, GiB (powers of two) or KB, MB, GB (powers of ten).
type byteSize int64

// byteUnits are the suffixes byteSize understands, longest first.
var byteUnits = []struct {
	suffix string
	size   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

// UnmarshalText parses "64MiB", "200MB" or "1048576".
func (b *byteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	unit := int64(1)
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, unit = strings.TrimSpace(num), u.size
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || n*float64(unit) > math.MaxInt64/2 {
		return fmt.Errorf("%q is not a size such as 64MiB, 200MB or 1048576", text)
	}
	*b = byteSize(n * float64(unit))
	return nil
}

// String writes the size in the largest binary unit that keeps it whole.
func (b byteSize) String() string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b > 0 && int64(b)%u.size == 0 {
			return strconv.FormatInt(int64(b)/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// defaultHistoryTotal is HISTORY_TOTAL_BYTES when neither it nor a memory
// limit is set.
const defaultHistoryTotal = 64 << 20

// resolveMemory fills in the memory settings left empty: MEMORY_LIMIT from
// the runtime's limit (GOMEMLIMIT, when set) or else the cgroup's, and
// HISTORY_TOTAL_BYTES as a quarter of it. Either limit is 0 when absent.
func (c *config) resolveMemory(runtimeLimit, cgroupLimit int64) {
	if c.MemoryLimit == 0 {
		if runtimeLimit > 0 {
			c.MemoryLimit = byteSize(runtimeLimit)
		} else if cgroupLimit > 0 {
			c.MemoryLimit = byteSize(cgroupLimit / 10 * 9) // Room for what the Go runtime does not count.
		}
	}
	if c.HistoryTotalBytes == 0 {
		c.HistoryTotalBytes = defaultHistoryTotal
		if c.MemoryLimit > 0 {
			c.HistoryTotalBytes = min(defaultHistoryTotal, c.MemoryLimit/4)
		}
	}
}

// runtimeMemoryLimit is the Go runtime's soft limit (GOMEMLIMIT), or 0 when
// none is set.
func runtimeMemoryLimit() int64 {
	if v := debug.SetMemoryLimit(-1); v != math.MaxInt64 {
		return v
	}
	return 0
}

// cgroupMemoryLimit reads the memory cap of the cgroup this process runs
// in (v2, then v1), or 0 when there is none or it cannot be read.
func cgroupMemoryLimit() int64 {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 { // "max", or v1's "unlimited"
			return 0
		}
		return n
	}
	return 0
}

// applyMemoryLimit hands MEMORY_LIMIT to the Go runtime as its soft limit,
// so the collector works harder before the process nears it.
func applyMemoryLimit(c config) {
	if c.MemoryLimit > 0 {
		debug.SetMemoryLimit(int64(c.MemoryLimit))
	}
}

// historyBudget counts the bytes of every room's history against
// HISTORY_TOTAL_BYTES.
type historyBudget struct {
	limit    int64
	bytes    atomic.Int64
	activity atomic.Uint64 // counts messages, to order rooms by recency
	trimming sync.Mutex    // one trim at a time
}

// add counts n more bytes of history (fewer when negative).
func (h *historyBudget) add(n int) { h.bytes.Add(int64(n)) }

// over reports whether history holds more than its limit.
func (h *historyBudget) over() bool { return h.limit > 0 && h.bytes.Load() > h.limit }

// trimHistory drops history, oldest first from the least recently active
// room, until the total is an eighth under HISTORY_TOTAL_BYTES, so that a
// trim is not needed again for a while. Live chat is untouched: only what
// newcomers would be replayed is lost. A publisher that finds a trim under
// way carries on; the total can pass the limit by the few messages being
// published at that moment.
func (s *server) trimHistory() {
	h := &s.history
	if !h.trimming.TryLock() {
		return
	}
	defer h.trimming.Unlock()
	type byRecency struct {
		r    *room
		last uint64
	}
	s.mu.Lock()
	entries := make([]byRecency, 0, len(s.rooms))
	for _, r := range s.rooms {
		entries = append(entries, byRecency{r, r.lastActive.Load()})
	}
	s.mu.Unlock()
	// Sorted through pointers: a sort of pointers is one the binary already
	// holds, while a sort of this struct would add 7 KB of its own.
	rooms := make([]*byRecency, len(entries))
	for i := range entries {
		rooms[i] = &entries[i]
	}
	slices.SortFunc(rooms, func(a, b *byRecency) int { return cmp.Compare(a.last, b.last) })
	target := h.limit - h.limit/8
	trimmed := 0
	for _, e := range rooms {
		if h.bytes.Load() <= target {
			break
		}
		r := e.r
		r.mu.Lock()
		for len(r.history) > 0 && h.bytes.Load() > target {
			h.add(-r.dropOldestLocked())
		}
		r.mu.Unlock()
		trimmed++
	}
	s.log.Debug("history trimmed", "rooms", trimmed, "bytes", h.bytes.Load())
}
