// One connection's life: its read loop, its send queue with the frame and
// byte budgets and the write watchdog that cut off a client that stopped
// reading, and the writer goroutine that exists only while the queue holds
// something. Framing bytes onto the socket is socket.go's; rooms are
// chat.go's.

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// Buffer sizes of an accepted connection. net/http's are 4 KiB each, but
// most of a chat server's memory is idle connections, and a chat frame is a
// few hundred bytes: a longer one, or a batch, is written past the buffer
// in a second system call rather than costing every connection more.
const (
	readBufferSize  = 512
	writeBufferSize = 512
)

// idleQueueCap is the largest queue array an idle client keeps, so steady
// traffic allocates nothing per recipient while a burst's array is dropped.
const idleQueueCap = 4

// maxPooledBatch is the largest write buffer kept for reuse.
const maxPooledBatch = 64 << 10

// slowGrace is how long a member's queue may stay over its budget while its
// writer is blocked in a write before the member is cut off as too slow. A
// queue over budget whose writer has not run yet proves nothing about the
// client, so it is never cut for that; the grace bounds what a client that
// stopped reading costs in memory, a quarter second of the room's traffic.
const slowGrace = 250 * time.Millisecond

// minSendBufferBytes is the smallest SEND_BUFFER_BYTES: a userCount frame
// listing maxListedUsers names always fits.
const minSendBufferBytes = 64 << 10

// client is one WebSocket connection and its queue of encoded frames.
//
// A client has a reader goroutine for as long as it is connected, and a
// writer goroutine only while frames wait to be sent: an idle connection
// costs one parked goroutine and its buffers.
type client struct {
	srv   *server // for the settings and counters its queue obeys
	conn  *websocket.Conn
	sock  *socketWriter // under conn: coalesces a batch's frames into one write
	room  *room
	name  string
	ip    string // client IP, for MAX_CONNS_PER_IP
	batch bool   // wants queued frames coalesced into newline-delimited messages

	kicked bool // taken out of the room by the server (too slow, moved, replaced); guarded by room.mu

	// rejoin is the secret this connection's welcome gave: a reconnect
	// that presents it takes this member's place (see replaceLocked).
	rejoin string
	// claimed is set while a reconnect that presented rejoin holds a
	// reservation to take this place; guarded by room.mu.
	claimed bool
	// uploadToken is the secret this connection's welcome gave for
	// uploading files; it is good only while the connection is a member.
	uploadToken string

	mu          sync.Mutex // guards the queue state below; taken after room.mu
	queue       [][]byte   // frames waiting for the writer, oldest first
	queuedBytes int        // total length of queue
	allowance   int        // bytes of a history replay, queued beyond SEND_BUFFER_BYTES
	overSince   time.Time  // when queue went over its budget; zero while within it
	countAt     int        // index in queue of a waiting userCount frame, or -1
	writing     bool       // a writer goroutine is draining queue
	goingAway   bool       // shutdown: close with 1001 once queue is flushed

	// Read loop state: the limiters are made when first needed, so an idle
	// connection does not carry them.
	limiter *rate.Limiter // flood control
	abuse   *rate.Limiter // budget of rejected frames
	control *rate.Limiter // flood control of ping and typing frames
	signal  *rate.Limiter // flood control of signal frames (call.go)

	// turnID names this connection in its TURN credentials, which carry no
	// name; it maps an allocation back to a call, for metrics only.
	turnID string

	pinger       *time.Timer  // next liveness check
	writingSince atomic.Int64 // UnixNano when the write under way began; 0 when none
}

// readLimitFor is the largest frame read from a client. JSON can escape a
// byte of text as six (\u0000), so an honest message of maxBytes always fits
// and gets a precise message_too_long; anything larger is closed with 1009.
func readLimitFor(maxBytes int) int64 {
	return max(int64(6*maxBytes+1024), maxSignalBytes+1024)
}

// smallBuffers hands websocket.Accept the hijacked connection with buffers
// of readBufferSize and writeBufferSize instead of net/http's, which are
// released once the handler returns. Frames are written through sock.
type smallBuffers struct {
	http.ResponseWriter
	sock *socketWriter
}

// Hijack takes over the connection, keeping any bytes the client already
// sent behind its handshake. websocket.Accept writes the 101 before it
// hijacks, so a client may already have sent frames; Accept keeps only
// what the returned reader has buffered, so those bytes must be buffered
// there, not merely waiting in the reader's source.
func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	rd := bufio.NewReaderSize(conn, readBufferSize)
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		rd = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), max(readBufferSize, n))
		rd.Peek(n) // Reads the early bytes alone: the first reader holds exactly n.
	}
	w.sock.attach(conn)
	return conn, bufio.NewReadWriter(rd, bufio.NewWriterSize(w.sock, writeBufferSize)), nil
}

// newClient wraps an accepted connection whose frames go through sock.
func (s *server) newClient(conn *websocket.Conn, sock *socketWriter, r *room, batch bool) *client {
	c := &client{
		srv:     s,
		conn:    conn,
		sock:    sock,
		room:    r,
		batch:   batch,
		countAt: -1,
	}
	sock.since, sock.writing = &c.writingSince, &s.writesUnderWay
	c.pinger = time.AfterFunc(s.cfg.PingInterval, func() { c.ping() })
	return c
}

// serveClient reads from the connection until it ends, then takes the
// client out of its room. It runs in its own goroutine, so that net/http's
// per-request state is freed while the connection lives on.
func (s *server) serveClient(c *client) {
	err := s.readLoop(c)
	c.pinger.Stop()
	// Logged before leave releases the connection, so that a finished
	// shutdown has every line written.
	s.log.Debug("connection ended", "how", closeKind(err))
	s.metrics.connectionEnded(err)
	s.leave(c)
	c.conn.CloseNow()
}

// readLoop reads frames until the connection ends. A bad frame gets an error
// frame and the connection carries on, until rejections exhaust the abuse
// budget. Reads need no context: every way a connection ends closes it.
func (s *server) readLoop(c *client) error {
	c.conn.SetReadLimit(readLimitFor(s.cfg.MaxMessageBytes))
	for {
		env, rejected, err := c.readFrame()
		if err != nil {
			return err
		}
		if rejected == nil && env.Type != typeChatMessage {
			if rejected = s.control(c, env); rejected == nil {
				continue
			}
		}
		var in inboundMessage
		if rejected == nil {
			in, rejected = parseChatMessage(env, s.cfg.MaxMessageBytes)
		}
		if rejected == nil {
			rejected = c.room.cipher.refuse(in)
		}
		if rejected == nil {
			rejected = c.room.checkReply(&in, s.cfg.MaxMessageBytes)
		}
		if rejected == nil && c.flooding() {
			rejected = &errorPayload{
				Code:     codeRateLimited,
				Text:     fmt.Sprintf("slow down: at most %g messages a second, %d at once", s.cfg.MessageRate, s.cfg.MessageBurst),
				ClientID: in.ClientID,
			}
		}
		if rejected == nil {
			if backlog := s.publish(c, in); backlog {
				// On a busy core, let the writers drain before reading on:
				// members who keep up are then never mistaken for slow ones.
				runtime.Gosched()
			}
			continue
		}
		if c.abuse == nil {
			c.abuse = rate.NewLimiter(abuseRate, abuseBurst)
		}
		if !c.abuse.Allow() {
			c.conn.Close(websocket.StatusPolicyViolation, reasonAbuse)
			return errAbuse
		}
		s.metrics.refused(rejected.Code)
		c.enqueue(encodeFrame(typeError, rejected), false)
	}
}

// readFrame reads c's next frame and decodes its envelope. A frame that is
// not one envelope comes back rejected, to be answered; an error ends the
// connection.
func (c *client) readFrame() (env envelope, rejected *errorPayload, err error) {
	typ, r, err := c.conn.Reader(context.Background())
	if err != nil {
		return envelope{}, nil, err
	}
	if typ != websocket.MessageText {
		c.conn.Close(websocket.StatusUnsupportedData, reasonBinary)
		return envelope{}, nil, errBinaryFrame
	}
	buf := readBuffers.Get().(*[]byte)
	data, err := readAllInto((*buf)[:0], r)
	if err == nil {
		// Decoding copies what it keeps, so the buffer is free again.
		env, rejected = decodeEnvelope(data)
	}
	if cap(data) <= maxPooledFrame {
		*buf = data
		readBuffers.Put(buf)
	}
	return env, rejected, err
}

// readBuffers holds idle buffers for the frames members send: a frame is
// decoded and done with before the next is read, so a message costs no
// buffer of its own, and an idle connection holds none.
var readBuffers = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

// readAllInto appends everything r holds to b, as io.ReadAll does to a
// buffer of its own.
func readAllInto(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// flooding takes a token from c's flood control, and reports true when
// there is none: the message must be refused.
func (c *client) flooding() bool {
	if c.srv.cfg.MessageRate == 0 {
		return false
	}
	if c.limiter == nil {
		c.limiter = rate.NewLimiter(rate.Limit(c.srv.cfg.MessageRate), c.srv.cfg.MessageBurst)
	}
	return !c.limiter.Allow()
}

// Errors that end a connection on the server's initiative.
var (
	errBinaryFrame = errors.New("binary frame")
	errAbuse       = errors.New("abuse budget exhausted")
)

// enqueue adds frame to c's queue and makes sure a writer is draining it.
// A userCount frame (isCount) replaces one still waiting. It reports false,
// queuing nothing, when the client is too slow (see tooSlowLocked), and
// backlog when the queue is past half its budget. It never blocks on I/O.
func (c *client) enqueue(frame []byte, isCount bool) (ok, backlog bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if isCount && c.countAt >= 0 {
		c.queuedBytes += len(frame) - len(c.queue[c.countAt])
		c.queue[c.countAt] = frame
		return true, false
	}
	if c.overBudgetLocked(len(frame)) && c.tooSlowLocked(time.Now()) {
		return false, true
	}
	if isCount {
		c.countAt = len(c.queue)
	}
	c.queue = append(c.queue, frame)
	c.queuedBytes += len(frame)
	c.srv.metrics.deliveries.Add(1)
	c.startWriterLocked()
	return true, len(c.queue) > c.srv.cfg.SendBuffer/2 || c.queuedBytes > int(c.srv.cfg.SendBufferBytes)/2
}

// enqueueReplay queues a newcomer's history replay. It always fits
// SEND_BUFFER (checked at start-up), and its bytes are allowed on top of
// SEND_BUFFER_BYTES until the writer takes them: the room's history is
// bounded on its own, and a newcomer must have time to read it.
func (c *client) enqueueReplay(frames [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range frames {
		c.queue = append(c.queue, f)
		c.queuedBytes += len(f)
		c.allowance += len(f)
	}
	c.srv.metrics.deliveries.Add(uint64(len(frames)))
	if len(frames) > 0 {
		c.startWriterLocked()
	}
}

// overBudgetLocked reports whether adding n bytes would take c's queue past
// SEND_BUFFER frames or SEND_BUFFER_BYTES bytes.
func (c *client) overBudgetLocked(n int) bool {
	return len(c.queue) >= c.srv.cfg.SendBuffer || c.queuedBytes+n > int(c.srv.cfg.SendBufferBytes)+c.allowance
}

// tooSlowLocked is asked when c's queue is over its budget. It notes when
// that began, and reports true once the queue has stayed over budget for
// slowGrace while the writer is blocked in a write: the client is not
// reading what its socket already holds. A writer that the scheduler has
// not run yet is no evidence against the client.
func (c *client) tooSlowLocked(now time.Time) bool {
	if c.overSince.IsZero() {
		c.overSince = now
		return false
	}
	return c.slowLocked(now)
}

// slowLocked reports whether c's queue has been over budget for slowGrace
// while a write to it is blocked.
func (c *client) slowLocked(now time.Time) bool {
	return !c.overSince.IsZero() && c.writingSince.Load() != 0 && now.Sub(c.overSince) >= slowGrace
}

// stillTooSlow is slowLocked for the write watchdog, which finds a member
// that stopped reading when the room has nothing more to queue for it.
func (c *client) stillTooSlow(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slowLocked(now)
}

// discardQueue drops what waits for a member that was cut off: it will
// never be sent, and a client that does not read must not hold memory.
func (c *client) discardQueue() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.queue)
	c.queue = c.queue[:0]
	c.queuedBytes, c.allowance, c.overSince = 0, 0, time.Time{}
	c.countAt = -1
}

// goAway asks c's writer to close with 1001 once what is queued is sent.
func (c *client) goAway() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.goingAway = true
	c.startWriterLocked()
}

// startWriterLocked starts c's writer unless one is already draining its
// queue. c.mu is held.
func (c *client) startWriterLocked() {
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
}

// writeLoop sends what is queued and returns when the queue is empty;
// enqueue starts it again. Everything it finds queued, however many frames,
// leaves in one write(2) (up to corkLimit), each frame still a WebSocket
// message of its own. At shutdown it closes with 1001 once the queue is
// flushed. A failed write closes the connection, and the writer is never
// started again for it.
func (c *client) writeLoop() {
	if c.srv.beforeWriterTurn != nil {
		c.srv.beforeWriterTurn(c)
	}
	// Let whoever woke this writer finish what it is doing first: in a
	// burst, the room queues more, and the write carries more.
	runtime.Gosched()
	for {
		c.sock.cork()
		err := c.drain()
		if ferr := c.sock.uncork(); err == nil {
			err = ferr
		}
		if err != nil {
			c.conn.CloseNow()
			return
		}
		if ended, goingAway := c.endTurn(); ended {
			if goingAway {
				c.conn.Close(websocket.StatusGoingAway, reasonRestarting)
			}
			return
		}
	}
}

// drain frames batches into the corked socket until the queue is empty.
func (c *client) drain() error {
	var frames [][]byte
	for {
		if frames = c.take(frames); frames == nil {
			return nil
		}
		if err := c.writeFrames(frames); err != nil {
			return err
		}
	}
}

// take hands the writer everything queued in exchange for the batch it
// wrote, or returns nil when nothing is queued.
func (c *client) take(done [][]byte) [][]byte {
	clear(done) // The written frames can be collected.
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		if cap(done) > cap(c.queue) {
			c.queue = done[:0]
		}
		return nil
	}
	frames := c.queue
	c.queue = done[:0]
	c.queuedBytes, c.allowance, c.overSince = 0, 0, time.Time{}
	c.countAt = -1
	return frames
}

// endTurn ends the writer's turn, once what it took is written, unless more
// was queued meanwhile; it reports whether the client is to be closed with
// 1001. Only one writer ever drains a client, so frames keep their order.
func (c *client) endTurn() (ended, goingAway bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) > 0 {
		return false, false
	}
	c.writing = false
	if cap(c.queue) > idleQueueCap {
		c.queue = nil
	}
	return true, c.goingAway
}

// writeFrames writes one batch: a batching client gets it as one
// newline-delimited message, any other as a message per frame.
func (c *client) writeFrames(frames [][]byte) error {
	return c.sock.writeMessages(frames, c.batch)
}

// ping checks that the peer still answers; one that does not within
// PingInterval is cut off, so dead connections do not hold rooms open.
func (c *client) ping() {
	ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.PingInterval)
	defer cancel()
	err := c.conn.Ping(ctx)
	switch {
	case err == nil:
		c.pinger.Reset(c.srv.cfg.PingInterval)
	case errors.Is(err, context.DeadlineExceeded):
		c.conn.Close(websocket.StatusPolicyViolation, reasonPingFailed)
		c.srv.metrics.cutOff(reasonPingFailed)
	}
}

// closeKind sorts how a connection ended, for logs that must not carry
// peer-supplied text (a close reason can contain anything).
func closeKind(err error) string {
	switch {
	case err == nil:
		return "normal"
	case websocket.CloseStatus(err) == websocket.StatusNormalClosure,
		websocket.CloseStatus(err) == websocket.StatusGoingAway:
		return "normal"
	case websocket.CloseStatus(err) != -1:
		return fmt.Sprintf("closed %d", websocket.CloseStatus(err))
	case errors.Is(err, errBinaryFrame):
		return "binary frame"
	case errors.Is(err, errAbuse):
		return "abuse"
	case errors.Is(err, websocket.ErrMessageTooBig):
		return "frame too big"
	case errors.Is(err, context.Canceled), errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF):
		return "normal"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "error"
	}
}

// watchWrites cuts every connection whose write has taken longer than
// WRITE_TIMEOUT, looking a few times per timeout, until ctx ends. One
// goroutine for the server costs less than a timer per client reset on
// every write.
func (s *server) watchWrites(ctx context.Context) {
	tick := time.NewTicker(max(min(s.cfg.WriteTimeout/4, slowGrace/2), 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			stuck, slow := s.stuckWriters(now)
			for _, c := range stuck {
				c.conn.CloseNow()
			}
			for _, c := range slow {
				c.room.cutOff(c)
			}
		}
	}
}

// stuckWriters lists the members whose write began over WRITE_TIMEOUT
// before now, and those too slow by tooSlowLocked's rule: a room that went
// quiet after a burst would not otherwise find them.
func (s *server) stuckWriters(now time.Time) (stuck, slow []*client) {
	if s.writesUnderWay.Load() == 0 {
		// Between bursts, and at the pace people chat, where the rooms
		// write to idle members directly: nobody to look at.
		return nil, nil
	}
	limit := now.Add(-s.cfg.WriteTimeout).UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rooms {
		r.mu.Lock()
		for _, m := range r.members {
			// Without a write under way a member is neither stuck nor
			// slow, and most members of a big server are idle: they cost
			// an atomic load here, not a lock.
			switch t := m.writingSince.Load(); {
			case t == 0:
			case t < limit:
				stuck = append(stuck, m)
			case m.stillTooSlow(now):
				slow = append(slow, m)
			}
		}
		r.mu.Unlock()
	}
	return stuck, slow
}
