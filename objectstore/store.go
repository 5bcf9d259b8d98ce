package objectstore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/reedsolomon"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore/shard"
	"github.com/strata-storage/strata/ring"
)

// Device is one shard store as the object layer sees it: a local
// shard.Store, or a device of another node reached over inter-node RPC.
type Device interface {
	Name() string
	// NewWriter opens a shard stream; ctx ends a remote stream (the
	// request it serves is gone) and every I/O call below takes the
	// context of the request or worker it serves.
	NewWriter(ctx context.Context, sizeHint int64) shard.StreamWriter
	// ReadBlock reads and verifies one block; ctx ends a remote read when
	// the request it serves is gone.
	ReadBlock(ctx context.Context, loc *shard.Locator, i int, buf []byte) ([]byte, error)
	// Holds reports whether the locator is of the device's current volume
	// (false: the volume was replaced and the shard is gone).
	Holds(loc *shard.Locator) bool
	Free(ctx context.Context, loc shard.Locator) error
	Commit(ctx context.Context, ops ...shard.Op) error
	Get(ctx context.Context, key []byte) ([]byte, error)
	Iter(ctx context.Context, lower, upper []byte) (shard.RecordIter, error)
	DeleteRange(ctx context.Context, lower, upper []byte) error
	// RebuildFreeSpace recomputes reusable space from every locator the
	// walk yields (all records of this device).
	RebuildFreeSpace(walk func(yield func(*shard.Locator)) error) error
	// Remote says the device is reached over the network: its records
	// are read in parallel and a read quorum need not wait for all of it.
	Remote() bool
	// Online says whether the device can be reached now (as far as this
	// node knows).
	Online() bool
}

// Config tunes the object layer.
type Config struct {
	BlockSize   int   // bytes of object data per erasure-coded block
	InlineLimit int64 // objects up to this size live inside their records
	Logger      *slog.Logger
	Registry    prometheus.Registerer
	// Multipart uploads initiated longer ago than StaleUploadAge are
	// aborted by a sweep every SweepInterval (0 disables it).
	StaleUploadAge time.Duration
	SweepInterval  time.Duration
	// HedgeDelay: a block read whose data shards have not all arrived
	// after this long also reads parity and uses the first k (0: never).
	HedgeDelay time.Duration
	// DeviceUnreadable, when set, is told of each device whose records
	// could not all be read at start; the store leaves such a device out
	// (the caller takes it offline). Unset, the device serves what it can.
	DeviceUnreadable func(device string, err error)
	// Hints is the node-local, durable queue of keys whose write missed a
	// device (nil: none are kept; reads still heal).
	Hints metastore.Store
	// Locker serialises writes of one key across gateways (a cluster);
	// nil: this process is the only gateway and a local lock suffices.
	Locker Locker
}

// Locker is a lock service shared by every gateway.
type Locker interface {
	Lock(ctx context.Context, name string) (unlock func(), err error)
}

// DefaultConfig is the layout of DESIGN.md.
func DefaultConfig() Config {
	return Config{BlockSize: 1 << 20, InlineLimit: 128 << 10, StaleUploadAge: 7 * 24 * time.Hour, SweepInterval: time.Hour, HedgeDelay: 150 * time.Millisecond}
}

// Limits of S3.
const (
	MaxObjectSize  = 5 << 40 // 5 TiB
	MaxPutSize     = 5 << 30 // a single PUT or part
	MinPartSize    = 5 << 20
	MaxPartNumber  = 10000
	MaxKeyLength   = 1024
	lockStripes    = 256
	prefetchBlocks = 2
)

// Store is the object layer.
type Store struct {
	cfg     Config
	log     *slog.Logger
	ring    *ring.Ring // the first ring: its K and M never change
	current atomic.Pointer[layout]
	meta    metastore.Store
	enc     reedsolomon.Encoder
	jobs    sync.Pool // *blockJob
	blocks  sync.Pool // *[]byte of BlockSize: decoded blocks on the read path
	shards  sync.Pool // *[]byte of HeaderSize+shard length: shard reads
	metrics *metrics

	seed  maphash.Seed
	locks [lockStripes]sync.Mutex // serialise commits to one key

	bucketsMu sync.RWMutex
	buckets   map[string]BucketInfo

	heal *healer
	// damaged: versions a read or the scrub found lost (HEAD says so too)
	damaged damagedSet
	sweep   *sweeper
	bg      sync.WaitGroup // background loops other than the healer

	readersMu sync.Mutex
	readers   map[[16]byte]int      // write id -> open readers
	deferred  map[[16]byte][]func() // frees waiting for those readers
}

type metrics struct {
	degradedReads   prometheus.Counter
	reconstructions prometheus.Counter
	shardFailures   *prometheus.CounterVec
	hedgedReads     prometheus.Counter
	hints           *prometheus.CounterVec
}

// layout is the placement in force: a ring and the devices serving its
// device list (devices[i] serves ring.Devices[i]; nil = offline).
type layout struct {
	ring    *ring.Ring
	devices []Device
	// sources: older rings whose placement may still hold records while
	// a rebalance moves them (move.go), oldest first.
	sources []*layout
}

// SetRing switches placement to a new ring (a rebalance or a device edit);
// devices[i] serves r.Devices[i]. Operations already under way finish on
// the ring they started with. The layout (K+M) cannot change.
func (s *Store) SetRing(r *ring.Ring, devices []Device) error {
	if len(devices) != len(r.Devices) {
		return fmt.Errorf("objectstore: %d devices for a ring of %d", len(devices), len(r.Devices))
	}
	if r.K != s.ring.K || r.M != s.ring.M || !r.Built() {
		return fmt.Errorf("objectstore: ring layout %d+%d cannot replace %d+%d", r.K, r.M, s.ring.K, s.ring.M)
	}
	s.current.Store(&layout{ring: r, devices: devices, sources: s.current.Load().sources})
	return nil
}

// Placements returns the ring in force and the source rings of a
// rebalance under way, with the devices this store uses for them.
func (s *Store) Placements() (Placement, []Placement) {
	l := s.current.Load()
	var src []Placement
	for _, o := range l.sources {
		src = append(src, Placement{Ring: o.ring, Devices: o.devices})
	}
	return Placement{Ring: l.ring, Devices: l.devices}, src
}

// allDevices returns the devices of the ring in force.
func (s *Store) allDevices() []Device { return s.current.Load().devices }

// New returns a store over the ring's devices. devices[i] serves
// r.Devices[i]; a nil entry is an offline device.
func New(cfg Config, r *ring.Ring, devices []Device, meta metastore.Store) (*Store, error) {
	if len(devices) != len(r.Devices) {
		return nil, fmt.Errorf("objectstore: %d devices for a ring of %d", len(devices), len(r.Devices))
	}
	if cfg.BlockSize <= 0 {
		cfg.BlockSize = DefaultConfig().BlockSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	enc, err := reedsolomon.New(r.K, max(r.M, 1))
	if err != nil {
		return nil, fmt.Errorf("objectstore: erasure coder %d+%d: %w", r.K, r.M, err)
	}
	s := &Store{
		cfg: cfg, log: cfg.Logger, ring: r, meta: meta, enc: enc,
		seed: maphash.MakeSeed(), readers: map[[16]byte]int{}, deferred: map[[16]byte][]func(){},
	}
	s.current.Store(&layout{ring: r, devices: devices})
	s.metrics = &metrics{
		degradedReads:   prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_object_degraded_reads_total", Help: "Object blocks read with at least one missing or corrupt shard."}),
		reconstructions: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_object_reconstructed_shards_total", Help: "Shards rebuilt by erasure decoding during reads."}),
		shardFailures:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_object_shard_failures_total", Help: "Shard reads or writes that failed, by operation."}, []string{"op"}),
		hints:           prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_repair_hints_total", Help: "Keys queued for repair because a write missed a device (queued), and hints completed (replayed)."}, []string{"event"}),
		hedgedReads:     prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_object_hedged_reads_total", Help: "Block reads that also asked parity devices because a data shard was slow."}),
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(s.metrics.degradedReads, s.metrics.reconstructions, s.metrics.shardFailures, s.metrics.hedgedReads, s.metrics.hints)
	}
	if err := s.loadBuckets(context.Background()); err != nil {
		return nil, err
	}
	// Each device walks its own records (every record at start: the
	// longest part of a restart with many objects), all at once.
	walkErrs := make([]error, len(devices))
	var walks sync.WaitGroup
	for i, d := range devices {
		if d != nil {
			walks.Go(func() {
				walkErrs[i] = d.RebuildFreeSpace(func(yield func(*shard.Locator)) error { return walkLocators(d, yield) })
			})
		}
	}
	walks.Wait()
	var unreadable []int
	for i, d := range devices {
		if d == nil {
			continue
		}
		if err := walkErrs[i]; err != nil {
			if cfg.DeviceUnreadable != nil {
				// A device whose records cannot all be read is failed as a
				// whole: what it would answer is partial, and erasure
				// coding covers it until it is rebuilt.
				s.log.Error("device records unreadable: the device is offline until it is rebuilt", "device", d.Name(), "err", err)
				unreadable = append(unreadable, i)
				cfg.DeviceUnreadable(d.Name(), err)
				continue
			}
			// The device still serves what it can read; with no free space
			// known it only appends, so nothing a record it could not read
			// names is ever overwritten. Erasure coding covers the rest.
			s.log.Error("device records unreadable in part: freed space is not reused until the next start", "device", d.Name(), "err", err)
		}
	}
	if len(unreadable) > 0 {
		devices = slices.Clone(devices)
		for _, i := range unreadable {
			devices[i] = nil
		}
		s.current.Store(&layout{ring: r, devices: devices})
	}
	s.heal = newHealer(cfg.Registry)
	s.sweep = newSweeper(cfg.Registry)
	go s.runHealer()
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.runSweeper(s.heal.ctx)
	}()
	if w, ok := meta.(metastore.Watcher); ok {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.followBuckets(s.heal.ctx, w)
		}()
	}
	return s, nil
}

// Layout reports the erasure layout new objects get.
func (s *Store) Layout() (k, m int) { return s.ring.K, s.ring.M }

// writeQuorum is how many devices must durably hold a write.
func writeQuorum(k, m int) int {
	if k == m {
		return k + 1
	}
	return k
}

// placement returns the devices of an object's shards, shard 0 first.
func (s *Store) placement(bucket, key string) []Device {
	l := s.current.Load()
	slots := l.ring.Slots(l.ring.Partition(bucket, key))
	out := make([]Device, len(slots))
	for i, d := range slots {
		out[i] = l.devices[d]
	}
	return out
}

// lockKey takes the write lock of a key: the local stripe, then (in a
// cluster) the cluster-wide lock, so that two gateways never interleave
// the commits of one key.
func (s *Store) lockKey(ctx context.Context, bucket, key string) (func(), error) {
	mu := s.keyLock(bucket, key)
	mu.Lock()
	if s.cfg.Locker == nil {
		return mu.Unlock, nil
	}
	unlock, err := s.cfg.Locker.Lock(ctx, bucket+"\x00"+key)
	if err != nil {
		mu.Unlock()
		return nil, fmt.Errorf("%w: %v", ErrWriteQuorum, err)
	}
	return func() {
		unlock()
		mu.Unlock()
	}, nil
}

func (s *Store) keyLock(bucket, key string) *sync.Mutex {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(bucket)
	h.WriteByte(0)
	h.WriteString(key)
	return &s.locks[h.Sum64()%lockStripes]
}

// Record keys inside a device.
const (
	nsObject = 'o' // o bucket 0x00 key
	nsUpload = 'U' // U bucket 0x00 key 0x00 upload-id
	nsPart   = 'p' // p upload-id 0x00 part-number(u32 BE)
)

func objectKey(bucket, key string) []byte {
	b := make([]byte, 0, 2+len(bucket)+len(key))
	b = append(b, nsObject)
	b = append(b, bucket...)
	b = append(b, 0)
	return append(b, key...)
}

// walkLocators yields the locator of every part of every record on a
// device: objects and uploaded parts. A record that cannot be decoded names
// no space, so its shards become reusable; the record is useless anyway.
func walkLocators(d Device, yield func(*shard.Locator)) error {
	it, err := d.Iter(context.Background(), nil, nil)
	if err != nil {
		return err
	}
	for ; it.Valid(); it.Next() {
		if namesNoShards(it.Value()) {
			continue // most records of a store of small objects: no decode
		}
		r, err := UnmarshalRecord(it.Value())
		if err != nil {
			continue
		}
		for i := range r.Parts {
			if !r.Parts[i].Missing {
				yield(&r.Parts[i].Loc)
			}
		}
	}
	// A walk that ended on an error (a corrupt block of the database) has
	// not seen every record: the space of those it missed must not be
	// taken as free.
	if err := it.Close(); err != nil {
		return fmt.Errorf("walk the records of %s: %w", d.Name(), err)
	}
	return nil
}

// acquireReader marks a version as being streamed so its shards are not
// freed under the reader.
func (s *Store) acquireReader(id [16]byte) {
	s.readersMu.Lock()
	s.readers[id]++
	s.readersMu.Unlock()
}

func (s *Store) releaseReader(id [16]byte) {
	s.readersMu.Lock()
	s.readers[id]--
	var run []func()
	if s.readers[id] <= 0 {
		delete(s.readers, id)
		run = s.deferred[id]
		delete(s.deferred, id)
	}
	s.readersMu.Unlock()
	for _, f := range run {
		f()
	}
}

// freeLater frees a version's shards once no reader streams it.
func (s *Store) freeLater(id [16]byte, free func()) {
	s.readersMu.Lock()
	if s.readers[id] > 0 {
		s.deferred[id] = append(s.deferred[id], free)
		s.readersMu.Unlock()
		return
	}
	s.readersMu.Unlock()
	free()
}

// freeRecordShards frees the shard streams a device's record names.
func (s *Store) freeRecordShards(dev Device, rec *Record) {
	for _, p := range rec.Parts {
		if !p.Missing {
			if err := dev.Free(context.Background(), p.Loc); err != nil {
				s.log.Warn("free shard", "device", dev.Name(), "err", err)
			}
		}
	}
}

// readRecords reads the record under key from every device in parallel
// (nil where a device is offline, lacks it, or holds a corrupt one). After
// the hedge delay it stops waiting for up to M stragglers (a frozen node)
// if the answers already hold a read quorum of the newest version seen;
// otherwise it waits for every device (each bounded by its own timeout).
func (s *Store) readRecords(ctx context.Context, devs []Device, key []byte) []*Record {
	return s.readSet(ctx, devs, key).recs
}

// recordSet is what every device of a placement holds under one key.
type recordSet struct {
	recs []*Record // decoded (nil: absent, corrupt or no answer)
	// raw are the stored bytes, corrupt ones included: a conditional
	// commit expects exactly them.
	raw [][]byte
	// answered: a nil record of a device that did not answer is no
	// evidence that the device lacks it.
	answered []bool
}

// readSet reads the record under key from every device (see readRecords).
func (s *Store) readSet(ctx context.Context, devs []Device, key []byte) recordSet {
	type answer struct {
		i   int
		r   *Record
		raw []byte
		ok  bool // the device answered (a record, a corrupt one, or none)
	}
	ch := make(chan answer, len(devs))
	pending := 0
	for i, d := range devs {
		if d == nil || !d.Remote() {
			continue
		}
		pending++
		go func() {
			r, raw, ok := s.readRecord(ctx, d, key)
			ch <- answer{i, r, raw, ok}
		}()
	}
	set := recordSet{recs: make([]*Record, len(devs)), raw: make([][]byte, len(devs)), answered: make([]bool, len(devs))}
	// Local devices answer from pebble in microseconds: read them here
	// while the network calls are under way.
	for i, d := range devs {
		if d != nil && !d.Remote() {
			set.recs[i], set.raw[i], set.answered[i] = s.readRecord(ctx, d, key)
		}
	}
	var hedge <-chan time.Time
	if s.cfg.HedgeDelay > 0 && pending > 0 {
		t := time.NewTimer(s.cfg.HedgeDelay)
		defer t.Stop()
		hedge = t.C
	}
	for pending > 0 {
		select {
		case a := <-ch:
			set.recs[a.i], set.raw[a.i], set.answered[a.i] = a.r, a.raw, a.ok
			pending--
		case <-hedge:
			hedge = nil
		}
		if hedge == nil && pending > 0 && pending <= s.ring.M && settled(set.recs) {
			s.metrics.hedgedReads.Inc()
			break
		}
	}
	return set
}

// settled reports whether recs hold a read quorum of their newest version,
// so no answer still out could change which version is current.
func settled(recs []*Record) bool {
	q := quorumRecord(recs)
	if q < 0 {
		return false
	}
	for _, r := range recs {
		if r != nil && !r.sameVersion(recs[q]) && r.ModTime.After(recs[q].ModTime) {
			return false
		}
	}
	return true
}

func (s *Store) readRecord(ctx context.Context, d Device, key []byte) (*Record, []byte, bool) {
	b, err := d.Get(ctx, key)
	if errors.Is(err, metastore.ErrNotFound) {
		return nil, nil, true
	}
	if err != nil {
		s.log.Warn("read record", "device", d.Name(), "err", err)
		return nil, nil, false
	}
	r, err := UnmarshalRecord(b)
	if err != nil {
		s.log.Warn("corrupt record", "device", d.Name(), "err", err)
		s.metrics.shardFailures.WithLabelValues("record").Inc()
		return nil, b, true
	}
	return r, b, true
}

// putIf is the commit op that replaces (or with value nil deletes) the
// record under key only if the device still holds expect. With a single
// gateway the key lock already orders every write of a key, and the check
// (a lookup on every device) is left out; in a cluster it backs up the
// cluster lock, whose lease a paused gateway may outlive.
func (s *Store) putIf(key, value, expect []byte) shard.Op {
	return shard.Op{Key: key, Value: value, Delete: value == nil, Check: s.cfg.Locker != nil, Expect: expect}
}

// quorumRecord picks the version that at least k devices agree on (the
// newest if several do). It returns the index of one record of it, or -1.
func quorumRecord(recs []*Record) int {
	best, bestCount := -1, 0
	for i, r := range recs {
		if r == nil {
			continue
		}
		count := 0
		for _, o := range recs {
			if o != nil && o.sameVersion(r) {
				count++
			}
		}
		if count < r.K {
			continue
		}
		if best < 0 || r.ModTime.After(recs[best].ModTime) {
			best, bestCount = i, count
		}
	}
	_ = bestCount
	return best
}

// commitEach runs op on every live device in parallel and returns each
// device's error (shard.ErrOffline for an offline one).
func commitEach(ctx context.Context, devs []Device, op func(i int, d Device) error) []error {
	var wg sync.WaitGroup
	errs := make([]error, len(devs))
	for i, d := range devs {
		if d == nil {
			errs[i] = shard.ErrOffline
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = op(i, d)
		}()
	}
	wg.Wait()
	return errs
}

func countOK(errs []error) (ok int, first error) {
	for _, err := range errs {
		if err == nil {
			ok++
		} else if first == nil {
			first = err
		}
	}
	return ok, first
}

// commitAll runs op on every live device in parallel and returns how many
// succeeded and the first error.
func commitAll(ctx context.Context, devs []Device, op func(i int, d Device) error) (int, error) {
	return countOK(commitEach(ctx, devs, op))
}
