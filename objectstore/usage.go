package objectstore

import (
	"context"
	"fmt"
	"time"
)

// Usage is what a bucket holds: its current objects and their bytes.
type Usage struct {
	Bytes   int64     `json:"bytes"`
	Objects int64     `json:"objects"`
	Scanned time.Time `json:"scanned"`
}

// Held returns the bytes and objects (for quota checks).
func (u Usage) Held() (int64, int64) { return u.Bytes, u.Objects }

// ScanUsage counts what a bucket stores: every object version (current
// and noncurrent; delete markers hold no data and are not counted) and
// its bytes, by listing it.
func (s *Store) ScanUsage(ctx context.Context, bucket string) (Usage, error) {
	u := Usage{Scanned: time.Now().UTC()}
	opts := VersionListOptions{MaxKeys: 1000}
	for {
		page, err := s.ListObjectVersions(ctx, bucket, opts)
		if err != nil {
			return u, fmt.Errorf("usage of %s: %w", bucket, err)
		}
		for _, v := range page.Versions {
			if !v.DeleteMarker {
				u.Objects++
				u.Bytes += v.Size
			}
		}
		if !page.Truncated {
			return u, nil
		}
		opts.KeyMarker, opts.VersionIDMarker = page.NextKeyMarker, page.NextVersionIDMarker
	}
}
