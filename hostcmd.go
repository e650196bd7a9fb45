// The host frame's commands: each checks the credential, changes the room
// under its lock, and tells the room what everyone may know. Refusals go to
// the sender alone. The state they change is host.go's.

package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Refusals of host commands; each goes to the sender alone.
var (
	errNotHost      = &errorPayload{Code: codeNotHost, Text: "only a host of this room can do that, with the credential the room gave"}
	errNoSuchMember = &errorPayload{Code: codeNoSuchMember, Text: "nobody of that name is in the room"}
	errNoSuchKnock  = &errorPayload{Code: codeNoSuchKnock, Text: "that person is no longer waiting"}
	errBadHostFrame = &errorPayload{Code: codeBadMessage, Text: "host payload must be {\"credential\", \"op\"} with a known op and its name, knock, or to and sealed"}
)

// hostFrame runs one host command from c.
func (s *server) hostFrame(c *client, raw json.RawMessage) *errorPayload {
	var cmd hostCommand
	if err := json.Unmarshal(raw, &cmd); err != nil || len(cmd.To) > maxListedUsers {
		return errBadHostFrame
	}
	r := c.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.host == nil && !r.claimByCode(cmd.Credential) {
		return errNotHost
	}
	seat := r.host.seatLocked(cmd.Credential)
	if seat == nil || cmd.Credential == "" {
		return errNotHost
	}
	if k := slices.IndexFunc(r.host.knocks, func(k *knocker) bool { return k.c == c }); k >= 0 {
		s.admitKnockLocked(r, k) // a host whose page reloaded into the waiting room
	}
	if c.kicked {
		return errNotHost // removed or replaced a moment ago
	}
	if seat.holder != c {
		seat.holder = c
		r.host.passGen++ // a host is back: no hand-over
		r.tellHostsLocked()
	}
	return s.runHostLocked(r, c, cmd)
}

// runHostLocked dispatches a command from c, a host of r.
func (s *server) runHostLocked(r *room, c *client, cmd hostCommand) *errorPayload {
	h := r.host
	switch cmd.Op {
	case opClaim:
		c.enqueue(r.hostStateLocked(true, ""), false)
	case opLock, opUnlock:
		r.lockLocked(c, cmd.Op == opLock)
	case opKnockOn, opKnockOff:
		s.setKnockingLocked(r, c, cmd.Op == opKnockOn)
	case opAdmit, opDeny:
		i := slices.IndexFunc(h.knocks, func(k *knocker) bool { return k.id == cmd.Knock })
		if i < 0 {
			return errNoSuchKnock
		}
		if cmd.Op == opAdmit {
			s.admitKnockLocked(r, i)
		} else {
			r.denyKnockLocked(i)
		}
		r.tellHostsLocked()
	case opRemove, opPromote, opHandOver:
		return r.memberCommandLocked(c, cmd)
	case opMove:
		return r.moveLocked(c, cmd, s.cfg.MaxMessageBytes)
	default:
		return errBadHostFrame
	}
	return nil
}

// lockLocked locks or unlocks the room at the word of c, a host; the room
// hears of a change, and the hosts of the state in any case.
func (r *room) lockLocked(c *client, on bool) {
	h := r.host
	if h.locked != on {
		h.locked = on
		if on {
			r.metrics.host.locks.Add(1)
			r.noticeLocked(c.name + " locked the room: nobody new can join.")
		} else {
			r.noticeLocked(c.name + " unlocked the room.")
		}
	}
	r.tellHostsLocked()
}

// setKnockingLocked turns knocking on or off; off lets in everyone waiting.
func (s *server) setKnockingLocked(r *room, c *client, on bool) {
	h := r.host
	if h.knocking != on {
		h.knocking = on
		if on {
			r.noticeLocked(c.name + " turned on knocking: newcomers wait for a host to let them in.")
		} else {
			for len(h.knocks) > 0 {
				s.admitKnockLocked(r, 0)
			}
			r.noticeLocked(c.name + " turned off knocking.")
		}
	}
	r.tellHostsLocked()
}

// admitKnockLocked lets the knocker at index i in: it joins as anyone would.
func (s *server) admitKnockLocked(r *room, i int) {
	k := r.host.knocks[i]
	r.host.knocks = slices.Delete(r.host.knocks, i, i+1)
	k.c.kicked = false
	s.metrics.host.admissions.Add(1)
	s.joinLocked(k.c, k.name, k.from)
}

// denyKnockLocked turns the knocker at index i away; its address may not knock
// again for barFor.
func (r *room) denyKnockLocked(i int) {
	k := r.host.knocks[i]
	r.host.knocks = slices.Delete(r.host.knocks, i, i+1)
	r.pending--
	r.host.barred[k.c.ip] = time.Now().Add(barFor)
	r.metrics.host.denials.Add(1)
	go k.c.conn.Close(closeDenied, reasonDenied)
}

// memberCommandLocked removes, promotes or hands over to the member named
// by cmd.
func (r *room) memberCommandLocked(c *client, cmd hostCommand) *errorPayload {
	i := slices.IndexFunc(r.members, func(m *client) bool { return m.name == cmd.Name })
	if i < 0 {
		return errNoSuchMember
	}
	m := r.members[i]
	if m == c {
		return &errorPayload{Code: codeBadMessage, Text: "a host cannot do that to themself"}
	}
	h := r.host
	switch cmd.Op {
	case opRemove:
		r.removeMemberLocked(m)
	case opPromote:
		if !h.isHostLocked(m) && len(h.seats) < maxSeats {
			r.crownLocked(m)
			r.noticeLocked(c.name + " made " + m.name + " a host.")
		}
	case opHandOver:
		if !h.isHostLocked(m) {
			r.crownLocked(m)
		}
		h.seats = slices.DeleteFunc(h.seats, func(seat *hostSeat) bool { return seat.holder == c })
		c.enqueue(r.hostStateLocked(false, ""), false)
		r.tellHostsLocked()
		r.noticeLocked(c.name + " handed the host role to " + m.name + ".")
	}
	return nil
}

// removeMemberLocked closes m with closeRemoved, forgets its rejoin secret
// and any host seat, keeps its address from knocking for barFor, and tells
// everyone. A room that neither knocks nor is locked starts knocking, so
// that m cannot come straight back, and its hosts are told so.
func (r *room) removeMemberLocked(m *client) {
	h := r.host
	m.kicked = true
	m.rejoin = ""
	r.removeLocked(m)
	m.discardQueue()
	h.seats = slices.DeleteFunc(h.seats, func(seat *hostSeat) bool { return seat.holder == m })
	h.barred[m.ip] = time.Now().Add(barFor)
	r.metrics.host.removals.Add(1)
	go m.conn.Close(closeRemoved, reasonRemoved)
	r.noticeLocked(m.name + " was removed.")
	r.broadcastLocked(r.userCountLocked(), true)
	if !h.locked && !h.knocking {
		h.knocking = true
		for _, seat := range h.seats {
			if seat.holder != nil {
				seat.holder.enqueue(encodeFrame(typeSystem, systemPayload{
					Text: "Knocking is on now, so " + m.name + " cannot come straight back.", TS: nowMillis(),
				}), false)

			}
		}
	}
	r.tellHostsLocked()
}

// moveLocked delivers a sealed moveRoom frame, of at most maxBytes
// (MAX_MESSAGE_BYTES), to the members named in cmd.To who are still here,
// and to nobody else. Only an encrypted room moves: the frame carries a
// link sealed with its key.
func (r *room) moveLocked(c *client, cmd hostCommand, maxBytes int) *errorPayload {
	if !r.cipher.E2EE {
		return &errorPayload{Code: codeNotEncrypted, Text: "only an encrypted room can move to a fresh one"}
	}
	if len(cmd.Sealed) > maxBytes {
		return &errorPayload{Code: codeMessageTooLong, Text: fmt.Sprintf("sealed is %d bytes; the limit is %d", len(cmd.Sealed), maxBytes)}
	}
	if rejected := r.cipher.refuse(inboundMessage{Message: cmd.Sealed}); rejected != nil {
		return rejected
	}
	frame := encodeFrame(typeMoveRoom, moveRoomPayload{From: c.name, Sealed: cmd.Sealed})
	for _, m := range r.members {
		if m != c && slices.Contains(cmd.To, m.name) {
			m.enqueue(frame, false)
		}
	}
	r.metrics.host.moves.Add(1)
	return nil
}
