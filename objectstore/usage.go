package objectstore

import (
	"context"
	"errors"
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

// ScanUsage counts what a bucket stores, by listing it: every object
// version (current and noncurrent; delete markers hold no data and are
// not counted) with its bytes, and the bytes of unfinished uploads' parts.
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
			break
		}
		opts.KeyMarker, opts.VersionIDMarker = page.NextKeyMarker, page.NextVersionIDMarker
	}
	// Parts of unfinished uploads hold data too (they become one object,
	// counted above, when the upload completes).
	ups, err := s.ListUploads(ctx, bucket, 1<<20)
	if err != nil {
		return u, fmt.Errorf("usage of %s: %w", bucket, err)
	}
	for _, up := range ups {
		marker := 0
		for {
			parts, more, err := s.ListParts(ctx, bucket, up.Key, up.UploadID, marker, 1000)
			if errors.Is(err, ErrNoSuchUpload) {
				break // completed or aborted meanwhile
			}
			if err != nil {
				return u, fmt.Errorf("usage of %s: %w", bucket, err)
			}
			for _, p := range parts {
				u.Bytes += p.Size
				marker = p.Number
			}
			if !more || len(parts) == 0 {
				break
			}
		}
	}
	return u, nil
}
