// Rooms and their members: admission, joining and leaving, publishing a
// message to every member, the history a room keeps in memory, an empty room's
// expiry, and shutdown. The wire format is protocol.go's, a member's queue and
// writer client.go's, and HTTP http.go's.

package main

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Close reasons sent to clients. They are fixed strings: a reason never
// carries user data.
const (
	reasonTooSlow    = "too slow: fell behind the room"
	reasonRestarting = "server restarting"
	reasonBinary     = "binary frames are not supported"
	reasonAbuse      = "too many rejected frames"
	reasonPingFailed = "ping timeout"
	reasonReplaced   = "replaced by a newer connection"
)

// closeReplaced closes a member whose place a reconnect took (see rejoin).
const closeReplaced websocket.StatusCode = 4409

// Abuse control: every rejected frame costs a token; a connection that runs
// out is closed with 1008. This allows honest mistakes and stops floods.
const (
	abuseBurst = 20
	abuseRate  = 1 // token per second
)

// Errors from reserve, each answered with its own status before the upgrade.
var (
	errRoomFull     = errors.New("this room is full")
	errServerFull   = errors.New("the server is at capacity; try again later")
	errShuttingDown = errors.New("the server is restarting; try again shortly")
)

// server holds every room. Lock order: server.mu before room.mu.
type server struct {
	cfg     config
	log     *slog.Logger
	static  map[string]staticFile
	creates *ipLimiter // new rooms per client network, named or created
	joins   *ipLimiter // WebSocket joins per client network
	uploads *ipLimiter // file uploads per client network
	history historyBudget
	files   fileBudget     // every room's files, against FILE_TOTAL_BYTES
	fleet   *fleet         // which machine owns each room
	metrics *serverMetrics // counts for GET /metrics
	knocks  *ipLimiter     // knocks per IP (host.go); made when first needed, under mu
	relay   *turnRelay     // the built-in TURN relay, or nil (turn.go)
	turnIDs sync.Map       // TURN credential id → *client, to count relayed calls

	mu      sync.Mutex
	rooms   map[string]*room
	clients int            // joined plus reserved connections, for MAX_CLIENTS
	perIP   map[string]int // the same, by client network (see clientKey), for MAX_CONNS_PER_IP
	closing atomic.Bool    // set once, under mu, when shutdown begins

	conns     sync.WaitGroup     // WebSocket handlers still running
	stopWatch context.CancelFunc // ends watchWrites
	// writesUnderWay counts members' writes(2) under way (socketWriter), for
	// watchWrites to skip its look at every member when there are none.
	writesUnderWay atomic.Int64

	// beforeWriterTurn, when set by a test, runs as a writer starts a turn,
	// to hold it back as a busy scheduler might.
	beforeWriterTurn func(*client)
}

// room is one conversation: its members in order of arrival and a rolling
// history of encoded chatMessage frames.
type room struct {
	name     string
	capacity int
	cipher   roomCipher // set at creation, never changed
	epoch    string     // names this incarnation; set at creation

	// lastActive orders rooms for trimming history, least recent first: the
	// server's activity count at this room's latest message.
	lastActive atomic.Uint64

	mu        sync.Mutex
	members   []*client
	pending   int      // connections reserved but not yet joined
	history   [][]byte // encoded chatMessage frames, oldest first
	histBytes int      // their total length
	lastID    uint64
	files     []*storedFile // shared files, oldest first
	fileBytes int64         // their size, plus what uploads in flight reserved
	idle      *time.Timer
	idleGen   int        // invalidates a timer that fired while the room was re-entered
	host      *hostState // a created room's host, lock and knocks (host.go); nil for named rooms
	call      roomCall   // who is in the room's call (call.go)
	// lastBroadcast is when, in UnixNano, the room's latest broadcast
	// began, and pace its count of recent ones then: a high count means a
	// burst (fanout.go).
	lastBroadcast int64
	pace          float64

	react roomReactions // reactions to held messages (reactions.go)

	// metrics, histTotal, fileTotal and callMax are all a room's own
	// behaviour needs of its server, set at creation: the counters its
	// events add to (cut-offs, calls, host actions), the budgets of every
	// room's history and files (HISTORY_TOTAL_BYTES, FILE_TOTAL_BYTES) that
	// its own bytes count in, and CALL_MAX, which its call frames carry. A
	// room holds these rather than its server, so that nothing it does can
	// reach another room, the room map or the server's other limits;
	// settings it reads once per call come as arguments.
	metrics   *serverMetrics
	histTotal *historyBudget
	fileTotal *fileBudget
	callMax   int
}

// newServer builds a server with no rooms.
func newServer(cfg config, logger *slog.Logger) *server {
	ctx, stop := context.WithCancel(context.Background())
	s := &server{
		cfg:       cfg,
		log:       logger,
		static:    loadStatic(),
		creates:   perMinute(cfg.RoomCreateRate, clientTableSize(cfg)),
		joins:     perMinute(cfg.JoinRate, clientTableSize(cfg)),
		uploads:   perMinute(cfg.FileUploadRate, clientTableSize(cfg)),
		files:     fileBudget{limit: int64(cfg.FileTotalBytes)},
		history:   historyBudget{limit: int64(cfg.HistoryTotalBytes)},
		rooms:     make(map[string]*room),
		perIP:     make(map[string]int),
		stopWatch: stop,
		fleet:     newFleet(cfg, logger),
	}
	s.metrics = newServerMetrics(s)
	if s.relay = newTURNRelay(cfg); s.relay != nil {
		s.relay.onAllocate = s.noteRelayed
	}
	go s.watchWrites(ctx)
	return s
}

// reserve finds or creates the room and holds a place in it for a client
// from ip that is about to upgrade, presenting the rejoin secret if it has
// one. The member whose secret it is gets claimed: until this reservation
// ends, no other may use that secret to pass a full room. Every successful
// reserve ends in join or unreserve, which is given the claimed member.
func (s *server) reserve(name, ip, rejoin string) (*room, *client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.admitLocked(name, ip, rejoin, true); err != nil {
		return nil, nil, err
	}
	r, err := s.roomLocked(name) // admitLocked allowed a new one
	if err != nil {
		return nil, nil, err
	}
	var claimed *client
	r.mu.Lock()
	if at := r.holderLocked(rejoin); at >= 0 && !r.members[at].claimed {
		claimed = r.members[at]
		claimed.claimed = true
	}
	r.pending++
	r.stopIdleLocked()
	r.mu.Unlock()
	s.clients++
	s.perIP[ip]++
	s.conns.Add(1)
	return r, claimed, nil
}

// check answers what reserve would, without reserving, creating or taking
// anything.
func (s *server) check(name, ip, rejoin string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.admitLocked(name, ip, rejoin, false)
}

// admitLocked decides whether a client from ip may join the named room:
// server, per-IP and room capacity, then the per-IP join rate and, for a
// room that does not exist yet, the per-IP rate of new rooms. A full room
// still admits the reconnect that will take a member's place (rejoin), one
// at a time per member.
// take spends the rate tokens; without it the rates are only looked at.
func (s *server) admitLocked(name, ip, rejoin string, take bool) error {
	switch {
	case s.closing.Load():
		return errShuttingDown
	case s.clients >= s.cfg.MaxClients:
		return errServerFull
	case s.cfg.MaxConnsPerIP > 0 && s.perIP[ip] >= s.cfg.MaxConnsPerIP:
		return errTooManyConns
	}
	r := s.rooms[name]
	if r == nil && len(s.rooms) >= s.cfg.MaxRooms {
		return errServerFull
	}
	if r != nil {
		r.mu.Lock()
		at := r.holderLocked(rejoin)
		full := len(r.members)+r.pending >= r.capacity && (at < 0 || r.members[at].claimed)
		r.mu.Unlock()
		if full {
			return errRoomFull
		}
	}
	if err := s.hostAdmit(r, ip, rejoin, take); err != nil {
		return err
	}
	if err := limited(s.joins, ip, take, "too many joins from this address; try again later"); err != nil {
		return err
	}
	// A look (take unset) consults the rate of new rooms whether or not
	// the room exists, so that it cannot tell which.
	if r == nil || !take {
		return limited(s.creates, ip, take, "too many new rooms from this address; try again later")
	}
	return nil
}

// roomLocked returns the named room, creating it if it does not exist and
// MAX_ROOMS allows, with the settings its code carries (see roomSettings).
func (s *server) roomLocked(name string) (*room, error) {
	if r := s.rooms[name]; r != nil {
		return r, nil
	}
	if len(s.rooms) >= s.cfg.MaxRooms {
		return nil, errServerFull
	}
	capacity, e2ee := roomSettings(name, s.cfg.MaxRoomClients)
	r := s.newRoom(name, capacity, roomCipher{E2EE: e2ee})
	s.rooms[name] = r
	return r, nil
}

// newRoom makes an empty room of s, in a new epoch, not yet in the room map.
func (s *server) newRoom(name string, capacity int, cipher roomCipher) *room {
	return &room{name: name, capacity: capacity, epoch: newEpoch(), cipher: cipher,
		metrics: s.metrics, histTotal: &s.history, fileTotal: &s.files, callMax: s.cfg.CallMax}
}

// unreserve gives back a place whose upgrade failed, and the claim on the
// member whose secret it presented, if any.
func (s *server) unreserve(r *room, ip string, claimed *client) {
	r.mu.Lock()
	if claimed != nil {
		claimed.claimed = false
	}
	r.pending--
	s.idleIfEmptyLocked(r)
	r.mu.Unlock()
	s.release(ip)
}

// release ends one connection's claim on MAX_CLIENTS and MAX_CONNS_PER_IP.
func (s *server) release(ip string) {
	s.mu.Lock()
	s.clients--
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
	s.mu.Unlock()
	s.conns.Done()
}

// join turns a reservation into membership: the client gets a unique name,
// its welcome and the history replay (all of it, or what came after from),
// then everyone hears of the arrival (by name in rooms of up to
// maxListedUsers, by the count in all). A client that presents a member's
// rejoin secret takes that member's place instead, unannounced if it keeps
// the name. All of it is queued under the room lock, so nothing live can
// come first.
func (s *server) join(c *client, requested string, from resumePoint) {
	c.room.mu.Lock()
	defer c.room.mu.Unlock()
	if !c.room.knockLocked(c, requested, from) {
		s.joinLocked(c, requested, from)
	}
}

// joinLocked is join, with c.room.mu held, for a client let in.
func (s *server) joinLocked(c *client, requested string, from resumePoint) {
	r := c.room
	r.pending--
	old, at := r.replaceLocked(from.rejoin)
	c.name = uniqueName(requested, func(key string) bool {
		return slices.ContainsFunc(r.members, func(m *client) bool { return m != old && strings.ToLower(m.name) == key })
	})
	// A reconnect under its old name takes the old connection's place
	// unseen; anything else is a leave and a join.
	quiet := old != nil && old.name == c.name
	switch {
	case quiet:
		r.members[at] = c
		r.replaceInCallLocked(old, c)
	case old != nil:
		r.removeLocked(old)
		r.announceLeaveLocked(old)
		fallthrough
	default:
		r.members = append(r.members, c)
	}
	c.rejoin = base64.RawURLEncoding.EncodeToString(randomBytes(rejoinBytes))
	c.uploadToken = base64.RawURLEncoding.EncodeToString(randomBytes(rejoinBytes))
	// SEND_BUFFER > HISTORY_SIZE+2 is checked at start-up, so all of this fits.
	replay, gap := r.replayLocked(from)
	c.enqueue(encodeFrame(typeWelcome, welcomePayload{
		Username: c.name, Room: r.name, MaxMessageBytes: s.cfg.MaxMessageBytes, roomCipher: r.cipher, Epoch: r.epoch, Gap: gap, Rejoin: c.rejoin,
		Files: s.welcomeFiles(c), Call: r.callWelcomeLocked(), ICEServers: s.iceServersFor(c),
	}), false)
	c.enqueueReplay(replay)
	if f := r.reactionsFrameLocked(from.ok); f != nil {
		c.enqueueReplay([][]byte{f})
	}
	if !quiet && len(r.members) <= maxListedUsers {
		r.broadcastLocked(encodeFrame(typeSystem, systemPayload{Text: c.name + " joined", TS: nowMillis()}), false)
	}
	if quiet {
		c.enqueue(r.userCountLocked(), true)
	} else {
		r.broadcastLocked(r.userCountLocked(), true)
	}
	if s.closing.Load() {
		c.goAway() // Shutdown began after this client was admitted.
	}
}

// replaceLocked finds the member whose rejoin secret is token: the
// same person reconnecting while the server still holds its old connection,
// which is dead or about to be. That member is out of the room from now on
// and closed with closeReplaced; it stays in r.members, at the index
// returned, for join to replace or remove.
func (r *room) replaceLocked(token string) (old *client, at int) {
	if at = r.holderLocked(token); at < 0 {
		return nil, -1
	}
	old = r.members[at]
	old.kicked = true
	old.discardQueue()
	go old.conn.Close(closeReplaced, reasonReplaced)
	r.metrics.cutOff(reasonReplaced)
	return old, at
}

// holderLocked returns the index of the member whose rejoin secret is
// token, or -1.
func (r *room) holderLocked(token string) int {
	if token == "" {
		return -1
	}
	return slices.IndexFunc(r.members, func(m *client) bool {
		return subtle.ConstantTimeCompare([]byte(m.rejoin), []byte(token)) == 1
	})
}

// leave removes the client (if it was not already cut off), tells the room,
// and starts the idle timer if the room is now empty.
func (s *server) leave(c *client) {
	r := c.room
	r.mu.Lock()
	if r.removeLocked(c) {
		r.announceLeaveLocked(c)
	}
	r.hostLeftLocked(c, s.cfg.HostGrace)
	s.idleIfEmptyLocked(r)
	r.mu.Unlock()
	s.forgetTURNID(c)
	s.release(c.ip)
}

// publish stamps a message with the sender's name, the next id and the time,
// keeps it in history and fans it out, all under the room lock so that every
// member sees one order. It reports whether a member's queue is backlogged.
//
// Past HISTORY_TOTAL_BYTES, it then trims the history of the least recently
// active rooms, outside the room lock.
func (s *server) publish(c *client, in inboundMessage) (backlog bool) {
	r := c.room
	r.mu.Lock()
	if c.kicked {
		r.mu.Unlock()
		return false
	}
	r.lastID++
	frame := encodeFrame(typeChatMessage, chatMessagePayload{
		ID: r.lastID, Username: c.name, Message: in.Message, TS: nowMillis(), ClientID: in.ClientID,
		ReplyTo: in.ReplyTo, Quote: in.quote,
	})
	backlog = r.postLocked(frame, s.cfg.HistorySize, int(s.cfg.HistoryBytes))
	r.mu.Unlock()
	if s.history.over() {
		s.trimHistory()
	}
	return backlog
}

// postLocked keeps frame, the room's newest message, in its history of at
// most size frames and maxBytes bytes (HISTORY_SIZE, HISTORY_BYTES), counts
// it, and fans it out. It reports whether a member's queue is backlogged.
func (r *room) postLocked(frame []byte, size, maxBytes int) (backlog bool) {
	r.lastActive.Store(r.histTotal.activity.Add(1))
	r.histTotal.add(r.rememberLocked(frame, size, maxBytes))
	r.metrics.accepted.Add(1)
	return r.broadcastLocked(frame, false)
}

// cutOff drops m, a member, as too slow, unless it has left already.
func (r *room) cutOff(m *client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !m.kicked && slices.Contains(r.members, m) {
		r.dropLocked([]*client{m})
	}
}

// dropLocked cuts off members found too slow: out of the room and their
// queues dropped at once, closed with 1008 without waiting, then announced.
func (r *room) dropLocked(dropped []*client) {
	for _, m := range dropped {
		m.kicked = true
		r.removeLocked(m)
		m.discardQueue()
		go m.conn.Close(websocket.StatusPolicyViolation, reasonTooSlow)
		r.metrics.cutOff(reasonTooSlow)
	}
	for _, m := range dropped {
		r.announceLeaveLocked(m)
	}
}

// announceLeaveLocked tells the room that m left: by name while it is
// small, and by the count always.
func (r *room) announceLeaveLocked(m *client) {
	r.leaveCallLocked(m)
	if len(r.members) < maxListedUsers {
		r.broadcastLocked(encodeFrame(typeSystem, systemPayload{Text: m.name + " left", TS: nowMillis()}), false)
	}
	r.broadcastLocked(r.userCountLocked(), true)
}

// removeLocked takes c out of the member list; false if it was not there.
func (r *room) removeLocked(c *client) bool {
	i := slices.Index(r.members, c)
	if i < 0 {
		return false
	}
	r.members = slices.Delete(r.members, i, i+1)
	return true
}

// userCountLocked encodes the room's userCount frame.
func (r *room) userCountLocked() []byte {
	p := userCountPayload{Count: len(r.members)}
	if len(r.members) <= maxListedUsers {
		p.Users = make([]string, len(r.members))
		for i, m := range r.members {
			p.Users[i] = m.name
		}
	}
	return encodeFrame(typeUserCount, p)
}

// rememberLocked appends frame to the history, then drops the oldest frames
// while the room holds more than size frames or maxBytes bytes. It returns
// how many bytes the history grew by, which may be negative.
func (r *room) rememberLocked(frame []byte, size, maxBytes int) int {
	if size == 0 {
		return 0
	}
	before := r.histBytes
	r.history = append(r.history, frame)
	r.histBytes += len(frame)
	for len(r.history) > size || r.histBytes > maxBytes {
		r.dropOldestLocked()
	}
	return r.histBytes - before
}

// dropOldestLocked forgets the oldest frame in the history, and its
// reactions, and returns their length.
func (r *room) dropOldestLocked() int {
	n := len(r.history[0]) + r.forgetReactionsLocked(r.lastID-uint64(len(r.history))+1)
	r.history[0] = nil // The frame can be collected; append reuses the array.
	r.history = r.history[1:]
	r.histBytes -= n
	if len(r.history) == 0 {
		r.history = nil
	}
	return n
}

// orderedHistoryLocked returns the history oldest first.
func (r *room) orderedHistoryLocked() [][]byte {
	return r.history
}

// idleIfEmptyLocked arms the timer that destroys an empty room with its
// history. A room with members or reservations is never destroyed.
func (s *server) idleIfEmptyLocked(r *room) {
	if len(r.members) > 0 || r.pending > 0 {
		return
	}
	r.stopIdleLocked()
	gen := r.idleGen
	r.idle = time.AfterFunc(s.cfg.RoomIdleTimeout, func() { s.expire(r, gen) })
}

// stopIdleLocked cancels a pending expiry.
func (r *room) stopIdleLocked() {
	r.idleGen++
	if r.idle != nil {
		r.idle.Stop()
		r.idle = nil
	}
}

// expire destroys r if it is still empty and was not re-entered since the
// timer was armed.
func (s *server) expire(r *room, gen int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.idleGen != gen || len(r.members) > 0 || r.pending > 0 {
		return
	}
	if s.rooms[r.name] == r {
		delete(s.rooms, r.name)
	}
	s.history.add(-r.histBytes)
	r.history, r.histBytes, r.react = nil, 0, roomReactions{}
	r.dropFilesLocked()
	s.log.Debug("room expired", "rooms", len(s.rooms))
}

// stats reports counts for /healthz and logs; never names.
func (s *server) stats() (rooms, clients int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms), s.clients
}

// shutdown refuses new clients, asks every connection to flush its queue and
// close with 1001, and waits for them until ctx ends; stragglers are cut.
func (s *server) shutdown(ctx context.Context) error {
	s.stopWatch()
	s.mu.Lock()
	s.closing.Store(true)
	var all []*client
	for _, r := range s.rooms {
		r.mu.Lock()
		all = append(all, r.members...)
		all = append(all, r.knockersLocked()...)
		r.stopIdleLocked()
		r.mu.Unlock()
	}
	s.mu.Unlock()
	for _, c := range all {
		c.goAway()
		s.metrics.cutOff(reasonRestarting)
	}
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range all {
			c.conn.CloseNow()
		}
		return ctx.Err()
	}
}
