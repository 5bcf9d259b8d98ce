package objectstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore/shard"
)

// BucketInfo describes a bucket.
type BucketInfo struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// Owner is the user that created it ("": the root user).
	Owner string   `json:"owner,omitempty"`
	Tags  []Header `json:"tags,omitempty"`
	// Versioning is "", "Enabled" or "Suspended" (never back to "").
	Versioning string `json:"versioning,omitempty"`
	// Config holds per-bucket configuration documents the S3 layer owns
	// (e.g. "cors"), opaque here.
	Config map[string]json.RawMessage `json:"config,omitempty"`
}

const bucketPrefix = "bucket/"

// ValidBucketName applies S3's naming rules for general purpose buckets.
func ValidBucketName(name string) bool {
	if len(name) < 3 || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	if !alnum(name[0]) || !alnum(name[len(name)-1]) || strings.Contains(name, "..") || strings.Contains(name, "-.") || strings.Contains(name, ".-") {
		return false
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return false
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	for _, sfx := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3"} {
		if strings.HasSuffix(name, sfx) {
			return false
		}
	}
	return true
}

func (s *Store) loadBuckets(ctx context.Context) error {
	kvs, err := s.meta.List(ctx, bucketPrefix)
	if err != nil {
		return fmt.Errorf("load buckets: %w", err)
	}
	s.buckets = map[string]BucketInfo{}
	for _, kv := range kvs {
		var b BucketInfo
		if err := json.Unmarshal(kv.Value, &b); err != nil {
			return fmt.Errorf("load bucket %s: %w", kv.Key, err)
		}
		s.buckets[b.Name] = b
	}
	return nil
}

// CreateBucket makes a bucket.
func (s *Store) CreateBucket(ctx context.Context, name string) error {
	return s.CreateBucketFor(ctx, name, "")
}

// CreateBucketFor creates a bucket owned by user ("": the root user).
func (s *Store) CreateBucketFor(ctx context.Context, name, user string) error {
	if !ValidBucketName(name) {
		return ErrInvalidBucketName
	}
	s.bucketsMu.Lock()
	defer s.bucketsMu.Unlock()
	if _, ok := s.buckets[name]; ok {
		return ErrBucketExists
	}
	b := BucketInfo{Name: name, Created: time.Now().UTC().Truncate(time.Millisecond), Owner: user}
	v, _ := json.Marshal(b)
	ok, err := s.meta.PutIfAbsent(ctx, bucketPrefix+name, v)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	if !ok {
		return ErrBucketExists
	}
	s.buckets[name] = b
	return nil
}

// HeadBucket returns a bucket's info. With a shared metadata store a
// bucket this gateway has not heard of yet is read through, so a bucket
// created on another gateway is usable here at once.
func (s *Store) HeadBucket(ctx context.Context, name string) (BucketInfo, error) {
	s.bucketsMu.RLock()
	b, ok := s.buckets[name]
	s.bucketsMu.RUnlock()
	if ok {
		return b, nil
	}
	if _, shared := s.meta.(metastore.Watcher); !shared || !ValidBucketName(name) {
		return BucketInfo{}, ErrNoSuchBucket
	}
	v, err := s.meta.Get(ctx, bucketPrefix+name)
	if err != nil {
		return BucketInfo{}, ErrNoSuchBucket
	}
	if err := json.Unmarshal(v, &b); err != nil {
		return BucketInfo{}, fmt.Errorf("bucket %s: %w", name, err)
	}
	s.bucketsMu.Lock()
	s.buckets[name] = b
	s.bucketsMu.Unlock()
	return b, nil
}

// followBuckets keeps the bucket cache in step with other gateways.
func (s *Store) followBuckets(ctx context.Context, w metastore.Watcher) {
	w.Watch(ctx, bucketPrefix, func(key string, value []byte) {
		name := strings.TrimPrefix(key, bucketPrefix)
		s.bucketsMu.Lock()
		defer s.bucketsMu.Unlock()
		if value == nil {
			delete(s.buckets, name)
			return
		}
		var b BucketInfo
		if err := json.Unmarshal(value, &b); err != nil {
			s.log.Warn("bucket update unreadable", "bucket", name, "err", err)
			return
		}
		s.buckets[name] = b
	})
}

// ListBuckets returns every bucket, sorted by name.
func (s *Store) ListBuckets(context.Context) []BucketInfo {
	s.bucketsMu.RLock()
	out := make([]BucketInfo, 0, len(s.buckets))
	for _, b := range s.buckets {
		out = append(out, b)
	}
	s.bucketsMu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SetBucketTags replaces a bucket's tags (nil removes them).
func (s *Store) SetBucketTags(ctx context.Context, name string, tags []Header) error {
	s.bucketsMu.Lock()
	defer s.bucketsMu.Unlock()
	b, ok := s.buckets[name]
	if !ok {
		return ErrNoSuchBucket
	}
	b.Tags = tags
	v, _ := json.Marshal(b)
	if err := s.meta.Put(ctx, bucketPrefix+name, v); err != nil {
		return fmt.Errorf("tag bucket %s: %w", name, err)
	}
	s.buckets[name] = b
	return nil
}

// SetBucketVersioning turns versioning on ("Enabled") or pauses it
// ("Suspended"); a bucket never returns to unversioned.
func (s *Store) SetBucketVersioning(ctx context.Context, name, status string) error {
	if status != "Enabled" && status != "Suspended" {
		return fmt.Errorf("versioning status %q", status)
	}
	s.bucketsMu.Lock()
	defer s.bucketsMu.Unlock()
	b, ok := s.buckets[name]
	if !ok {
		return ErrNoSuchBucket
	}
	b.Versioning = status
	v, _ := json.Marshal(b)
	if err := s.meta.Put(ctx, bucketPrefix+name, v); err != nil {
		return fmt.Errorf("set versioning of %s: %w", name, err)
	}
	s.buckets[name] = b
	return nil
}

// versioning returns a bucket's versioning state.
func (s *Store) versioning(bucket string) string {
	s.bucketsMu.RLock()
	defer s.bucketsMu.RUnlock()
	return s.buckets[bucket].Versioning
}

// SetBucketConfig stores (or, with nil, removes) a bucket configuration
// document of the given kind.
func (s *Store) SetBucketConfig(ctx context.Context, name, kind string, doc []byte) error {
	s.bucketsMu.Lock()
	defer s.bucketsMu.Unlock()
	b, ok := s.buckets[name]
	if !ok {
		return ErrNoSuchBucket
	}
	cfg := map[string]json.RawMessage{}
	for k, v := range b.Config {
		cfg[k] = v
	}
	if doc == nil {
		delete(cfg, kind)
	} else {
		cfg[kind] = append(json.RawMessage(nil), doc...)
	}
	b.Config = cfg
	v, _ := json.Marshal(b)
	if err := s.meta.Put(ctx, bucketPrefix+name, v); err != nil {
		return fmt.Errorf("configure bucket %s: %w", name, err)
	}
	s.buckets[name] = b
	return nil
}

// DeleteBucket removes an empty bucket, and with it any record fragments
// (below quorum) that crashed writes left in it.
func (s *Store) DeleteBucket(ctx context.Context, name string) error {
	ctx = shard.UseReserve(ctx)
	if _, err := s.HeadBucket(ctx, name); err != nil {
		return err
	}
	res, err := s.ListObjectVersions(ctx, name, VersionListOptions{MaxKeys: 1})
	if err != nil {
		return err
	}
	if len(res.Versions) > 0 { // objects, old versions and delete markers all count
		return ErrBucketNotEmpty
	}
	// Unfinished uploads go with the bucket (as in RGW and MinIO): they
	// are not objects, and a client cannot always find and abort them.
	for {
		uploads, err := s.ListUploads(ctx, name, 1000)
		if err != nil {
			return err
		}
		if len(uploads) == 0 {
			break
		}
		for _, u := range uploads {
			if err := s.AbortUpload(ctx, name, u.Key, u.UploadID); err != nil && !errors.Is(err, ErrNoSuchUpload) {
				return fmt.Errorf("delete bucket %s: abort upload of %s: %w", name, u.Key, err)
			}
		}
	}
	s.bucketsMu.Lock()
	defer s.bucketsMu.Unlock()
	if err := s.meta.Delete(ctx, bucketPrefix+name); err != nil && !errors.Is(err, metastore.ErrNotFound) {
		return fmt.Errorf("delete bucket %s: %w", name, err)
	}
	delete(s.buckets, name)
	for _, lower := range [][]byte{objectKey(name, ""), noncurrentPrefix(name, "")[:len(name)+2]} {
		for _, d := range s.allDevices() {
			if d != nil {
				if err := d.DeleteRange(ctx, lower, append(lower[:len(lower)-1:len(lower)-1], 1)); err != nil {
					s.log.Warn("clear deleted bucket's records", "bucket", name, "device", d.Name(), "err", err)
				}
			}
		}
	}
	return nil
}

// PurgeBucket deletes every object version, delete marker and unfinished
// upload of a bucket, then the bucket itself (what a claim with the Delete
// reclaim policy does when it goes).
func (s *Store) PurgeBucket(ctx context.Context, name string) error {
	ctx = shard.UseReserve(ctx)
	if _, err := s.HeadBucket(ctx, name); err != nil {
		return err
	}
	for {
		ups, err := s.ListUploads(ctx, name, 1000)
		if err != nil {
			return err
		}
		for _, u := range ups {
			if err := s.AbortUpload(ctx, name, u.Key, u.UploadID); err != nil && !errors.Is(err, ErrNoSuchUpload) {
				return fmt.Errorf("purge %s: abort upload of %s: %w", name, u.Key, err)
			}
		}
		if len(ups) < 1000 {
			break
		}
	}
	for {
		page, err := s.ListObjectVersions(ctx, name, VersionListOptions{MaxKeys: 1000})
		if err != nil {
			return err
		}
		for _, v := range page.Versions {
			vid := v.VersionID
			if vid == "" {
				vid = "null"
			}
			if _, err := s.DeleteObject(ctx, name, v.Key, vid); err != nil {
				return fmt.Errorf("purge %s: delete %s (version %s): %w", name, v.Key, vid, err)
			}
		}
		if !page.Truncated {
			break
		}
	}
	return s.DeleteBucket(ctx, name)
}
