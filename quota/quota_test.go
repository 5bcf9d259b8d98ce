package quota

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/strata-storage/strata/iam"
	"github.com/strata-storage/strata/objectstore"
)

// fakeStore is buckets with a fixed usage each.
type fakeStore struct {
	buckets map[string]objectstore.BucketInfo
	usage   map[string]objectstore.Usage
}

func (f *fakeStore) ListBuckets(context.Context) []objectstore.BucketInfo {
	var out []objectstore.BucketInfo
	for _, b := range f.buckets {
		out = append(out, b)
	}
	return out
}

func (f *fakeStore) HeadBucket(_ context.Context, name string) (objectstore.BucketInfo, error) {
	b, ok := f.buckets[name]
	if !ok {
		return b, objectstore.ErrNoSuchBucket
	}
	return b, nil
}

func (f *fakeStore) ScanUsage(_ context.Context, name string) (objectstore.Usage, error) {
	return f.usage[name], nil
}

func (f *fakeStore) SetBucketConfig(_ context.Context, name, kind string, doc []byte) error {
	b := f.buckets[name]
	if b.Config == nil {
		b.Config = map[string]json.RawMessage{}
	}
	b.Config[kind] = doc
	f.buckets[name] = b
	return nil
}

type fakeUsers []iam.User

func (f fakeUsers) ListUsers(context.Context) ([]iam.User, error) { return f, nil }
func (f fakeUsers) SetUserQuota(context.Context, string, iam.Quota) (iam.User, error) {
	return iam.User{}, nil
}

func TestAdmitCountsAgainstBucketAndOwnerQuotas(t *testing.T) {
	ctx := context.Background()
	bq, _ := json.Marshal(iam.Quota{MaxBytes: 1000})
	st := &fakeStore{
		buckets: map[string]objectstore.BucketInfo{
			"capped": {Name: "capped", Owner: "ann", Config: map[string]json.RawMessage{Kind: bq}},
			"other":  {Name: "other", Owner: "ann"},
			"free":   {Name: "free", Owner: "bob"},
		},
		usage: map[string]objectstore.Usage{"capped": {Bytes: 900, Objects: 3}, "other": {Bytes: 100, Objects: 4}, "free": {Bytes: 1 << 40}},
	}
	tr := New(st, fakeUsers{{Name: "ann", Quota: iam.Quota{MaxObjects: 10}}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tr.Scan(ctx, false)
	steps := []struct {
		bucket         string
		bytes, objects int64
		ok             bool
	}{
		{"free", 1 << 40, 1000, true}, // no quota anywhere: anything goes
		{"capped", 100, 1, true},      // 1000 of 1000 bytes, ann at 8 of 10 objects
		{"capped", 1, 0, false},       // past the bucket's bytes
		{"other", 0, 2, true},         // ann at 10 objects
		{"other", 0, 1, false},        // past ann's objects, in another bucket
		{"missing", 1, 1, true},       // the write reports the bucket itself
	}
	for i, s := range steps {
		err := tr.Admit(ctx, s.bucket, s.bytes, s.objects)
		if (err == nil) != s.ok {
			t.Fatalf("step %d (%+v): %v", i, s, err)
		}
	}
	if !tr.Tracked(ctx, "capped") || !tr.Tracked(ctx, "other") || tr.Tracked(ctx, "free") {
		t.Fatal("tracked buckets")
	}
	// A delete frees room until the next scan counts again.
	tr.Release(ctx, "other", 0, 1)
	if err := tr.Admit(ctx, "other", 0, 1); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
	// A scan replaces what was admitted with what is there.
	st.usage["other"] = objectstore.Usage{Bytes: 100, Objects: 1}
	tr.Scan(ctx, false)
	if err := tr.Admit(ctx, "other", 0, 5); err != nil {
		t.Fatalf("after a scan: %v", err)
	}
}
