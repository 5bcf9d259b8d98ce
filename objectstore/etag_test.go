package objectstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"sync"
	"testing"
)

// Uploads at once share the SIMD hasher's lanes; every ETag must still be
// its own body's MD5, whatever the sizes and whoever finishes first.
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
	if ts.etags.simd == nil {
		t.Fatal("no upload took a SIMD lane: the test did not test them")
	}
}

// A Content-MD5 that does not match fails on a SIMD lane as on the
// standard hasher, and the lane is given back.
func TestBadDigestOnASIMDLane(t *testing.T) {
	ts := newTestStore(t, 2, 2, 4, 64<<10)
	ts.etags.active.Add(simdFrom) // as if other uploads were running
	data := randBytes(300001)
	wrong := md5.Sum([]byte("other"))
	_, err := ts.PutObject(context.Background(), "bucket", "k", bytes.NewReader(data), int64(len(data)), PutOptions{ContentMD5: wrong[:]})
	if err != ErrBadDigest {
		t.Fatalf("put with a wrong Content-MD5: %v, want ErrBadDigest", err)
	}
	if got := ts.etags.active.Load(); got != simdFrom {
		t.Fatalf("%d streams counted after the put, want %d", got, simdFrom)
	}
}
