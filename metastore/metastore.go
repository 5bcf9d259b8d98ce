package metastore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrNotFound is returned by Get for a missing key.
var ErrNotFound = errors.New("metastore: not found")

// KV is one entry of a listing.
type KV struct {
	Key   string
	Value []byte
}

// Store is the cluster metadata store.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, value []byte) error
	// PutIfAbsent stores value only if key does not exist; it reports
	// whether it did.
	PutIfAbsent(ctx context.Context, key string, value []byte) (bool, error)
	Delete(ctx context.Context, key string) error
	// List returns every entry whose key starts with prefix, in key order.
	List(ctx context.Context, prefix string) ([]KV, error)
}

// Watcher is a Store shared with other processes (etcd): fn is called for
// every change under prefix (value nil: deleted) until ctx ends.
type Watcher interface {
	Watch(ctx context.Context, prefix string, fn func(key string, value []byte))
}

// OpenPebble opens a pebble database with a block cache of its own.
func OpenPebble(dir string, log *slog.Logger) (*pebble.DB, error) {
	return OpenPebbleWith(dir, log, nil)
}

// OpenPebbleWith opens a pebble database with its logging routed to slog
// at error level only (pebble's default logger is chatty), sharing cache
// (nil: one of its own of DefaultCacheSize) with the node's other
// databases.
func OpenPebbleWith(dir string, log *slog.Logger, cache *pebble.Cache) (*pebble.DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open metadata db %s: %w", dir, err)
	}
	limit := &logLimiter{every: time.Minute, last: map[string]time.Time{}}
	opts := &pebble.Options{Logger: pebbleLogger{log}, FS: privateFS{vfs.Default}, EventListener: &pebble.EventListener{
		// Pebble's default stops the process; a corrupt block is an error
		// that reads of it return, and the node goes on with the rest.
		// Every read of a corrupt block reports it: one line per file a
		// minute is enough.
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			if n, ok := limit.allow(info.Path); ok {
				log.Error("metadata database: corrupt data on disk; reads of it fail", "file", info.Path, "err", info.Details.Error(), "reports_since_last_line", n)
			}
		},
		BackgroundError: func(err error) {
			if n, ok := limit.allow("background"); ok {
				log.Error("metadata database: background error", "err", err.Error(), "reports_since_last_line", n)
			}
		},
	}}
	tune(opts)
	if cache == nil {
		opts.Cache = pebble.NewCache(DefaultCacheSize)
		defer opts.Cache.Unref() // the database holds its own reference
	} else {
		opts.Cache = cache
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open metadata db %s: %w", dir, err)
	}
	return db, nil
}

// DefaultCacheSize is the block cache of a database that shares none.
// Pebble's own default (8 MiB) held too little of a busy device's index,
// filter and data blocks: a small object's GET read its record's block
// from the page cache and decompressed it again, and a PUT's lookup of a
// key it was about to create did the same.
const DefaultCacheSize = 32 << 20

// tune sets what the object path's lookups need: a bloom filter on every
// level (most PUTs look up a key that does not exist yet; the filter
// answers that without reading a data block).
func tune(opts *pebble.Options) {
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
}

// logLimiter lets one line per key through every interval and counts the
// rest.
type logLimiter struct {
	every      time.Duration
	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

// allow reports whether a line for key may be written now, and how many
// were held back since the last one.
func (l *logLimiter) allow(key string) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.suppressed == nil {
		l.suppressed = map[string]int{}
	}
	if t, ok := l.last[key]; ok && time.Since(t) < l.every {
		l.suppressed[key]++
		return 0, false
	}
	n := l.suppressed[key]
	l.last[key], l.suppressed[key] = time.Now(), 0
	return n, true
}

// privateFS makes the database's files readable by this user only: they
// hold object metadata and small objects' data.
type privateFS struct{ vfs.FS }

func (p privateFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.Create(name, c)
	if err == nil {
		os.Chmod(name, 0o600)
	}
	return f, err
}

func (p privateFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := p.FS.OpenReadWrite(name, c, opts...)
	if err == nil {
		os.Chmod(name, 0o600)
	}
	return f, err
}

func (p privateFS) Lock(name string) (io.Closer, error) {
	c, err := p.FS.Lock(name)
	if err == nil {
		os.Chmod(name, 0o600)
	}
	return c, err
}

func (p privateFS) MkdirAll(dir string, _ os.FileMode) error { return p.FS.MkdirAll(dir, 0o700) }

type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(string, ...any) {}
func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("pebble", "msg", fmt.Sprintf(format, args...))
}
func (l pebbleLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}

// Pebble is a Store in a key range of a pebble database.
type Pebble struct {
	db     DB
	prefix []byte
	mu     sync.Mutex // serialises PutIfAbsent
}

// NewPebble returns a store whose keys live under prefix in db.
func NewPebble(db DB, prefix string) *Pebble {
	return &Pebble{db: db, prefix: []byte(prefix)}
}

func (p *Pebble) key(k string) []byte {
	return append(append(make([]byte, 0, len(p.prefix)+len(k)), p.prefix...), k...)
}

func (p *Pebble) Get(_ context.Context, key string) ([]byte, error) {
	v, closer, err := p.db.Get(p.key(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("metastore get %q: %w", key, err)
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

func (p *Pebble) Put(_ context.Context, key string, value []byte) error {
	if err := p.db.Set(p.key(key), value, pebble.Sync); err != nil {
		return fmt.Errorf("metastore put %q: %w", key, err)
	}
	return nil
}

func (p *Pebble) PutIfAbsent(ctx context.Context, key string, value []byte) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.Get(ctx, key); err == nil {
		return false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	return true, p.Put(ctx, key, value)
}

func (p *Pebble) Delete(_ context.Context, key string) error {
	if err := p.db.Delete(p.key(key), pebble.Sync); err != nil {
		return fmt.Errorf("metastore delete %q: %w", key, err)
	}
	return nil
}

func (p *Pebble) List(_ context.Context, prefix string) ([]KV, error) {
	lower := p.key(prefix)
	var out []KV
	var err error
	if m, ok := p.db.(*Mirrored); ok {
		out, err = m.list(lower, PrefixEnd(lower))
	} else {
		out, err = listRange(p.db, lower, PrefixEnd(lower), 0)
	}
	if err != nil {
		return nil, fmt.Errorf("metastore list %q: %w", prefix, err)
	}
	for i := range out {
		out[i].Key = out[i].Key[len(p.prefix):]
	}
	return out, nil
}

// PrefixEnd returns the smallest key greater than every key with prefix p,
// or nil if there is none.
func PrefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
