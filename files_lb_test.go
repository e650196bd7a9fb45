//go:build linux

// It starts server processes with loadclient_test.go's helpers, which are linux-only.

package main

import (
	"strings"
	"testing"
)

// Room paths as the README's load balancer configurations match them, and
// as they must be matched for files to reach their room's node: /ws/{room},
// /r/{room}, /r/{room}/files and /r/{room}/files/{id}.
const (
	haproxyRoomPath      = `path_reg ^/(ws|r)/[^/]+$`
	haproxyRoomFilesPath = `path_reg ^/(ws|r)/[^/]+(/files(/[^/]+)?)?$`
	caddyRoomPath        = `path_regexp room ^/(?:ws|r)/([^/]+)$`
	caddyRoomFilesPath   = `path_regexp room ^/(?:ws|r)/([^/]+)(?:/files(?:/[^/]+)?)?$`
)

// withFileRoutes sends the file paths of a room to its node in a README
// configuration that routes only /ws/{room} and /r/{room} there.
func withFileRoutes(cfg string) string {
	cfg = strings.Replace(cfg, haproxyRoomPath, haproxyRoomFilesPath, 1)
	return strings.Replace(cfg, caddyRoomPath, caddyRoomFilesPath, 1)
}

// lbShares joins a room through front twice and shares a multi-MiB file
// between them: upload and download reach the node that holds the room,
// which alone knows the uploader.
func lbShares(t *testing.T, front string) {
	t.Helper()
	for _, room := range []string{"lb-files-one", "lb-files-two", "lb-files-three"} {
		alice, w := joinThrough(t, front, room, "alice")
		bob, _ := joinThrough(t, front, room, "bob")
		alice.waitForCount(2)
		shareThrough(t, front, room, w.Files.Token, nil, bob, randomFile(3<<20))
		stillChats(t, alice, "after the file")
	}
}

func TestFilesBehindHAProxy(t *testing.T) {
	t.Parallel()
	var nodes []string
	for range readmeNodes {
		_, base := startNode(t)
		nodes = append(nodes, base)
	}
	_, front := startHAProxy(t, nodes)
	lbShares(t, front)
}

func TestFilesBehindCaddy(t *testing.T) {
	t.Parallel()
	var nodes []string
	for range readmeNodes {
		_, base := startNode(t)
		nodes = append(nodes, base)
	}
	lbShares(t, startCaddy(t, nodes))
}
