package replicate

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzBitmapHeader opens a replica's change bitmap whose file starts with
// whatever the fuzzer wrote: a torn or foreign header makes the bitmap
// "full" (the peer gets everything), never a panic or a trusted lie.
func FuzzBitmapHeader(f *testing.F) {
	f.Add([]byte(bitmapMagic + "\x01\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, head []byte) {
		path := filepath.Join(dir, "bm")
		if err := os.WriteFile(path, head, 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := openBitmap(path, 64<<20)
		if err != nil {
			return
		}
		defer b.close()
		if string(head[:min(len(head), 8)]) != bitmapMagic && !b.full {
			t.Fatal("a bitmap without its magic is trusted")
		}
		b.count()
	})
}
