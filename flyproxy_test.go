package main

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// This file is a stand-in for Fly's proxy, written from Fly's
// documentation, for the fleet tests: a random machine per request, one
// replay with Fly-Replay-Src, a fallback with fly-replay-failed when the
// target cannot be reached, and WebSockets passed through.

// flyProxy stands in for Fly's proxy in tests, written from Fly's
// documentation (https://fly.io/docs/networking/dynamic-request-routing/ and
// the fly-replay fallback changelog, https://fly.io/changelog/fly-replay-timeout-fallback/):
//   - each request goes to a machine picked at random;
//   - a response carrying fly-replay is not passed on: the request is sent
//     once to the named instance, with Fly-Replay-Src added;
//   - a replayed request that answers with fly-replay again is an error;
//   - when no connection to the target can be made (it is gone) and
//     fallback=prefer_self or
//     force_self was asked for, the request goes back to the machine that
//     replayed it (prefer_self: any machine if that one is gone too), with
//     fly-replay-failed added; a fallback is never replayed again;
//   - WebSocket upgrades pass through (httputil.ReverseProxy splices them);
//   - a request with a body over 1 MB is never replayed: it streams to the
//     machine picked, and a fly-replay answer to it is an error;
//   - fly-force-instance-id sends a request to that machine alone, streamed
//     and never replayed.
type flyProxy struct {
	mu       sync.Mutex
	machines map[string]*url.URL // machines the proxy can reach, by ID

	replays       atomic.Int64 // requests replayed to another machine
	fallbacks     atomic.Int64 // replays handed back to the sender
	doubleReplays atomic.Int64 // replayed requests that asked for another replay
	tooLarge      atomic.Int64 // replays refused because the body was over 1 MB
	forced        atomic.Int64 // requests sent by fly-force-instance-id

	// first, when set, is the machine every request goes to first, so
	// that a test knows whether a request will need a replay.
	first string
}

// flyReplayMaxBody is the largest body Fly's proxy replays: 1 MB.
const flyReplayMaxBody = 1_000_000

// errFlyReplay carries a fly-replay header out of ModifyResponse.
type errFlyReplay struct{ value string }

func (e errFlyReplay) Error() string { return "fly-replay: " + e.value }

// errMachineGone says the proxy cannot reach the machine.
var errMachineGone = errors.New("machine is not running")

// newFlyProxy returns a proxy with no machines.
func newFlyProxy() *flyProxy {
	return &flyProxy{machines: make(map[string]*url.URL)}
}

// add makes machine id reachable at base.
func (p *flyProxy) add(id, base string) {
	u, err := url.Parse(base)
	if err != nil {
		panic(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.machines[id] = u
}

// remove makes machine id unreachable, as a destroyed machine is.
func (p *flyProxy) remove(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.machines, id)
}

// pick returns a random reachable machine, or "" when there is none.
func (p *flyProxy) pick() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.machines[p.first] != nil {
		return p.first
	}
	ids := make([]string, 0, len(p.machines))
	for id := range p.machines {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return ""
	}
	return ids[rand.IntN(len(ids))]
}

// target returns the base URL of machine id, or nil when it is gone.
func (p *flyProxy) target(id string) *url.URL {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.machines[id]
}

// ServeHTTP routes one request the way Fly's proxy does.
func (p *flyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id := r.Header.Get("Fly-Force-Instance-Id"); id != "" {
		p.forced.Add(1)
		p.stream(w, r, nil, id)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, flyReplayMaxBody+1))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	if len(body) > flyReplayMaxBody {
		p.stream(w, r, body, p.pick())
		return
	}
	first := p.pick()
	replay, err := p.forward(w, r, bytes.NewReader(body), int64(len(body)), first, nil)
	if replay == "" {
		if err != nil {
			http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
		}
		return
	}
	fields := parseFlyReplay(replay)
	p.replays.Add(1)
	src := http.Header{"Fly-Replay-Src": {"instance=" + first + ";region=tst;t=" + strconv.FormatInt(time.Now().UnixMicro(), 10)}}
	again, err := p.forward(w, r, bytes.NewReader(body), int64(len(body)), fields["instance"], src)
	switch {
	case again != "":
		p.doubleReplays.Add(1)
		http.Error(w, "proxy: a replayed request asked for another replay", http.StatusBadGateway)
	case err == nil:
	case isConnectFailure(err) && (fields["fallback"] == "prefer_self" || fields["fallback"] == "force_self"):
		p.fallback(w, r, body, first, fields)
	default:
		http.Error(w, "proxy: replay target unreachable: "+err.Error(), http.StatusBadGateway)
	}
}

// stream sends r to machine id without buffering its body (head is what
// was read of it already) and without any replay: a fly-replay answer is an
// error, as it is on Fly for a body too large to replay or a forced
// instance.
func (p *flyProxy) stream(w http.ResponseWriter, r *http.Request, head []byte, id string) {
	body := io.MultiReader(bytes.NewReader(head), r.Body)
	replay, err := p.forward(w, r, body, r.ContentLength, id, nil)
	switch {
	case replay != "":
		p.tooLarge.Add(1)
		http.Error(w, "proxy: cannot replay a request over 1 MB or for a forced instance", http.StatusBadGateway)
	case err != nil:
		http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
	}
}

// fallback hands a failed replay back to the machine that sent it.
func (p *flyProxy) fallback(w http.ResponseWriter, r *http.Request, body []byte, sender string, fields map[string]string) {
	p.fallbacks.Add(1)
	back := sender
	if p.target(back) == nil && fields["fallback"] == "prefer_self" {
		back = p.pick()
	}
	failed := http.Header{"Fly-Replay-Failed": {"instance=" + fields["instance"] + ";reason=unreachable"}}
	replay, err := p.forward(w, r, bytes.NewReader(body), int64(len(body)), back, failed)
	if replay != "" {
		p.doubleReplays.Add(1)
		http.Error(w, "proxy: a fallback request asked for another replay", http.StatusBadGateway)
	} else if err != nil {
		http.Error(w, "proxy: fallback failed: "+err.Error(), http.StatusBadGateway)
	}
}

// forward sends r to machine id with extra headers. It writes the response
// and returns "", nil; or writes nothing and returns the fly-replay value the
// machine answered with, or the error that kept the request from it.
func (p *flyProxy) forward(w http.ResponseWriter, r *http.Request, body io.Reader, length int64, id string, extra http.Header) (replay string, err error) {
	target := p.target(id)
	if target == nil {
		return "", errMachineGone
	}
	var failure error
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // The app sees its public host, as on Fly.
			for k, v := range extra {
				pr.Out.Header[k] = v
			}
			if length != 0 {
				pr.Out.Body, pr.Out.ContentLength = io.NopCloser(body), length
			} else {
				pr.Out.Body, pr.Out.ContentLength = http.NoBody, 0 // Retried on a stale keep-alive.
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			if v := resp.Header.Get("Fly-Replay"); v != "" {
				return errFlyReplay{v}
			}
			return nil
		},
		ErrorHandler: func(_ http.ResponseWriter, _ *http.Request, err error) { failure = err },
	}
	rp.ServeHTTP(w, r)
	if fr := (errFlyReplay{}); errors.As(failure, &fr) {
		return fr.value, nil
	}
	return "", failure
}

// isConnectFailure reports whether err means no connection to the machine
// could be made: the only failure Fly's fallback covers.
func isConnectFailure(err error) bool {
	var op *net.OpError
	return errors.Is(err, errMachineGone) || errors.As(err, &op) && op.Op == "dial"
}

// parseFlyReplay splits "instance=x;timeout=5s;fallback=prefer_self".
func parseFlyReplay(v string) map[string]string {
	fields := make(map[string]string)
	for _, f := range strings.Split(v, ";") {
		k, val, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = val
	}
	return fields
}
