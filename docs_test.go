// The documentation's own tests: every relative link and anchor in README.md
// and docs/*.md resolves, and the README's map lists every page. They read
// only the Markdown files; absolute http(s) links are not fetched.

package main

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// docPages are the Markdown pages whose links are checked: README.md and docs/*.md.
func docPages(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"README.md"}, pages...)
}

// markdownLink matches an inline link or image, its text possibly spread over
// lines, and captures its target (an optional "title" is left out).
var markdownLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*([^)\s]+)(?:\s+"[^"]*")?\s*\)`)

// codeSpan matches inline code, whose brackets are not links.
var codeSpan = regexp.MustCompile("`[^`\n]*`")

// atxHeading matches a "# Heading" line and captures its text.
var atxHeading = regexp.MustCompile(`^ {0,3}#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$`)

// proseLines is the page's text with fenced code blocks blanked out, so that
// a "# comment" in a shell or HAProxy block is neither a heading nor a link.
func proseLines(text string) []string {
	lines := strings.Split(text, "\n")
	fence := ""
	for i, line := range lines {
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case fence == "" && (strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")):
			fence = trimmed[:3]
			lines[i] = ""
		case fence != "":
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			lines[i] = ""
		}
	}
	return lines
}

// headingAnchor is the anchor GitHub gives a heading: its text lower-cased,
// links reduced to their text, punctuation other than - and _ dropped, and
// spaces turned into hyphens.
func headingAnchor(heading string) string {
	heading = markdownLink.ReplaceAllStringFunc(heading, func(l string) string {
		return l[strings.Index(l, "[")+1 : strings.Index(l, "](")]
	})
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// pageAnchors lists the anchors of a page's headings; a repeated heading gets
// -1, -2 and so on after the first, as GitHub numbers them.
func pageAnchors(text string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, line := range proseLines(text) {
		m := atxHeading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		a := headingAnchor(m[1])
		if n := seen[a]; n > 0 {
			anchors[a+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[a] = true
		}
		seen[a]++
	}
	return anchors
}

// pageLinks are the targets of a page's links outside code.
func pageLinks(text string) []string {
	prose := codeSpan.ReplaceAllString(strings.Join(proseLines(text), "\n"), "")
	var links []string
	for _, m := range markdownLink.FindAllStringSubmatch(prose, -1) {
		links = append(links, m[1])
	}
	return links
}

// TestDocsLinksResolve follows every relative link in README.md and
// docs/*.md: the file it names must exist, and its #anchor must be a heading
// of that page. Absolute http(s) links are left alone.
func TestDocsLinksResolve(t *testing.T) {
	anchors := map[string]map[string]bool{}
	anchorsOf := func(page string) (map[string]bool, error) {
		if a, ok := anchors[page]; ok {
			return a, nil
		}
		text, err := os.ReadFile(page)
		if err != nil {
			return nil, err
		}
		anchors[page] = pageAnchors(string(text))
		return anchors[page], nil
	}
	checked := 0
	for _, page := range docPages(t) {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, link := range pageLinks(string(text)) {
			if strings.HasPrefix(link, "http://") || strings.HasPrefix(link, "https://") {
				continue
			}
			checked++
			path, frag, _ := strings.Cut(link, "#")
			target := page
			if path != "" {
				p, err := url.PathUnescape(path)
				if err != nil {
					t.Errorf("%s: link %q: %v", page, link, err)
					continue
				}
				target = filepath.Join(filepath.Dir(page), filepath.FromSlash(p))
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s: link %q: no such file %s", page, link, target)
					continue
				}
			}
			if frag == "" {
				continue
			}
			if !strings.HasSuffix(target, ".md") {
				t.Errorf("%s: link %q: an anchor into %s, which is not a Markdown page", page, link, target)
				continue
			}
			a, err := anchorsOf(target)
			if err != nil {
				t.Errorf("%s: link %q: %v", page, link, err)
			} else if !a[frag] {
				t.Errorf("%s: link %q: %s has no heading with anchor #%s", page, link, target, frag)
			}
		}
	}
	if checked == 0 {
		t.Fatal("found no relative links to check")
	}
}

// TestDocsMapListsEveryPage requires the README to link to every page in
// docs/, so no page is left where nobody can find it.
func TestDocsMapListsEveryPage(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	linked := map[string]bool{}
	for _, link := range pageLinks(string(readme)) {
		path, _, _ := strings.Cut(link, "#")
		linked[filepath.Clean(path)] = true
	}
	for _, page := range docPages(t)[1:] {
		if !linked[page] {
			t.Errorf("README.md does not link to %s", page)
		}
	}
}

// TestDocsHeadingAnchor checks the anchor rules against headings these pages use.
func TestDocsHeadingAnchor(t *testing.T) {
	for heading, want := range map[string]string{
		"End-to-end encrypted rooms":                        "end-to-end-encrypted-rooms",
		"Batched frames (`?batch=1`)":                       "batched-frames-batch1",
		"Run as WebAssembly (WASI)":                         "run-as-webassembly-wasi",
		"Elsewhere: several servers behind a load balancer": "elsewhere-several-servers-behind-a-load-balancer",
		"A [linked](other.md) heading_name":                 "a-linked-heading_name",
	} {
		if got := headingAnchor(heading); got != want {
			t.Errorf("headingAnchor(%q) = %q, want %q", heading, got, want)
		}
	}
	a := pageAnchors("# Tests\n\n```sh\n# not a heading\n```\n\n## Tests\n## Tests\n")
	for _, want := range []string{"tests", "tests-1", "tests-2"} {
		if !a[want] {
			t.Errorf("pageAnchors lacks #%s: %v", want, a)
		}
	}
	if a["not-a-heading"] {
		t.Error("a comment inside a code block counted as a heading")
	}
}
