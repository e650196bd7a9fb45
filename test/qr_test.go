package test

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"os/exec"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// static/qr.js is the page's own QR encoder. This test runs it in Node.js
// on texts of many lengths, which take it through many versions, block
// layouts and masks, and reads every symbol back with an independent
// decoder, as a phone's camera would.

// qrTexts are the texts encoded: room links of both kinds, and lengths that
// fill versions 1 to 27 or so, in ASCII and in multi-byte UTF-8.
func qrTexts() []string {
	texts := []string{
		"http://127.0.0.1:8080/r/k3v7q2mxa9c4tdzp",
		"https://hallway.example/r/k3v7q2mxa9c4tdzp#k=PfMuyE1if2OX8kk-1ZA8AIJH5h2finbJqd1BuzuuQi8",
		"a",
		"héllo, wörld → 你好",
	}
	for n := 10; n <= 1200; n = n*5/4 + 7 {
		texts = append(texts, strings.Repeat("0123456789abcdefghij", n/20+1)[:n])
	}
	return texts
}

func TestQREncoderDecodes(t *testing.T) {
	node := nodeExecPath(t)
	texts := qrTexts()
	input, _ := json.Marshal(texts)
	script := `import { encode } from './static/qr.js';
const texts = JSON.parse(process.argv[1]);
console.log(JSON.stringify(texts.map((t) => encode(t).map((row) => row.map(Number).join('')))));`
	cmd := exec.Command(node, "--input-type=module", "-e", script, string(input))
	cmd.Dir = repoRoot // the script imports ./static/qr.js
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var symbols [][]string
	if err := json.Unmarshal(out, &symbols); err != nil {
		t.Fatalf("node printed %.200q: %v", out, err)
	}
	if len(symbols) != len(texts) {
		t.Fatalf("node encoded %d texts, want %d", len(symbols), len(texts))
	}
	sizes := map[int]bool{}
	for i, rows := range symbols {
		sizes[len(rows)] = true
		got, err := decodeQR(rows)
		if err != nil {
			t.Errorf("text of %d bytes (%d modules): %v", len(texts[i]), len(rows), err)
			continue
		}
		if got != texts[i] {
			t.Errorf("text of %d bytes decodes as %.60q, want %.60q", len(texts[i]), got, texts[i])
		}
	}
	if len(sizes) < 15 {
		t.Errorf("the texts took only %d versions; the test should cover more", len(sizes))
	}
}

// decodeQR draws rows ("0" light, "1" dark) with a quiet zone, 4 pixels a
// module, and decodes the picture.
func decodeQR(rows []string) (string, error) {
	const px, quiet = 4, 4
	n := len(rows)
	img := image.NewGray(image.Rect(0, 0, (n+2*quiet)*px, (n+2*quiet)*px))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	for y, row := range rows {
		if len(row) != n {
			return "", fmt.Errorf("row %d has %d modules, want %d", y, len(row), n)
		}
		for x, c := range row {
			if c != '1' {
				continue
			}
			for dy := range px {
				for dx := range px {
					img.SetGray((x+quiet)*px+dx, (y+quiet)*px+dy, color.Gray{})
				}
			}
		}
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}
