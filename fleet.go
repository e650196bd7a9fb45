// Rooms spread over the machines of a Fly.io app: the machine list read from
// Fly's DNS, rendezvous hashing of a room to its owner, fly-replay routing of
// requests there, and moving rooms when machines come and go; off Fly.io none
// of that runs, and a load balancer elsewhere needs nothing from the server.
// Exiting when idle (IDLE_EXIT) lives here too, on any platform.

package main

// Many machines on Fly.io: every room lives on exactly one machine, its
// owner. A request about a room that reaches another machine is answered,
// before any WebSocket upgrade, with a fly-replay header naming the owner,
// and Fly's proxy replays it there, starting the owner if it is stopped.
// Fly's documents relied on:
//   - https://fly.io/docs/networking/dynamic-request-routing/ (fly-replay
//     instance=, timeout=, fallback=prefer_self; Fly-Replay-Src on replays;
//     fly-replay-failed on a fallback, which cannot replay again)
//   - https://fly.io/docs/networking/private-networking/ (TXT
//     all.vms.<app>.internal lists every machine, stopped ones too, as
//     "id region,id region"; FLY_MACHINE_ID and FLY_APP_NAME)
//   - https://fly.io/docs/blueprints/connecting-to-user-machines/ (a replay
//     to a stopped machine starts it, WebSockets included)

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// closeRoomMoved closes the members of a room whose owner changed (a machine
// joined or left the app). It is documented in docs/protocol.md; the UI rejoins
// quietly and the proxy routes it to the new owner.
const closeRoomMoved websocket.StatusCode = 4307

// reasonRoomMoved is the close reason sent with closeRoomMoved.
const reasonRoomMoved = "room moved to another machine; rejoin"

// codeRoomMoving answers a request that must come back in a moment: its room
// is being handed to another machine.
const codeRoomMoving = "room_moving"

// unreachableFor is how long a machine that a replay failed to reach is
// left out of the ranking, unless the machine list drops it first. When it
// ends, the machine's rooms are tried there again.
const unreachableFor = 30 * time.Second

// replayMemory is how long the target of a replay is remembered, so that a
// fallback blames the machine that failed even if the list changed since.
const replayMemory = 30 * time.Second

// maxReplays bounds the table of recent replays: more distinct rooms than
// that replayed within replayMemory is an attack or a very busy fleet, and a
// forgotten replay only means that a fallback for its room blames nobody.
const maxReplays = 1024

// replayHeader is what follows instance=<id> in fly-replay: give up after a
// few seconds and hand the request back rather than fail it.
const replayHeader = ";timeout=5s;fallback=prefer_self"

// txtLookup returns the TXT records of a DNS name, as net.Resolver.LookupTXT
// does: one string per record, its character-strings already joined.
type txtLookup func(ctx context.Context, name string) ([]string, error)

// fleet knows this machine, the app's machines and which of them owns each
// room. A fleet with no self (not on Fly.io) owns every room.
type fleet struct {
	self    string // FLY_MACHINE_ID; empty when not on Fly.io
	app     string // FLY_APP_NAME
	refresh time.Duration
	log     *slog.Logger
	lookup  txtLookup                                       // replaced by tests before runFleet
	reach   func(ctx context.Context, machine string) error // confirms a machine is up; replaced by tests

	strayHeaders sync.Once // logs Fly headers seen off Fly.io, once

	mu          sync.Mutex
	machines    []string               // sorted IDs of the last good list; nil until one is read
	unreachable map[string]time.Time   // machines a replay could not reach, until when
	replayed    map[string]replayTo    // recent replays by room, at most maxReplays
	replayOrder []replayed             // the same, oldest first; a room replayed again is listed again
	failing     bool                   // the last lookup failed; logged once per outage
	checks      map[string]*reachCheck // the last dial to each machine asked about
	warned      map[string]time.Time   // when each warning a request can cause was last logged
	unwarned    map[string]int         // how many of each were left out since
}

// replayed is one entry of fleet.replayOrder.
type replayed struct {
	room string
	at   time.Time
}

// replayTo is where a room's request was last replayed, and when.
type replayTo struct {
	machine string
	at      time.Time
}

// newFleet reads who this machine is from cfg. Off Fly.io it is inert.
func newFleet(cfg config, logger *slog.Logger) *fleet {
	f := &fleet{app: cfg.FlyAppName, refresh: cfg.FleetRefresh, log: logger, lookup: net.DefaultResolver.LookupTXT,
		reach: dialMachine(cfg.FlyAppName, cfg.Port)}
	if cfg.FlyMachineID != "" && cfg.FlyAppName != "" {
		f.self = cfg.FlyMachineID
	}
	return f
}

// enabled reports whether rooms are routed between machines.
func (f *fleet) enabled() bool { return f.self != "" }

// validMachineID accepts Fly machine IDs: short, lower-case hex in practice.
func validMachineID(id string) bool {
	return len(id) >= 1 && len(id) <= 40 && strings.Trim(id, "abcdefghijklmnopqrstuvwxyz0123456789") == ""
}

// parseMachines reads the TXT record of all.vms.<app>.internal: entries
// "id region" separated by commas. A long record arrives in several strings,
// which are joined first. Any malformed entry rejects the whole list, so a
// half-read list never reroutes rooms.
func parseMachines(records []string) ([]string, error) {
	joined := strings.TrimSpace(strings.Join(records, ""))
	if joined == "" {
		return nil, errors.New("empty machine list")
	}
	var ids []string
	for i, entry := range strings.Split(joined, ",") {
		fields := strings.Fields(entry)
		if len(fields) != 2 || !validMachineID(fields[0]) {
			return nil, fmt.Errorf("entry %d is not \"id region\"", i+1)
		}
		ids = append(ids, fields[0])
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// update reads the machine list and keeps it if it is good. It reports
// whether the list changed.
func (f *fleet) update(ctx context.Context) bool {
	name := "all.vms." + f.app + ".internal"
	records, err := f.lookup(ctx, name)
	if err != nil {
		f.unusable("machine list lookup failed", name, err)
		return false
	}
	ids, err := parseMachines(records)
	if err != nil {
		f.unusable("machine list is malformed", name, err)
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		f.failing = false
		f.log.Info("machine list is usable again", "name", name)
	}
	f.forgetLocked(time.Now())
	if slices.Equal(ids, f.machines) {
		return false
	}
	f.machines = ids
	for id := range f.unreachable {
		if !slices.Contains(ids, id) {
			delete(f.unreachable, id)
		}
	}
	for id, c := range f.checks {
		if !slices.Contains(ids, id) && !c.at.IsZero() {
			delete(f.checks, id) // Gone from the app; a dial under way keeps its entry.
		}
	}
	f.log.Info("machine list changed", "machines", len(ids), "self_listed", slices.Contains(ids, f.self))
	return true
}

// unusable logs the first failed or malformed read of an outage as what;
// the last good list, or none (every room served here), stays in use.
func (f *fleet) unusable(what, name string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		return
	}
	f.failing = true
	if f.machines == nil {
		f.log.Warn(what+"; serving every room here until one is read", "name", name, "error", err)
		return
	}
	f.log.Warn(what+"; keeping the last good one", "name", name, "error", err)
}

// owners returns the function that names a room's owner under the current
// list, so that many rooms can be placed under one lock.
func (f *fleet) owners() func(room string) string {
	if !f.enabled() {
		return func(string) string { return "" }
	}
	f.mu.Lock()
	now := time.Now()
	candidates := make([]string, 0, len(f.machines))
	for _, id := range f.machines {
		if now.Before(f.unreachable[id]) {
			continue
		}
		candidates = append(candidates, id)
	}
	f.mu.Unlock()
	self := f.self
	return func(room string) string {
		if len(candidates) == 0 {
			return self // Alone, or no list yet: serve here.
		}
		if i := strings.LastIndexByte(room, '-'); i >= 0 && slices.Contains(candidates, room[i+1:]) {
			return room[i+1:] // A created room's code names its machine.
		}
		return rendezvous(candidates, room)
	}
}

// owner names the machine that owns room; "" when not on Fly.io.
func (f *fleet) owner(room string) string { return f.owners()(room) }

// rendezvous picks the machine with the highest hash of (machine, room):
// adding or removing a machine moves only the rooms it wins or owned.
// FNV-1a is the same in every process, unlike hash/maphash.
func rendezvous(machines []string, room string) string {
	var best string
	var bestScore uint64
	for _, id := range machines {
		h := fnv.New64a()
		h.Write([]byte(id))
		h.Write([]byte{0})
		h.Write([]byte(room))
		if s := mix64(h.Sum64()); best == "" || s > bestScore {
			best, bestScore = id, s
		}
	}
	return best
}

// mix64 is SplitMix64's finalizer: FNV's high bits alone spread short keys
// poorly.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// pin makes a created room's code name this machine, so the room stays
// here whatever the machine count does. Off Fly.io codes are unchanged.
func (f *fleet) pin(code string) string {
	if !f.enabled() {
		return code
	}
	return code + "-" + f.self
}

// markUnreachable leaves id out of the ranking for unreachableFor.
func (f *fleet) markUnreachable(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unreachable == nil {
		f.unreachable = make(map[string]time.Time)
	}
	f.unreachable[id] = time.Now().Add(unreachableFor)
}

// reachable clears the mark of the machine a Fly-Replay-Src names, once a
// dial confirms it is up: the header alone may be a client's.
func (f *fleet) reachable(ctx context.Context, src string) {
	for _, field := range strings.Split(src, ";") {
		id, ok := strings.CutPrefix(strings.TrimSpace(field), "instance=")
		f.mu.Lock()
		marked := ok && f.isMarkedLocked(id)
		f.mu.Unlock()
		if marked && f.isUp(ctx, id) {
			f.mu.Lock()
			delete(f.unreachable, id)
			f.mu.Unlock()
		}
	}
}

// noteReplay remembers that room's request was replayed to machine.
func (f *fleet) noteReplay(room, machine string) { f.noteReplayAt(room, machine, time.Now()) }

// noteReplayAt remembers a replay made at now. Any request for a room of
// another machine adds one, so the table is trimmed here, where it grows,
// to maxReplays entries none older than replayMemory, and not only when
// the machine list is read.
func (f *fleet) noteReplayAt(room, machine string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.replayed == nil {
		f.replayed = make(map[string]replayTo)
	}
	f.replayed[room] = replayTo{machine, now}
	f.replayOrder = append(f.replayOrder, replayed{room, now})
	f.forgetReplaysLocked(now)
}

// replayedTo returns where room's request was recently replayed, or "".
func (f *fleet) replayedTo(room string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.replayed[room]; ok && time.Since(r.at) < replayMemory {
		return r.machine
	}
	return ""
}

// forgetLocked drops expired marks and replays.
func (f *fleet) forgetLocked(now time.Time) {
	for id, until := range f.unreachable {
		if now.After(until) {
			delete(f.unreachable, id)
		}
	}
	f.forgetReplaysLocked(now)
}

// forgetReplaysLocked drops the oldest replays while there are more than
// maxReplays or they are older than replayMemory. replayOrder holds them
// oldest first, so this costs only what it drops.
func (f *fleet) forgetReplaysLocked(now time.Time) {
	for len(f.replayOrder) > 0 {
		old := f.replayOrder[0]
		if len(f.replayOrder) <= maxReplays && now.Sub(old.at) < replayMemory {
			return
		}
		if r, ok := f.replayed[old.room]; ok && r.at.Equal(old.at) {
			delete(f.replayed, old.room) // Not replayed again since.
		}
		f.replayOrder[0] = replayed{}
		f.replayOrder = f.replayOrder[1:]
	}
}

// route sends a request about room to its owner, and reports whether it
// answered (the caller then does nothing more). It is called before any
// upgrade: Fly replays only requests the machine has not taken over.
func (s *server) route(w http.ResponseWriter, r *http.Request, room string) bool {
	f := s.fleet
	if !f.enabled() {
		f.ignoreFlyHeaders(r)
		return false
	}
	if r.Header.Get("Fly-Replay-Failed") != "" {
		return s.replayFailed(w, r, room)
	}
	src := r.Header.Get("Fly-Replay-Src")
	if src != "" {
		f.reachable(r.Context(), src)
	}
	owner := f.owner(room)
	if owner == f.self {
		return false
	}
	if src != "" {
		return s.replayedHere(w, r, room, owner)
	}
	s.metrics.replays.Add(1)
	f.noteReplay(room, owner)
	w.Header().Set("Fly-Replay", "instance="+owner+replayHeader)
	writeJSON(w, http.StatusConflict, errorPayload{Code: codeRoomMoving, Text: "this room lives on another machine"})
	return true
}

// replayFailed handles a request Fly's proxy handed back because the owner
// could not be reached: once a dial confirms it is down, that machine is
// left out for a while, and the room goes to the next in line. Only a
// replay this machine sent counts. A fallback cannot be replayed again, so
// when the room is another machine's the client comes back in a second.
func (s *server) replayFailed(w http.ResponseWriter, r *http.Request, room string) bool {
	f := s.fleet
	if gone := f.replayedTo(room); gone != "" && gone != f.self && f.owner(room) == gone {
		if f.isUp(r.Context(), gone) {
			f.warn("a replay fell back but its machine answers; keeping its rooms there")
		} else {
			f.markUnreachable(gone)
			f.warn("replay to a room's owner failed; its rooms go to the next machine for a while", "machine", gone)
		}
	}
	if f.owner(room) == f.self {
		return false
	}
	retryShortly(w)
	return true
}

// replayedHere handles a replayed request for a room this machine does not
// own: the machines disagree about the list for a moment, or the header is
// forged. It cannot be replayed again, and serving it here would split the
// room, so the client comes back in a second, unless a dial shows the
// owner down: then the room is this machine's or the next one's.
func (s *server) replayedHere(w http.ResponseWriter, r *http.Request, room, owner string) bool {
	f := s.fleet
	if !f.isUp(r.Context(), owner) {
		f.markUnreachable(owner)
		f.warn("a replayed request's room belongs to a machine that does not answer; its rooms go to the next machine for a while", "machine", owner)
		if f.owner(room) == f.self {
			return false
		}
	}
	f.warn("a replayed request reached a machine that does not own its room; asking the client to retry")
	retryShortly(w)
	return true
}

// retryShortly answers 503 room_moving with Retry-After: 1.
func retryShortly(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, codeRoomMoving, "this room is moving to another machine; try again in a moment")
}

// ignoreFlyHeaders logs, once, Fly's headers reaching a server that is not
// configured for Fly.io: they change nothing.
func (f *fleet) ignoreFlyHeaders(r *http.Request) {
	if r.Header.Get("Fly-Replay-Src") == "" && r.Header.Get("Fly-Replay-Failed") == "" {
		return
	}
	f.strayHeaders.Do(func() {
		f.log.Warn("Fly.io replay headers arrived but FLY_MACHINE_ID or FLY_APP_NAME is not set; ignoring them")
	})
}

// roomPageHandler serves the page of /r/{room} from the room's owner, so a
// stopped owner starts while the page loads.
func (s *server) roomPageHandler(w http.ResponseWriter, r *http.Request) {
	if name, ok := normalizeRoom(r.PathValue("room")); ok && s.route(w, r, name) {
		return
	}
	s.serveStatic(w, r, "index.html")
}

// evictMoved closes, with closeRoomMoved, the members of every room this
// machine no longer owns, and forgets those rooms: their members rejoin on
// the owner, so a room never carries on in two halves. A room with a
// connection mid-upgrade waits for the next round.
func (s *server) evictMoved() {
	owner := s.fleet.owners()
	var moved []*client
	rooms := 0
	s.mu.Lock()
	for name, r := range s.rooms {
		if owner(name) == s.fleet.self {
			continue
		}
		r.mu.Lock()
		if r.pending == 0 {
			delete(s.rooms, name)
			for _, m := range r.members {
				m.kicked = true
			}
			moved = append(moved, r.members...)
			s.history.add(-r.histBytes)
			r.members, r.history, r.histBytes = nil, nil, 0
			r.dropFilesLocked() // Files do not move with their room.
			r.stopIdleLocked()
			rooms++
		}
		r.mu.Unlock()
	}
	s.mu.Unlock()
	for _, m := range moved {
		s.metrics.cutOff(reasonRoomMoved)
		go m.conn.Close(closeRoomMoved, reasonRoomMoved)
	}
	if rooms > 0 {
		s.log.Info("rooms moved to their new machine", "rooms", rooms, "members", len(moved))
	}
}

// runFleet reads the machine list now and every FLEET_REFRESH, moving rooms
// this machine stops owning, and ends the returned context after IDLE_EXIT
// with no rooms and no connections. stop ends both.
func (s *server) runFleet(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := context.WithCancel(ctx)
	if s.fleet.enabled() {
		first, cancel := context.WithTimeout(ctx, cmp.Or(s.fleet.refresh, time.Second))
		s.fleet.update(first)
		cancel()
		go s.refreshFleet(ctx)
	}
	if s.cfg.IdleExit > 0 {
		go s.exitWhenIdle(ctx, stop)
	}
	return ctx, stop
}

// refreshFleet rereads the machine list until ctx ends. Rooms are checked
// on every round, since an unreachable mark also moves them.
func (s *server) refreshFleet(ctx context.Context) {
	tick := time.NewTicker(s.fleet.refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		lctx, cancel := context.WithTimeout(ctx, s.fleet.refresh)
		s.fleet.update(lctx)
		cancel()
		s.evictMoved()
	}
}

// exitWhenIdle calls exit once the server has had no rooms and no
// connections for IDLE_EXIT: the process ends, the machine stops, and Fly's
// proxy starts it again on the next request. Unlike Fly's autostop, it
// never stops a machine that has a live room.
func (s *server) exitWhenIdle(ctx context.Context, exit context.CancelFunc) {
	tick := time.NewTicker(min(s.cfg.IdleExit/4, time.Second))
	defer tick.Stop()
	busy := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if rooms, clients := s.stats(); rooms > 0 || clients > 0 {
				busy = now
			} else if now.Sub(busy) >= s.cfg.IdleExit {
				s.log.Info("no rooms or connections for IDLE_EXIT; exiting", "idle_exit", s.cfg.IdleExit.String())
				exit()
				return
			}
		}
	}
}

// validAddr reports whether a is host:port with a numeric port.
func validAddr(a string) bool {
	_, port, err := net.SplitHostPort(a)
	n, perr := strconv.Atoi(port)
	return err == nil && perr == nil && n >= 0 && n <= 65535
}
