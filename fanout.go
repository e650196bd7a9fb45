// Fan-out: how a room's frame reaches its members. At the pace people chat,
// the broadcast writes each idle member's frame to its socket itself, with
// one non-blocking write(2), and starts no goroutine; in a burst, or for a
// member whose socket would block or whose queue holds frames already, the
// frame is queued for the member's writer (client.go), which sends what
// piled up in one write.

package main

import "time"

// burstGap is the least pause between the end of a broadcast and the start
// of the next for the next to count as paced rather than as part of a
// burst. A burst's frames are queued, so
// that each member's writer sends many in one write(2) instead of one each.
const burstGap = time.Millisecond

// broadcastLocked hands the same bytes to every member of r without
// blocking. A member that enqueue finds too slow is cut off, and the room
// hears it left. It reports whether any member's queue is more than half full.
//
// isCount marks a userCount frame: it replaces a count still waiting in a
// member's queue, since only the newest matters, so a crowd arriving at once
// costs each member one frame rather than one per newcomer.
//
// When the room has been quiet, the frame goes straight to idle members'
// sockets (sendNow). A broadcast that begins within burstGap of the last
// one's end queues instead: in a burst, publishers wait for the room lock,
// so each begins as soon as the last ends.
func (s *server) broadcastLocked(r *room, frame []byte, isCount bool) (backlog bool) {
	start := time.Now()
	var framed []byte // the whole WebSocket frame, when writing directly
	if start.UnixNano() >= r.quietAt {
		framed = append(appendTextHeader(make([]byte, 0, len(frame)+10), len(frame)), frame...)
	}
	var dropped []*client
	for _, m := range r.members {
		if framed != nil && m.sendNow(framed) {
			continue
		}
		ok, behind := m.enqueue(frame, isCount)
		if !ok {
			dropped = append(dropped, m)
		}
		backlog = backlog || behind
	}
	r.quietAt = time.Now().Add(burstGap).UnixNano()
	s.dropLocked(r, dropped)
	return backlog
}

// sendNow writes framed, a room frame with its WebSocket header, straight
// to c's socket if c is idle (no writer running, nothing queued) and the
// socket takes it without blocking. It reports false when the frame must be
// queued instead. If the socket took only part, the writer sends the rest
// before anything else. c.mu is held across the write, so that nothing
// queued for c meanwhile can overtake the frame.
func (c *client) sendNow(framed []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writing || len(c.queue) > 0 || c.goingAway {
		return false
	}
	switch n := c.sock.tryWrite(framed); {
	case n == 0:
		return false
	case n < len(framed):
		c.startWriterLocked()
	}
	c.srv.metrics.deliveries.Add(1)
	return true
}
