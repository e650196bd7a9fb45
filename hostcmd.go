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
		s.tellHostsLocked(r)
	}
	return s.runHostLocked(r, c, cmd)
}

// runHostLocked dispatches a command from c, a host of r.
func (s *server) runHostLocked(r *room, c *client, cmd hostCommand) *errorPayload {
	h := r.host
	switch cmd.Op {
	case opClaim:
		c.enqueue(s.hostStateLocked(r, true, ""), false)
	case opLock, opUnlock:
		if h.locked != (cmd.Op == opLock) {
			h.locked = cmd.Op == opLock
			if h.locked {
				s.metrics.host.locks.Add(1)
				s.noticeLocked(r, c.name+" locked the room: nobody new can join.")
			} else {
				s.noticeLocked(r, c.name+" unlocked the room.")
			}
		}
		s.tellHostsLocked(r)
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
			s.denyKnockLocked(r, i)
		}
		s.tellHostsLocked(r)
	case opRemove, opPromote, opHandOver:
		return s.memberCommandLocked(r, c, cmd)
	case opMove:
		return s.moveLocked(r, c, cmd)
	default:
		return errBadHostFrame
	}
	return nil
}

// setKnockingLocked turns knocking on or off; off lets in everyone waiting.
func (s *server) setKnockingLocked(r *room, c *client, on bool) {
	h := r.host
	if h.knocking != on {
		h.knocking = on
		if on {
			s.noticeLocked(r, c.name+" turned on knocking: newcomers wait for a host to let them in.")
		} else {
			for len(h.knocks) > 0 {
				s.admitKnockLocked(r, 0)
			}
			s.noticeLocked(r, c.name+" turned off knocking.")
		}
	}
	s.tellHostsLocked(r)
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
func (s *server) denyKnockLocked(r *room, i int) {
	k := r.host.knocks[i]
	r.host.knocks = slices.Delete(r.host.knocks, i, i+1)
	r.pending--
	r.host.barred[k.c.ip] = time.Now().Add(barFor)
	s.metrics.host.denials.Add(1)
	go k.c.conn.Close(closeDenied, reasonDenied)
}

// memberCommandLocked removes, promotes or hands over to the member named
// by cmd.
func (s *server) memberCommandLocked(r *room, c *client, cmd hostCommand) *errorPayload {
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
		s.removeMemberLocked(r, m)
	case opPromote:
		if !h.isHostLocked(m) && len(h.seats) < maxSeats {
			s.crownLocked(r, m)
			s.noticeLocked(r, c.name+" made "+m.name+" a host.")
		}
	case opHandOver:
		if !h.isHostLocked(m) {
			s.crownLocked(r, m)
		}
		h.seats = slices.DeleteFunc(h.seats, func(seat *hostSeat) bool { return seat.holder == c })
		c.enqueue(s.hostStateLocked(r, false, ""), false)
		s.tellHostsLocked(r)
		s.noticeLocked(r, c.name+" handed the host role to "+m.name+".")
	}
	return nil
}

// removeMemberLocked closes m with closeRemoved, forgets its rejoin secret
// and any host seat, keeps its address from knocking for barFor, and tells
// everyone. A room that neither knocks nor is locked starts knocking, so
// that m cannot come straight back, and its hosts are told so.
func (s *server) removeMemberLocked(r *room, m *client) {
	h := r.host
	m.kicked = true
	m.rejoin = ""
	r.removeLocked(m)
	m.discardQueue()
	h.seats = slices.DeleteFunc(h.seats, func(seat *hostSeat) bool { return seat.holder == m })
	h.barred[m.ip] = time.Now().Add(barFor)
	s.metrics.host.removals.Add(1)
	go m.conn.Close(closeRemoved, reasonRemoved)
	s.noticeLocked(r, m.name+" was removed.")
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
	s.tellHostsLocked(r)
}

// moveLocked delivers a sealed moveRoom frame to the members named in
// cmd.To who are still here, and to nobody else. Only an encrypted room
// moves: the frame carries a link sealed with its key.
func (s *server) moveLocked(r *room, c *client, cmd hostCommand) *errorPayload {
	if !r.cipher.E2EE {
		return &errorPayload{Code: codeNotEncrypted, Text: "only an encrypted room can move to a fresh one"}
	}
	if len(cmd.Sealed) > s.cfg.MaxMessageBytes {
		return &errorPayload{Code: codeMessageTooLong, Text: fmt.Sprintf("sealed is %d bytes; the limit is %d", len(cmd.Sealed), s.cfg.MaxMessageBytes)}
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
	s.metrics.host.moves.Add(1)
	return nil
}
