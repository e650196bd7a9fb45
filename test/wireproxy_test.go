//go:build linux

package test

// A TCP proxy between the browsers and the server: it keeps one address
// while server processes come and go, records what the browsers send, cuts
// connections as a network failure does, closes WebSockets as a server
// would, and can play a server turned against its users by rewriting the
// WebSocket frames it sends.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// wireLogLimit bounds what is recorded of one connection: enough for every
// request head and the bodies the tests send.
const wireLogLimit = 64 << 20

// wireLog holds every byte each connection sent, connection by connection,
// so that one request never interleaves with another's.
type wireLog struct {
	mu    sync.Mutex
	conns []*bytes.Buffer
}

// conn returns a writer recording one new connection.
func (l *wireLog) conn() io.Writer {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := &bytes.Buffer{}
	l.conns = append(l.conns, b)
	return writerFunc(func(p []byte) (int, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if b.Len() < wireLogLimit {
			b.Write(p)
		}
		return len(p), nil
	})
}

// String is every connection's bytes, one connection after another.
func (l *wireLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s strings.Builder
	for _, b := range l.conns {
		s.Write(b.Bytes())
		s.WriteByte('\n')
	}
	return s.String()
}

// writerFunc is a function as an io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// wireProxy forwards each connection to backend.
type wireProxy struct {
	ln      net.Listener
	backend string
	log     *wireLog
	// tamper, when set, rewrites every envelope the server sends on a
	// WebSocket connection, one line of a batched message at a time: a
	// server, or whoever holds its TLS key, lying.
	tamper  atomic.Pointer[func([]byte) []byte]
	mu      sync.Mutex
	conns   map[net.Conn]bool
	sockets map[*proxiedSocket]bool // the WebSocket connections, to close them
}

// startWireProxy listens on loopback and forwards to backend until the test
// ends.
func startWireProxy(t *testing.T, backend string, log *wireLog) *wireProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &wireProxy{ln: ln, backend: backend, log: log, conns: map[net.Conn]bool{}, sockets: map[*proxiedSocket]bool{}}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// close stops the proxy: its address refuses, and every connection is cut.
func (p *wireProxy) close() {
	p.ln.Close()
	p.closeAll()
}

// addr is the proxy's host:port.
func (p *wireProxy) addr() string { return p.ln.Addr().String() }

// setTamper rewrites the server's text frames with f from now on.
func (p *wireProxy) setTamper(f func([]byte) []byte) { p.tamper.Store(&f) }

func (p *wireProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

// forward joins a browser's connection to a new one to the server. With no
// server listening, as between two processes of a restart, the browser's
// connection is closed, as a refused one would be.
func (p *wireProxy) forward(c net.Conn) {
	s, err := net.Dial("tcp", p.backend)
	if err != nil {
		c.Close()
		return
	}
	p.track(c, s)
	defer p.untrack(c, s)
	br := bufio.NewReader(c)
	head, _ := br.Peek(len("GET /ws/"))
	done := make(chan struct{})
	go func() {
		io.Copy(io.MultiWriter(s, p.log.conn()), br)
		s.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	if string(head) == "GET /ws/" {
		ws := &proxiedSocket{client: c, server: s}
		p.mu.Lock()
		p.sockets[ws] = true
		p.mu.Unlock()
		p.copyFrames(ws)
		p.mu.Lock()
		delete(p.sockets, ws)
		p.mu.Unlock()
	} else {
		io.Copy(c, s)
	}
	c.Close()
	s.Close()
	<-done
}

// proxiedSocket is one WebSocket connection through the proxy.
type proxiedSocket struct {
	client, server net.Conn
	mu             sync.Mutex // held while a frame is written to client
}

// track remembers both ends so that closeAll can cut them.
func (p *wireProxy) track(c, s net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[c], p.conns[s] = true, true
}

func (p *wireProxy) untrack(c, s net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	delete(p.conns, s)
}

// closeAll cuts every connection, as a network failure does: neither side
// gets a close frame.
func (p *wireProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// closeWebSockets closes every WebSocket with code and reason, as a server
// closing them would, and drops the server's side of each.
func (p *wireProxy) closeWebSockets(code uint16, reason string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	payload := binary.BigEndian.AppendUint16(nil, code)
	frame := appendFrame(nil, true, 8, append(payload, reason...))
	for ws := range p.sockets {
		ws.mu.Lock()
		ws.client.Write(frame)
		ws.client.Close()
		ws.server.Close()
		ws.mu.Unlock()
	}
	return len(p.sockets)
}

// copyFrames copies the server's response head, then, after a 101, its
// WebSocket frames one whole frame at a time, rewriting the envelopes of each text frame
// when the proxy tampers. Servers never mask their frames (RFC 6455,
// section 5.1) and Hallway does not compress them.
func (p *wireProxy) copyFrames(ws *proxiedSocket) {
	br := bufio.NewReader(ws.server)
	upgraded := false
	for first := true; ; first = false {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if first {
			upgraded = strings.HasPrefix(line, "HTTP/1.1 101 ")
		}
		if _, err := io.WriteString(ws.client, line); err != nil || line == "\r\n" {
			break
		}
	}
	if !upgraded { // A refusal: its body, and whatever else, goes as it is.
		io.Copy(ws.client, br)
		return
	}
	for {
		fin, op, payload, err := readServerFrame(br)
		if err != nil {
			return
		}
		if f := p.tamper.Load(); fin && op == 1 && f != nil {
			lines := bytes.Split(payload, []byte("\n"))
			for i, l := range lines {
				lines[i] = (*f)(l)
			}
			payload = bytes.Join(lines, []byte("\n"))
		}
		ws.mu.Lock()
		_, err = ws.client.Write(appendFrame(nil, fin, op, payload))
		ws.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// readServerFrame reads one unmasked frame.
func readServerFrame(r *bufio.Reader) (fin bool, op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(r, h[:]); err != nil {
		return
	}
	if h[1]&0x80 != 0 {
		return false, 0, nil, errors.New("a masked frame from the server")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		_, err = io.ReadFull(r, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, err = io.ReadFull(r, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	if err != nil {
		return
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(r, payload)
	return h[0]&0x80 != 0, h[0] & 0x0f, payload, err
}

// appendFrame appends an unmasked frame holding payload to b.
func appendFrame(b []byte, fin bool, op byte, payload []byte) []byte {
	first := op
	if fin {
		first |= 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, first, byte(n))
	case n <= 0xffff:
		b = append(b, first, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, first, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}
