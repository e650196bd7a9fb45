// A room's host: the credential of whoever created the room with POST
// /api/rooms, lock, knock (a waiting room), admit and deny, remove, promote
// and hand over, the role passing on when the last host has gone, and a
// host's move of the others to a fresh room. All of it lives with the room,
// under room.mu; rooms joined by name have no host. The frames are
// hostwire.go's.

package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"slices"
	"strings"
	"time"
)

// Bounds of hosted rooms.
const (
	hostSecretBytes = 16          // a credential is 128 random bits, 22 characters of base64url
	maxKnocks       = 8           // people waiting in one room
	maxKnocksPerIP  = 2           // people waiting in one room from one address
	knocksPerMinute = 6           // knocks one address may make per minute, server-wide
	barFor          = time.Minute // how long a denied or removed address may not knock
	maxAway         = 256         // rejoin secrets of members lately gone, kept per room
	maxSeats        = 16          // hosts of one room
)

// hostState is a hosted room's admission and its hosts. Guarded by room.mu.
type hostState struct {
	seats     []*hostSeat
	locked    bool
	knocking  bool
	knocks    []*knocker
	nextKnock int
	away      []awaySecret         // members who left within HOST_GRACE may come back
	barred    map[string]time.Time // address → until when it may not knock
	passGen   int                  // invalidates a pending hand-over
}

// hostSeat is one host credential and the connection holding it, nil
// while its host is away.
type hostSeat struct {
	secret string
	holder *client
}

// knocker is a connection waiting to be let in. It is reserved in the
// room (pending) but not a member, and marked kicked so that nothing it
// sends reaches the room.
type knocker struct {
	id   int
	name string
	c    *client
	from resumePoint
}

// awaySecret is the rejoin secret of a member who left, valid until until.
type awaySecret struct {
	secret string
	until  time.Time
}

// newHostSecret makes a credential.
func newHostSecret() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(hostSecretBytes))
}

// newHostState is the host state of a room created with credential.
func newHostState(credential string) *hostState {
	return &hostState{seats: []*hostSeat{{secret: credential}}, barred: make(map[string]time.Time)}
}

// hostCode is the random part of the code of the room whose creator holds
// credential: 80 bits of its SHA-256. The code commits to the credential
// without revealing it, so any server that meets the code, another node
// behind a load balancer or this one after the room moved, can check the
// creator's claim (see claimByCode).
func hostCode(credential string) string {
	sum := sha256.Sum256([]byte(credential))
	return roomCodeEncoding.EncodeToString(sum[:roomCodeLen*5/8])
}

// claimByCode gives r, a room this server holds without host state, its
// creator's host seat when credential is the one its code was drawn from.
// Named rooms never match: their names are not codes.
func (r *room) claimByCode(credential string) bool {
	head, _, _ := strings.Cut(r.name, "-")
	random, _, _ := strings.Cut(head, "_")
	if len(random) != roomCodeLen || len(credential) != 22 ||
		subtle.ConstantTimeCompare([]byte(hostCode(credential)), []byte(random)) != 1 {
		return false
	}
	r.host = newHostState(credential)
	return true
}

// seatLocked returns the seat whose credential is secret, comparing every
// seat in constant time, or nil.
func (h *hostState) seatLocked(secret string) *hostSeat {
	var found *hostSeat
	for _, seat := range h.seats {
		if subtle.ConstantTimeCompare([]byte(seat.secret), []byte(secret)) == 1 {
			found = seat
		}
	}
	return found
}

// isHostLocked reports whether c holds a seat.
func (h *hostState) isHostLocked(c *client) bool {
	return slices.ContainsFunc(h.seats, func(seat *hostSeat) bool { return seat.holder == c })
}

// knownLocked reports whether rejoin belongs to a member, present or gone
// within HOST_GRACE: such a person is coming back, not new.
func (r *room) knownLocked(rejoin string, now time.Time) bool {
	if rejoin == "" {
		return false
	}
	if r.holderLocked(rejoin) >= 0 {
		return true
	}
	known := false
	for _, a := range r.host.away {
		if now.Before(a.until) && subtle.ConstantTimeCompare([]byte(a.secret), []byte(rejoin)) == 1 {
			known = true
		}
	}
	return known
}

// hostAdmit refuses a newcomer to a locked room, and a knock the room
// cannot take: from an address turned away a moment ago, past maxKnocks
// or maxKnocksPerIP, or past knocksPerMinute from one address (take spends
// that token). Members coming back with their rejoin secret pass. s.mu is
// held.
func (s *server) hostAdmit(r *room, ip, rejoin string, take bool) error {
	if r == nil {
		return nil
	}
	if pass, err := r.knockCheck(ip, rejoin); pass || err != nil {
		return err
	}
	if s.knocks == nil {
		s.knocks = perMinute(knocksPerMinute, clientTableSize(s.cfg))
	}
	return limited(s.knocks, ip, take, "too many knocks from this address; try again later")
}

// knockCheck is the room's own part of hostAdmit: pass when it takes a
// newcomer from ip presenting rejoin as any room would (it neither locks
// nor knocks, or a member is coming back), else the refusal of a locked
// room or of a knock it cannot take, or neither when the newcomer may knock.
func (r *room) knockCheck(ip, rejoin string) (pass bool, err error) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.host
	if h == nil || !h.locked && !h.knocking || r.knownLocked(rejoin, now) {
		return true, nil
	}
	switch {
	case h.locked:
		err = errRoomLocked
	case now.Before(h.barred[ip]):
		err = errKnockRefused
	case len(h.knocks) >= maxKnocks || h.knocksFromLocked(ip) >= maxKnocksPerIP:
		err = errKnockFull
	}
	return false, err
}

// knocksFromLocked counts the knockers waiting from ip.
func (h *hostState) knocksFromLocked(ip string) int {
	n := 0
	for _, k := range h.knocks {
		if k.c.ip == ip {
			n++
		}
	}
	return n
}

// knockLocked puts c in the waiting room instead of joining it, when the
// room knocks and c is not a member coming back. c hears knocking and
// nothing else; each host hears of it.
func (r *room) knockLocked(c *client, requested string, from resumePoint) bool {
	h := r.host
	if h == nil || !h.knocking || r.knownLocked(from.rejoin, time.Now()) {
		return false
	}
	h.nextKnock++
	c.kicked = true // until admitted: nothing it sends reaches the room
	h.knocks = append(h.knocks, &knocker{id: h.nextKnock, name: requested, c: c, from: from})
	r.metrics.host.knocks.Add(1)
	c.enqueue(encodeFrame(typeKnocking, struct{}{}), false)
	r.tellHostsLocked()
	return true
}

// hostLeftLocked is told that c left the room: a knocker stops waiting, a
// member's rejoin secret is kept for grace (HOST_GRACE) so that a locked or
// knocking room lets it back, and a host's seat waits for it that long
// before the role passes on (passHost). When nobody is left, knockers are
// sent away.
func (r *room) hostLeftLocked(c *client, grace time.Duration) {
	h := r.host
	if h == nil {
		return
	}
	if i := slices.IndexFunc(h.knocks, func(k *knocker) bool { return k.c == c }); i >= 0 {
		h.knocks = slices.Delete(h.knocks, i, i+1)
		r.pending--
		r.tellHostsLocked()
		return
	}
	now := time.Now()
	if c.rejoin != "" {
		h.away = slices.DeleteFunc(h.away, func(a awaySecret) bool { return !now.Before(a.until) })
		if len(h.away) >= maxAway {
			h.away = h.away[1:]
		}
		h.away = append(h.away, awaySecret{secret: c.rejoin, until: now.Add(grace)})
	}
	wasHost := false
	for _, seat := range h.seats {
		if seat.holder == c {
			seat.holder, wasHost = nil, true
		}
	}
	if wasHost && !slices.ContainsFunc(h.seats, func(seat *hostSeat) bool { return seat.holder != nil }) {
		h.passGen++
		gen := h.passGen
		time.AfterFunc(grace, func() { r.passHost(gen) })
	}
	if len(r.members) == 0 {
		r.sendKnockersAwayLocked(reasonNobody)
	}
}

// sendKnockersAwayLocked closes every knocker of the room with closeDenied.
func (r *room) sendKnockersAwayLocked(reason string) {
	for _, k := range r.host.knocks {
		r.pending--
		go k.c.conn.Close(closeDenied, reason)
	}
	r.host.knocks = nil
}

// passHost gives the host role to the member present longest once every
// host has been gone for HOST_GRACE, unless one came back meanwhile (gen),
// and the room hears of it. The old credentials stop working.
func (r *room) passHost(gen int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.host
	if h == nil || h.passGen != gen || len(r.members) == 0 ||
		slices.ContainsFunc(h.seats, func(seat *hostSeat) bool { return seat.holder != nil }) {
		return
	}
	heir := r.members[0]
	h.seats = nil
	r.crownLocked(heir)
	r.metrics.host.handovers.Add(1)
	r.noticeLocked(heir.name + " is now the host: the host left.")
}

// crownLocked makes m a host of the room with a credential of its own, sent
// to m alone in its hostState frame, and tells the other hosts.
func (r *room) crownLocked(m *client) {
	h := r.host
	secret := newHostSecret()
	h.seats = append(h.seats, &hostSeat{secret: secret, holder: m})
	for _, seat := range h.seats {
		if seat.holder != nil && seat.holder != m {
			seat.holder.enqueue(r.hostStateLocked(true, ""), false)
		}
	}
	m.enqueue(r.hostStateLocked(true, secret), false)
}

// hostStateLocked encodes the room's hostState frame for a host (or, with
// host false, for one who just stopped being one), carrying credential
// when that host has just been given it.
func (r *room) hostStateLocked(host bool, credential string) []byte {
	h := r.host
	p := hostStatePayload{Credential: credential, Host: host, Locked: h.locked, Knocking: h.knocking, Knocks: []knockView{}, Hosts: []string{}}
	if host {
		for _, k := range h.knocks {
			p.Knocks = append(p.Knocks, knockView{ID: k.id, Name: k.name})
		}
		for _, seat := range h.seats {
			if seat.holder != nil && !slices.Contains(p.Hosts, seat.holder.name) {
				p.Hosts = append(p.Hosts, seat.holder.name)
			}
		}
	}
	return encodeFrame(typeHostState, p)
}

// tellHostsLocked sends each present host the room's hostState.
func (r *room) tellHostsLocked() {
	var frame []byte
	for _, seat := range r.host.seats {
		if seat.holder != nil {
			if frame == nil {
				frame = r.hostStateLocked(true, "")
			}
			seat.holder.enqueue(frame, false)
		}
	}
}

// noticeLocked tells every member text, as a system frame.
func (r *room) noticeLocked(text string) {
	r.broadcastLocked(encodeFrame(typeSystem, systemPayload{Text: text, TS: nowMillis()}), false)
}

// knockersLocked lists r's knockers, for shutdown.
func (r *room) knockersLocked() []*client {
	if r.host == nil {
		return nil
	}
	cs := make([]*client, len(r.host.knocks))
	for i, k := range r.host.knocks {
		cs[i] = k.c
	}
	return cs
}
