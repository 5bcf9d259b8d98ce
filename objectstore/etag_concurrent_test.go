package objectstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"sync"
	"testing"
)

// Uploads at once each get their own body's MD5 as the ETag, whatever the
// sizes, known or unknown, and whoever finishes first.
func TestConcurrentUploadsGetTheirOwnETags(t *testing.T) {
	ts := newTestStore(t, 2, 2, 4, 64<<10)
	sizes := []int{1001, 4095, 64 << 10, 64<<10 + 63, 200003, 1 << 20}
	var wg sync.WaitGroup
	errs := make(chan error, 24)
	for i := range 24 {
		wg.Go(func() {
			data := randBytes(sizes[i%len(sizes)] + i)
			key := fmt.Sprint("k", i)
			declared := int64(len(data))
			if i%3 == 0 {
				declared = -1
			}
			info, err := ts.PutObject(context.Background(), "bucket", key, bytes.NewReader(data), declared, PutOptions{})
			if err != nil {
				errs <- fmt.Errorf("%s: %w", key, err)
				return
			}
			if want := fmt.Sprintf("%x", md5.Sum(data)); info.ETag != want {
				errs <- fmt.Errorf("%s (%d bytes): ETag %s, want %s", key, len(data), info.ETag, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
