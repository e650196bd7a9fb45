package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// These benchmarks measure shared files through the real handler on
// loopback: uploads, downloads of one stored file, and the heap a stored
// file takes beyond its bytes. The file limits and refusals are tested in
// files_test.go.

// benchFileServer starts a server without upload rate limits, and a member
// of room "bench" whose upload token it returns.
func benchFileServer(b *testing.B) (base, token string) {
	b.Helper()
	cfg, err := loadConfig(map[string]string{"FILE_UPLOAD_RATE": "0", "FILE_MAX_BYTES": "16MiB"})
	if err != nil {
		b.Fatal(err)
	}
	srv := newServer(cfg, slog.New(slog.DiscardHandler))
	hs := httptest.NewServer(srv.handler())
	b.Cleanup(hs.Close)
	conn, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws/bench?username=b", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.CloseNow() })
	_, data, err := conn.Read(context.Background())
	var e envelope
	var w welcomePayload
	if err != nil || json.Unmarshal(data, &e) != nil || json.Unmarshal(e.Payload, &w) != nil || w.Files == nil {
		b.Fatalf("no welcome: %v", err)
	}
	go func() { // The member reads its file frames.
		for {
			if _, _, err := conn.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	return hs.URL, w.Files.Token
}

// benchUpload posts data and returns the file id.
func benchUpload(b *testing.B, base, token string, data []byte) string {
	req, _ := http.NewRequest(http.MethodPost, base+"/r/bench/files", bytes.NewReader(data))
	req.Header = http.Header{headerUploadToken: {token}, headerFileName: {"b.bin"}, "Content-Type": {"application/octet-stream"}}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var p filePayload
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&p) != nil {
		b.Fatalf("upload: %d", resp.StatusCode)
	}
	return p.File
}

// BenchmarkFileUpload measures uploads through the real handler on
// loopback, client included; MB/s is the file bytes stored.
func BenchmarkFileUpload(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20, 8 << 20} {
		b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) {
			base, token := benchFileServer(b)
			data := randomFile(size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				benchUpload(b, base, token, data)
			}
		})
	}
}

// BenchmarkFileDownload measures downloads of one stored file.
func BenchmarkFileDownload(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20, 8 << 20} {
		b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) {
			base, token := benchFileServer(b)
			id := benchUpload(b, base, token, randomFile(size))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				resp, err := http.Get(base + "/r/bench/files/" + id)
				if err != nil {
					b.Fatal(err)
				}
				if n, _ := io.Copy(io.Discard, resp.Body); n != int64(size) {
					b.Fatalf("downloaded %d bytes, want %d", n, size)
				}
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkFileMemory stores 32 files of 1 MiB and reports the heap they
// take, per MiB stored: the cost of a file beyond its bytes (chunks,
// bookkeeping, history frame).
func BenchmarkFileMemory(b *testing.B) {
	const files, size = 32, 1 << 20
	data := randomFile(size)
	var perMiB float64
	for range b.N {
		base, token := benchFileServer(b)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range files {
			benchUpload(b, base, token, data)
		}
		http.DefaultClient.CloseIdleConnections()
		runtime.GC()
		runtime.ReadMemStats(&after)
		perMiB = float64(after.HeapAlloc-before.HeapAlloc) / files
	}
	b.ReportMetric(perMiB, "heap-bytes/stored-MiB")
}
