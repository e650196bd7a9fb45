package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/coder/websocket"
)

// readLimitFor is the largest frame read from a client. JSON can escape a
// byte of text as six (\u0000), so an honest message of maxBytes always fits
// and gets a precise message_too_long; anything larger is closed with 1009.
func readLimitFor(maxBytes int) int64 {
	return int64(6*maxBytes + 1024)
}

// serve runs the connection: the write loop in its own goroutine, the read
// loop here. It returns when either side ends, after the writer has stopped.
func (s *server) serveClient(ctx context.Context, c *client) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.conn.SetReadLimit(readLimitFor(s.cfg.MaxMessageBytes))

	writeErr := make(chan error, 1)
	go func() {
		err := s.writeLoop(ctx, c)
		cancel()
		writeErr <- err
	}()
	if s.isClosing() {
		c.stopped.Do(func() { close(c.stop) }) // Joined while shutdown was collecting members.
	}
	readErr := s.readLoop(ctx, c)
	cancel()
	return errors.Join(readErr, <-writeErr)
}

// isClosing reports whether shutdown has begun.
func (s *server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// readLoop reads frames until the connection ends. A bad frame gets an error
// frame and the connection carries on, until rejections exhaust the abuse
// budget.
func (s *server) readLoop(ctx context.Context, c *client) error {
	for {
		typ, data, err := c.conn.Read(ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			c.conn.Close(websocket.StatusUnsupportedData, reasonBinary)
			return errBinaryFrame
		}
		in, rejected := parseClientFrame(data, s.cfg.MaxMessageBytes)
		if rejected == nil && c.limiter != nil && !c.limiter.Allow() {
			rejected = &errorPayload{
				Code:     codeRateLimited,
				Text:     fmt.Sprintf("slow down: at most %g messages a second, %d at once", s.cfg.MessageRate, s.cfg.MessageBurst),
				ClientID: in.ClientID,
			}
		}
		if rejected == nil {
			s.publish(c, in)
			continue
		}
		if !c.abuse.Allow() {
			c.conn.Close(websocket.StatusPolicyViolation, reasonAbuse)
			return errAbuse
		}
		c.reply(encodeFrame(typeError, rejected))
	}
}

// Errors that end a connection on the server's initiative.
var (
	errBinaryFrame = errors.New("binary frame")
	errAbuse       = errors.New("abuse budget exhausted")
)

// reply queues a frame for this client alone. If its queue is full the client
// is already too slow and is about to be cut off, so the frame is dropped.
func (c *client) reply(frame []byte) {
	select {
	case c.send <- frame:
	default:
	}
}

// writeLoop sends queued frames, pings the peer, and at shutdown flushes what
// is queued before closing with 1001.
func (s *server) writeLoop(ctx context.Context, c *client) error {
	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.stop:
			if err := s.writeQueued(ctx, c, nil); err != nil {
				return err
			}
			return c.conn.Close(websocket.StatusGoingAway, reasonRestarting)
		case f := <-c.send:
			if err := s.writeQueued(ctx, c, f); err != nil {
				return err
			}
		case <-ping.C:
			go s.ping(ctx, c)
		}
	}
}

// writeQueued writes first (if any) and everything already queued behind it.
// A batching client gets them as one newline-delimited message, so a backlog
// costs one write instead of one per frame.
func (s *server) writeQueued(ctx context.Context, c *client, first []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	if !c.batch {
		if first != nil {
			if err := c.conn.Write(ctx, websocket.MessageText, first); err != nil {
				return err
			}
		}
		for {
			select {
			case f := <-c.send:
				if err := c.conn.Write(ctx, websocket.MessageText, f); err != nil {
					return err
				}
			default:
				return nil
			}
		}
	}
	return s.writeBatch(ctx, c, first)
}

// writeBatch writes first and the queued frames as one message.
func (s *server) writeBatch(ctx context.Context, c *client, first []byte) error {
	if first == nil {
		select {
		case first = <-c.send:
		default:
			return nil
		}
	}
	w, err := c.conn.Writer(ctx, websocket.MessageText)
	if err != nil {
		return err
	}
	if _, err := w.Write(first); err != nil {
		return err
	}
	for more := true; more; {
		select {
		case f := <-c.send:
			if _, err := w.Write(newline); err != nil {
				return err
			}
			if _, err := w.Write(f); err != nil {
				return err
			}
		default:
			more = false
		}
	}
	return w.Close()
}

// newline separates frames in a batched message.
var newline = []byte{'\n'}

// ping checks that the peer still answers; one that does not within
// PingInterval is cut off, so dead connections do not hold rooms open.
func (s *server) ping(ctx context.Context, c *client) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.PingInterval)
	defer cancel()
	err := c.conn.Ping(ctx)
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		c.conn.Close(websocket.StatusPolicyViolation, reasonPingFailed)
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
