package objectstore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
)

// ReadCheck is what reading every object back found: a failure drill's
// proof that data stayed readable.
type ReadCheck struct {
	Objects    int64    `json:"objects"`
	Bytes      int64    `json:"bytes"`
	Unreadable int64    `json:"unreadable"`
	Problems   []string `json:"problems,omitempty"` // the first few
}

// CheckReadable reads the current version of every object of every bucket
// in full, with workers readers at once. Every block is verified as it is
// read (reconstructed where shards are missing); a single-part object's
// body must also match its ETag (the MD5 of the body).
func (s *Store) CheckReadable(ctx context.Context, workers int) (ReadCheck, error) {
	var rc ReadCheck
	var mu sync.Mutex
	keys := make(chan [2]string, 64)
	var wg sync.WaitGroup
	for w := 0; w < max(workers, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for bk := range keys {
				n, err := s.readWhole(ctx, bk[0], bk[1])
				mu.Lock()
				rc.Objects++
				rc.Bytes += n
				if err != nil {
					rc.Unreadable++
					if len(rc.Problems) < 20 {
						rc.Problems = append(rc.Problems, fmt.Sprintf("%s/%s: %v", bk[0], bk[1], err))
					}
				}
				mu.Unlock()
			}
		}()
	}
	var listErr error
	for _, b := range s.ListBuckets(ctx) {
		after := ""
		for listErr == nil {
			page, err := s.ListObjects(ctx, b.Name, ListOptions{After: after, MaxKeys: 1000})
			if err != nil {
				listErr = fmt.Errorf("list %s: %w", b.Name, err)
				break
			}
			for _, o := range page.Objects {
				keys <- [2]string{b.Name, o.Key}
			}
			if !page.Truncated {
				break
			}
			after = page.Next
		}
	}
	close(keys)
	wg.Wait()
	return rc, listErr
}

func (s *Store) readWhole(ctx context.Context, bucket, key string) (int64, error) {
	o, err := s.GetObject(ctx, bucket, key)
	if err != nil {
		return 0, err
	}
	defer o.Close()
	r := o.Reader(ctx, 0, o.Info.Size)
	defer r.Close()
	h := md5.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return n, err
	}
	if n != o.Info.Size {
		return n, fmt.Errorf("read %d of %d bytes", n, o.Info.Size)
	}
	if !strings.Contains(o.Info.ETag, "-") && hex.EncodeToString(h.Sum(nil)) != o.Info.ETag {
		return n, fmt.Errorf("body does not match its ETag")
	}
	return n, nil
}
