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

// ScanUsage counts a bucket's current objects and bytes by listing it.
func (s *Store) ScanUsage(ctx context.Context, bucket string) (Usage, error) {
	u := Usage{Scanned: time.Now().UTC()}
	after := ""
	for {
		page, err := s.ListObjects(ctx, bucket, ListOptions{After: after, MaxKeys: 1000})
		if err != nil {
			return u, fmt.Errorf("usage of %s: %w", bucket, err)
		}
		for _, o := range page.Objects {
			u.Objects++
			u.Bytes += o.Size
		}
		if !page.Truncated {
			return u, nil
		}
		after = page.Next
	}
}
