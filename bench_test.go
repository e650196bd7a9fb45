//go:build linux

package main

import (
	"context"
	"fmt"
	"hallway/internal/loadgen"
	"log/slog"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"
)

// These benchmarks measure fan-out: through the real handler on loopback,
// at full speed and at the pace people chat, the memory of idle connections
// in a server process of its own, and the in-memory path of one message.
// The load tool (cmd/hallway-load) measures a server from outside.

// Pacing of the benchmarks.
const (
	// benchTimeout bounds one benchmark run.
	benchTimeout = 2 * time.Minute
	// benchWindow is how far the sender may run ahead of the slowest member,
	// checked every benchCheckEvery messages; together they keep every queue
	// under 150 frames, well below the default SEND_BUFFER of 256.
	benchWindow     = 100
	benchCheckEvery = 50
	// benchBehindPoll is the pause while the sender waits for the slowest member.
	benchBehindPoll = 50 * time.Microsecond
	// idleBenchMax is the server's default MAX_CLIENTS.
	idleBenchMax = 10000
)

// BenchmarkRoomLoopback measures fan-out through the real handler on a
// loopback listener in this process: one member sends b.N messages to a
// room and every member, the sender included, receives all of them.
// deliveries/s counts chatMessages reaching members; allocations include the
// clients', which share the process. Members join with ?batch=1, or, under
// "plain", without it.
func BenchmarkRoomLoopback(b *testing.B) {
	for _, plain := range []bool{false, true} {
		for _, n := range []int{100, 1000} {
			name := fmt.Sprintf("members=%d", n)
			if plain {
				name = "plain/" + name
			}
			b.Run(name, func(b *testing.B) { benchRoom(b, n, plain) })
		}
	}
}

// benchRoom runs BenchmarkRoomLoopback with n members, plain or batching.
func benchRoom(b *testing.B, n int, plain bool) {
	if err := loadgen.RaiseFileLimit(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	tg := startInProcess(b)
	tg.Plain = plain
	members := loadgen.DialMembers(ctx, b, tg, n, func(int) string { return "bench" }, false)
	loadgen.WaitJoined(ctx, b, members)
	b.ReportAllocs()
	b.ResetTimer()
	sendWindowed(ctx, b, members, b.N)
	want := int64(b.N) * int64(n)
	loadgen.WaitDelivered(ctx, members, want)
	b.StopTimer()
	if got := loadgen.Delivered(members); got != want {
		b.Fatalf("delivered %d of %d; dropped by the server: %s", got, want, loadgen.FormatDropped(loadgen.DroppedReasons(members)))
	}
	b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "deliveries/s")
}

// startInProcess serves the real handler on httptest with flood control off
// and shuts it down when the benchmark ends.
func startInProcess(b *testing.B) *loadgen.Target {
	_, tg := startInProcessServer(b)
	return tg
}

// startInProcessServer is startInProcess, also returning the server.
func startInProcessServer(b *testing.B) (*server, *loadgen.Target) {
	b.Helper()
	cfg, err := loadConfig(map[string]string{"MESSAGE_RATE": "0", "MAX_CONNS_PER_IP": "0", "JOIN_RATE": "0", "ROOM_CREATE_RATE": "0"})
	if err != nil {
		b.Fatal(err)
	}
	srv := newServer(cfg, slog.New(slog.DiscardHandler))
	ts := httptest.NewServer(srv.handler())
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
		defer cancel()
		srv.shutdown(ctx)
		ts.Close()
	})
	return srv, &loadgen.Target{Base: ts.URL}
}

// BenchmarkPacedRoom measures fan-out at the pace people chat: each message
// is sent once the room has gone quiet and the last one has reached every
// member, so that idle members' frames go straight to their sockets. It
// reports the CPU of this whole process (server and clients) per delivery,
// which is what changes with the path a frame takes; run it beside an older
// build to compare.
func BenchmarkPacedRoom(b *testing.B) {
	for _, plain := range []bool{false, true} {
		for _, n := range []int{10, 1000} {
			name := fmt.Sprintf("members=%d", n)
			if plain {
				name = "plain/" + name
			}
			b.Run(name, func(b *testing.B) { benchPaced(b, n, plain) })
		}
	}
}

// benchPaced runs BenchmarkPacedRoom with n members, plain or batching.
func benchPaced(b *testing.B, n int, plain bool) {
	if err := loadgen.RaiseFileLimit(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	srv, tg := startInProcessServer(b)
	tg.Plain = plain
	members := loadgen.DialMembers(ctx, b, tg, n, func(int) string { return "paced" }, false)
	loadgen.WaitJoined(ctx, b, members)
	srv.mu.Lock()
	r := srv.rooms["paced"]
	srv.mu.Unlock()
	before := processCPU(b)
	b.ResetTimer()
	for i := range b.N {
		for !r.quiet() {
			time.Sleep(burstScale / 10)
		}
		if err := members[0].Say(ctx, "paced"); err != nil {
			b.Fatalf("send message %d: %v", i, err)
		}
		loadgen.WaitDelivered(ctx, members, int64(i+1)*int64(n))
	}
	b.StopTimer()
	want := int64(b.N) * int64(n)
	if got := loadgen.Delivered(members); got != want {
		b.Fatalf("delivered %d of %d; dropped by the server: %s", got, want, loadgen.FormatDropped(loadgen.DroppedReasons(members)))
	}
	b.ReportMetric(float64(processCPU(b)-before)/float64(time.Microsecond)/float64(want), "cpu-µs/delivery")
}

// processCPU is the user and system CPU this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sendWindowed sends n messages from the first member, never more than
// benchWindow ahead of the slowest member, so that the benchmark measures
// throughput rather than who gets cut off.
func sendWindowed(ctx context.Context, b *testing.B, members []*loadgen.Member, n int) {
	for i := range n {
		if i%benchCheckEvery == 0 {
			waitBehind(ctx, b, members, int64(i-benchWindow))
		}
		if err := members[0].Say(ctx, "bench"); err != nil {
			b.Fatalf("send message %d: %v", i, err)
		}
	}
}

// waitBehind waits until every member has received at least want messages,
// failing if one was cut off.
func waitBehind(ctx context.Context, b *testing.B, members []*loadgen.Member, want int64) {
	for _, m := range members {
		for m.Received() < want {
			if m.Stopped() {
				b.Fatalf("a member was cut off: %s", loadgen.CloseReason(m.Err()))
			}
			select {
			case <-ctx.Done():
				b.Fatalf("members fell behind: %v", ctx.Err())
			case <-time.After(benchBehindPoll):
			}
		}
	}
}

// BenchmarkIdleConnectionMemory reports how much resident memory the server
// gains per idle WebSocket: b.N connections in rooms of 100 to a server
// process of its own, its RSS compared before and after. Run it with a fixed
// count, e.g. -bench IdleConnectionMemory -benchtime=5000x; the framework's
// first run of one connection measures nothing and returns at once.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	if b.N == 1 {
		return
	}
	if b.N > idleBenchMax {
		b.Skipf("%d connections exceed the server's MAX_CLIENTS (%d); use e.g. -benchtime=5000x", b.N, idleBenchMax)
	}
	if err := loadgen.RaiseFileLimit(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	r := loadgen.MeasureIdle(ctx, b, loadgen.StartServer(ctx, b), b.N)
	b.ReportMetric(0, "ns/op") // Time here is start-up and settling, not a cost per connection.
	b.ReportMetric(r.PerConn(), "B/conn")
}

// BenchmarkFanout measures the in-memory path of one message: stamping,
// encoding once, keeping it in history and queuing the same bytes for every
// member. Queues are drained by the benchmark itself, standing in for the
// writers, so no socket is involved; allocs/op shows the cost per message,
// which must not grow with the number of members.
func BenchmarkFanout(b *testing.B) {
	for _, members := range []int{100, 1000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			cfg, err := loadConfig(map[string]string{"MESSAGE_RATE": "0", "MAX_CONNS_PER_IP": "0", "JOIN_RATE": "0", "ROOM_CREATE_RATE": "0"})
			if err != nil {
				b.Fatal(err)
			}
			s := newServer(cfg, slog.New(slog.DiscardHandler))
			r := s.newRoom("bench", members, roomCipher{})
			for i := range members {
				// writing is set so that no writer goroutine starts: there is
				// no connection behind these clients.
				r.members = append(r.members, &client{srv: s, room: r, name: fmt.Sprintf("m%d", i), writing: true, countAt: -1})
			}
			done := make([][][]byte, members)
			drain := func() {
				for i, m := range r.members {
					done[i] = m.take(done[i])
				}
			}
			in := inboundMessage{Message: "hello, everyone in this room"}
			const every = 64 // well below SEND_BUFFER, so nobody is cut off
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				s.publish(r.members[0], in)
				if i%every == every-1 {
					drain()
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)*float64(members)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkInboundMessage measures the work each message costs the server
// besides its deliveries, which the load tool's floor does not do: decoding
// the client's frame, checking it, and encoding the stamped frame that every
// member is sent. In rooms of ten it is shared by only ten deliveries.
func BenchmarkInboundMessage(b *testing.B) {
	frame := []byte(`{"type":"chatMessage","payload":{"message":"hello, everyone in this room","clientId":"c-42"}}`)
	b.ReportAllocs()
	for i := range b.N {
		env, rejected := decodeEnvelope(frame)
		if rejected != nil {
			b.Fatal(rejected.Text)
		}
		in, rejected := parseChatMessage(env, 2000)
		if rejected != nil {
			b.Fatal(rejected.Text)
		}
		out := encodeFrame(typeChatMessage, chatMessagePayload{ID: uint64(i), Username: "alice", Message: in.Message, TS: 1765000000000, ClientID: in.ClientID})
		if len(out) == 0 {
			b.Fatal("empty frame")
		}
	}
}
