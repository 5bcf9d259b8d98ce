package shard

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-storage/strata/blockpool"
	"github.com/strata-storage/strata/diskspace"
	"github.com/strata-storage/strata/metastore"
)

// Key namespaces inside a device's prefix.
const (
	nsState  = 's' // s/head, s/gen
	nsRecord = 'r' // metadata records of the layer above
)

// ErrFull is returned when the chunk volume has no address space left.
var ErrFull = errors.New("shard: chunk volume full")

// ErrOffline is returned by every operation of a device that failed to open
// or whose volume failed an fsync.
var ErrOffline = errors.New("shard: device offline")

// Metrics are the shard store's Prometheus series, shared by every device.
type Metrics struct {
	ChecksumErrors *prometheus.CounterVec
	BytesWritten   *prometheus.CounterVec
	BytesRead      *prometheus.CounterVec
	Syncs          *prometheus.CounterVec
	Head           *prometheus.GaugeVec
	Reusable       *prometheus.GaugeVec
}

// NewMetrics registers the shard store's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		ChecksumErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_shard_checksum_errors_total", Help: "Shard block records that failed verification on read."}, []string{"device"}),
		BytesWritten:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_shard_written_bytes_total", Help: "Shard data bytes written to chunk volumes."}, []string{"device"}),
		BytesRead:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_shard_read_bytes_total", Help: "Shard data bytes read and verified."}, []string{"device"}),
		Syncs:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_shard_syncs_total", Help: "fsyncs of chunk volumes (each may cover many writers)."}, []string{"device"}),
		Head:           prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "strata_shard_volume_head_bytes", Help: "Append head of a chunk volume: address space in use or reusable."}, []string{"device"}),
		Reusable:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "strata_shard_volume_reusable_bytes", Help: "Freed address space below the head, reused before the head grows."}, []string{"device"}),
	}
	if reg != nil {
		reg.MustRegister(m.ChecksumErrors, m.BytesWritten, m.BytesRead, m.Syncs, m.Head, m.Reusable)
	}
	return m
}

// Store is one device.
type Store struct {
	name   string
	vol    blockpool.Volume
	db     *pebble.DB
	prefix []byte // "d" + u32 device id
	gen    uint32

	mu      sync.Mutex
	head    int64     // next unreserved byte of the volume
	free    freeSpace // reusable ranges below head
	syncing bool
	started uint64 // syncs started
	done    uint64 // syncs finished
	syncErr error  // sticky: after a failed fsync nothing is trusted
	synced  *sync.Cond

	checkLocks [checkStripes]sync.Mutex // conditional commits of one key, one at a time

	// headMu orders commits: the head a batch carries is read, and the
	// batch enters pebble's commit pipeline, under it, so the WAL never
	// holds a later batch with a lower head than an earlier one.
	headMu sync.Mutex
	// beforeApply, when set (by tests), runs after a commit has read the
	// head and before its batch is applied.
	beforeApply func()

	checksumErrors, written, read, syncs prometheus.Counter
	headGauge, freeGauge                 prometheus.Gauge
	log                                  *slog.Logger

	// space guards the filesystem of the chunk volume, metaSpace that of
	// the metadata database (nil: unguarded).
	space, metaSpace *diskspace.Guard
}

// SetSpace makes the store refuse shard data (ErrFull) once the volume's
// filesystem is down to its reserve, and record writes once the metadata
// database's filesystem is, unless the commit's context allows the
// reserve (UseReserve: deletes and rollbacks, which the reserve is for).
func (s *Store) SetSpace(data, meta *diskspace.Guard) { s.space, s.metaSpace = data, meta }

type reserveKey struct{}

// UseReserve marks ctx as that of an operation that frees space (a delete,
// a delete marker): its commits may use the reserve.
func UseReserve(ctx context.Context) context.Context {
	return context.WithValue(ctx, reserveKey{}, true)
}

// MayUseReserve reports whether ctx was marked by UseReserve.
func MayUseReserve(ctx context.Context) bool {
	v, _ := ctx.Value(reserveKey{}).(bool)
	return v
}

// claimRecords asks the metadata filesystem for room for ops.
func (s *Store) claimRecords(ctx context.Context, ops []Op) error {
	if s.metaSpace == nil || MayUseReserve(ctx) {
		return nil
	}
	var n int64
	for _, op := range ops {
		if !op.Delete && op.Value != nil {
			n += int64(len(op.Key) + len(op.Value))
		}
	}
	if n == 0 {
		return nil
	}
	if err := s.metaSpace.Claim(n, 1); err != nil {
		return fmt.Errorf("device %s: %w: %w", s.name, ErrFull, err)
	}
	return nil
}

// Open opens the device store of device id on vol, formatting the volume if
// it is new. name labels metrics and errors.
func Open(id uint32, name string, vol blockpool.Volume, db *pebble.DB, m *Metrics, log *slog.Logger) (*Store, error) {
	s := &Store{name: name, vol: vol, db: db, prefix: binary.BigEndian.AppendUint32([]byte{'d'}, id)}
	s.synced = sync.NewCond(&s.mu)
	if m == nil {
		m = NewMetrics(nil)
	}
	s.checksumErrors = m.ChecksumErrors.WithLabelValues(name)
	s.written = m.BytesWritten.WithLabelValues(name)
	s.read = m.BytesRead.WithLabelValues(name)
	s.syncs = m.Syncs.WithLabelValues(name)
	s.headGauge = m.Head.WithLabelValues(name)
	s.freeGauge = m.Reusable.WithLabelValues(name)

	super := make([]byte, superblockSize)
	if _, err := vol.ReadAt(super, 0); err != nil {
		return nil, fmt.Errorf("device %s: read superblock: %w", name, err)
	}
	storedGen, err := s.getState("gen")
	if err != nil {
		return nil, err
	}
	switch {
	case isZero(super):
		// A new or replaced volume: every shard it held is gone.
		s.gen = uint32(storedGen) + 1
		if storedGen != 0 {
			log.Warn("chunk volume was replaced; its shards will be rebuilt from the others", "device", name, "generation", s.gen)
		}
		if err := s.format(); err != nil {
			return nil, err
		}
	default:
		gen, err := parseSuper(super)
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", name, err)
		}
		if gen != uint32(storedGen) {
			return nil, fmt.Errorf("device %s: volume generation %d but metadata expects %d (volume from elsewhere?)", name, gen, storedGen)
		}
		s.gen = gen
		head, err := s.getState("head")
		if err != nil {
			return nil, err
		}
		s.head = max(int64(head), superblockSize)
	}
	s.headGauge.Set(float64(s.head))
	s.log = log
	return s, nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Superblock: "STRVOL01", u32 generation, u32 crc32c of the first 12 bytes.
func (s *Store) format() error {
	super := make([]byte, superblockSize)
	copy(super, superMagic)
	binary.LittleEndian.PutUint32(super[8:], s.gen)
	binary.LittleEndian.PutUint32(super[12:], crc32.Checksum(super[:12], castagnoli))
	if _, err := s.vol.WriteAt(super, 0); err != nil {
		return fmt.Errorf("device %s: format: %w", s.name, err)
	}
	if err := s.vol.Sync(); err != nil {
		return fmt.Errorf("device %s: format: %w", s.name, err)
	}
	s.head = superblockSize
	b := s.db.NewBatch()
	b.Set(s.key(nsState, []byte("gen")), binary.BigEndian.AppendUint64(nil, uint64(s.gen)), nil)
	b.Set(s.key(nsState, []byte("head")), binary.BigEndian.AppendUint64(nil, uint64(s.head)), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("device %s: format: %w", s.name, err)
	}
	return nil
}

func parseSuper(b []byte) (uint32, error) {
	if string(b[:8]) != superMagic {
		return 0, fmt.Errorf("%w: superblock magic", ErrCorrupt)
	}
	if binary.LittleEndian.Uint32(b[12:]) != crc32.Checksum(b[:12], castagnoli) {
		return 0, fmt.Errorf("%w: superblock checksum", ErrCorrupt)
	}
	return binary.LittleEndian.Uint32(b[8:]), nil
}

func (s *Store) getState(name string) (uint64, error) {
	v, closer, err := s.db.Get(s.key(nsState, []byte(name)))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("device %s: read %s: %w", s.name, name, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("device %s: %s: %w", s.name, name, ErrCorrupt)
	}
	return binary.BigEndian.Uint64(v), nil
}

func (s *Store) key(ns byte, k []byte) []byte {
	out := make([]byte, 0, len(s.prefix)+1+len(k))
	return append(append(append(out, s.prefix...), ns), k...)
}

// Head is the volume's append head (address space in use or reusable).
func (s *Store) Head() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.head
}

// Used is the bytes of shard data (with block headers) the device holds:
// the append head less the ranges free for reuse. Records inlined in the
// metadata are not counted.
func (s *Store) Used() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.head - superblockSize - s.free.bytes
}

// DB is the metadata database the store keeps its records in.
func (s *Store) DB() *pebble.DB { return s.db }

// Name is the device's name.
func (s *Store) Name() string { return s.name }

// allocUnit aligns reservations so freed ranges are whole filesystem blocks.
const allocUnit = 4096

// reserve hands out [off, off+n) of the volume (n rounded up to allocUnit),
// reusing freed space before growing the head.
func (s *Store) reserve(n int64) (int64, int64, error) {
	n = (n + allocUnit - 1) / allocUnit * allocUnit
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.syncErr != nil {
		return 0, 0, s.syncErr
	}
	if s.space != nil {
		// Reused space was trimmed: writing it takes disk blocks again.
		if err := s.space.Claim(n, 1); err != nil {
			return 0, 0, fmt.Errorf("device %s: %w: %w", s.name, ErrFull, err)
		}
	}
	if off, ok := s.free.take(n); ok {
		s.freeGauge.Set(float64(s.free.bytes))
		return off, n, nil
	}
	if s.head+n > s.vol.Size() {
		return 0, 0, fmt.Errorf("device %s: %w", s.name, ErrFull)
	}
	off := s.head
	s.head += n
	s.headGauge.Set(float64(s.head))
	return off, n, nil
}

// release makes [off, off+n) reusable. The caller guarantees nothing
// references it any more.
func (s *Store) release(off, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.free.add(off, n) {
		// A double free: keep the range out of reuse rather than risk
		// handing it to two writers.
		return
	}
	s.freeGauge.Set(float64(s.free.bytes))
}

// RebuildFreeSpace recomputes the reusable ranges as everything below the
// head that no locator references. walk must yield every locator of every
// record on this device. Call it before the store serves writes.
func (s *Store) RebuildFreeSpace(walk func(yield func(*Locator)) error) error {
	var used []extent
	err := walk(func(l *Locator) {
		if l.Generation != s.gen {
			return
		}
		runs(l, func(off, n int64) { used = append(used, extent{off, n}) })
	})
	if err != nil {
		return fmt.Errorf("device %s: rebuild free space: %w", s.name, err)
	}
	sort.Slice(used, func(i, j int) bool { return used[i].off < used[j].off })
	s.mu.Lock()
	defer s.mu.Unlock()
	// The head covers every referenced byte even where a stored head lags
	// behind its records (data dirs written before commits were ordered by
	// headMu); only what lies past it was never acknowledged, and goes back
	// to the pool.
	for _, u := range used {
		s.head = max(s.head, u.end())
	}
	s.headGauge.Set(float64(s.head))
	if size := s.vol.Size(); s.head < size {
		if err := s.vol.Trim(s.head, size-s.head); err != nil {
			s.log.Warn("trim past head failed", "device", s.name, "err", err)
		}
	}
	var f freeSpace
	pos := int64(superblockSize)
	for _, u := range used {
		if u.off > pos {
			f.add(pos, u.off-pos)
		}
		pos = max(pos, u.end())
	}
	if s.head > pos {
		f.add(pos, s.head-pos)
	}
	s.free = f
	s.freeGauge.Set(float64(f.bytes))
	return nil
}

// runs calls fn for each run of contiguous records of a locator.
func runs(loc *Locator, fn func(off, n int64)) {
	var start, end int64 = -1, -1
	for i, off := range loc.Offsets {
		recEnd := off + HeaderSize + int64(loc.DataLen(i))
		if off == end {
			end = recEnd
			continue
		}
		if start >= 0 {
			fn(start, end-start)
		}
		start, end = off, recEnd
	}
	if start >= 0 {
		fn(start, end-start)
	}
}

// sync makes every write completed before the call durable. Callers that
// arrive while an fsync runs wait for the next one and share it.
func (s *Store) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	need := s.started + 1
	for s.done < need && s.syncErr == nil {
		if s.syncing {
			s.synced.Wait()
			continue
		}
		s.syncing = true
		s.started++
		seq := s.started
		s.mu.Unlock()
		err := s.vol.Sync()
		s.syncs.Inc()
		s.mu.Lock()
		s.syncing = false
		s.done = seq
		if err != nil {
			s.syncErr = fmt.Errorf("device %s: fsync failed, device taken offline: %w (%w)", s.name, err, ErrOffline)
		}
		s.synced.Broadcast()
	}
	return s.syncErr
}

// Remote is false: a shard store is this node's own.
func (s *Store) Remote() bool { return false }

// Online is true: a store that is open serves.
func (s *Store) Online() bool { return true }

// StreamWriter appends one shard stream: a local Writer, or a stream to a
// device on another node.
type StreamWriter interface {
	// Append writes one block record (HeaderSize bytes of scratch, then
	// the data). The caller may reuse rec once Append returns.
	Append(rec []byte) error
	// Finish makes the stream durable and returns its locator.
	Finish() (Locator, error)
	// Abort gives back the space of an unfinished stream.
	Abort()
}

// RecordIter walks metadata records in key order.
type RecordIter interface {
	SeekGE(k []byte)
	Valid() bool
	Key() []byte
	Value() []byte
	Next()
	Close() error
}

// Writer appends one shard stream on a local device.
type Writer struct {
	s        *Store
	loc      Locator
	extOff   int64 // current reserved extent
	extLen   int64
	used     int64 // bytes of the extent used
	hint     int64 // bytes still expected
	failed   error
	finished bool
}

const (
	minExtent = 256 << 10
	maxExtent = 16 << 20
)

// NewWriter starts a shard stream. sizeHint is the expected data size (or
// -1); it lets the writer reserve one contiguous extent for the stream.
func (s *Store) NewWriter(_ context.Context, sizeHint int64) StreamWriter {
	var id [8]byte
	rand.Read(id[:])
	return &Writer{s: s, loc: Locator{Generation: s.gen, WriterID: binary.LittleEndian.Uint64(id[:])}, hint: sizeHint}
}

// Append writes one block record. rec holds HeaderSize bytes of scratch
// followed by the block's data; the header is written into the scratch.
// Every block but the last must have the same length.
func (w *Writer) Append(rec []byte) error {
	if w.failed != nil {
		return w.failed
	}
	dataLen := len(rec) - HeaderSize
	if dataLen < 0 {
		return errors.New("shard: record without header room")
	}
	if n := len(w.loc.Offsets); n > 0 && w.loc.LastLen != w.loc.BlockLen {
		return errors.New("shard: block after a short block")
	}
	need := int64(len(rec))
	if w.extLen-w.used < need {
		size := need
		if w.hint > 0 {
			size = max(size, w.hint+w.hint/64+HeaderSize) // room for this and later headers
		} else {
			size = max(size, minExtent)
		}
		size = min(max(size, need), max(maxExtent, need))
		w.giveBackRest()
		off, got, err := w.s.reserve(size)
		if err != nil {
			w.failed = err
			return err
		}
		w.extOff, w.extLen, w.used = off, got, 0
	}
	off := w.extOff + w.used
	data := rec[HeaderSize:]
	recordHeader{dataLen: uint32(dataLen), index: uint32(len(w.loc.Offsets)), writerID: w.loc.WriterID, dataSum: dataSum(data)}.put(rec)
	if _, err := w.s.vol.WriteAt(rec, off); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			if w.s.space != nil {
				w.s.space.Exhausted()
			}
			err = fmt.Errorf("%w: %w", ErrFull, err)
		}
		w.failed = fmt.Errorf("device %s: write shard: %w", w.s.name, err)
		return w.failed
	}
	w.s.written.Add(float64(dataLen))
	w.used += need
	w.hint -= int64(dataLen)
	if len(w.loc.Offsets) == 0 {
		w.loc.BlockLen = uint32(dataLen)
	}
	w.loc.LastLen = uint32(dataLen)
	w.loc.Offsets = append(w.loc.Offsets, off)
	return nil
}

// giveBackRest returns the unused tail of the current extent (never
// written, so already a hole) for reuse.
func (w *Writer) giveBackRest() {
	if rest := w.extLen - w.used; rest > 0 {
		w.s.release(w.extOff+w.used, rest)
	}
	w.extLen, w.used = 0, 0
}

// Finish makes the stream durable and returns its locator.
func (w *Writer) Finish() (Locator, error) {
	w.giveBackRest()
	if w.failed != nil {
		return Locator{}, w.failed
	}
	w.finished = true
	if err := w.s.sync(); err != nil {
		return Locator{}, err
	}
	return w.loc, nil
}

// Abort gives back the space of an unfinished stream.
func (w *Writer) Abort() {
	w.giveBackRest()
	if !w.finished {
		w.finished = true
		w.s.Free(context.Background(), w.loc) // giving back space is not to be called off
	}
}

// Holds reports whether loc names a stream of the current volume.
func (s *Store) Holds(loc *Locator) bool { return loc.Generation == s.gen }

// Generation is the chunk volume's generation (bumped when it is replaced).
func (s *Store) Generation() uint32 { return s.gen }

// ReadBlock reads and verifies block i of a shard stream into buf (which
// must hold HeaderSize+DataLen(i) bytes) and returns the data.
func (s *Store) ReadBlock(ctx context.Context, loc *Locator, i int, buf []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if loc.Generation != s.gen {
		return nil, ErrMissing
	}
	if i < 0 || i >= len(loc.Offsets) {
		return nil, fmt.Errorf("shard: block %d of %d", i, len(loc.Offsets))
	}
	n := HeaderSize + loc.DataLen(i)
	buf = buf[:n]
	if _, err := s.vol.ReadAt(buf, loc.Offsets[i]); err != nil {
		return nil, fmt.Errorf("device %s: read shard: %w", s.name, err)
	}
	data, err := VerifyBlock(buf, loc, i)
	if err != nil {
		s.checksumErrors.Inc()
		return nil, fmt.Errorf("device %s block %d at %d: %w", s.name, i, loc.Offsets[i], err)
	}
	s.read.Add(float64(n - HeaderSize))
	return data, nil
}

// VerifyBlock checks that buf is block i of the stream loc names, intact,
// and returns its data. A block that crossed the network is verified again
// by the receiver, so every read is checked end to end.
func VerifyBlock(buf []byte, loc *Locator, i int) ([]byte, error) {
	if i < 0 || i >= len(loc.Offsets) || len(buf) != HeaderSize+loc.DataLen(i) {
		return nil, fmt.Errorf("%w: block %d has %d bytes", ErrCorrupt, i, len(buf))
	}
	h, err := parseHeader(buf)
	if err == nil && (h.dataLen != uint32(len(buf)-HeaderSize) || h.index != uint32(i) || h.writerID != loc.WriterID) {
		err = fmt.Errorf("%w: record belongs to another stream or block", ErrCorrupt)
	}
	if err == nil && dataSum(buf[HeaderSize:]) != h.dataSum {
		err = fmt.Errorf("%w: block data", ErrCorrupt)
	}
	if err != nil {
		return nil, err
	}
	return buf[HeaderSize:], nil
}

// Free trims the records of a shard stream and makes their space reusable.
// Freed space reads as zeroes until reused, and a stale locator into reused
// space fails verification (the writer id differs), so a late reader never
// gets another stream's bytes.
func (s *Store) Free(_ context.Context, loc Locator) error {
	if loc.Generation != s.gen {
		return nil
	}
	var err error
	runs(&loc, func(off, n int64) {
		if terr := s.vol.Trim(off, n); terr != nil && err == nil {
			err = fmt.Errorf("device %s: free: %w", s.name, terr)
		}
		s.release(off, n)
	})
	return err
}

// Op is one change of a metadata record in a Commit.
type Op struct {
	Key    []byte
	Value  []byte // nil deletes
	Delete bool
	// Check makes the commit conditional: the record under Key must be
	// exactly Expect (absent when Expect is nil) or nothing is applied and
	// Commit returns ErrConflict. Gateways that race on one key thus
	// cannot leave its devices split between two versions unnoticed.
	Check  bool
	Expect []byte
}

// ErrConflict is returned by a Commit whose condition did not hold.
var ErrConflict = errors.New("shard: record changed meanwhile")

// DeleteRange removes every metadata record with key in [lower, upper).
func (s *Store) DeleteRange(_ context.Context, lower, upper []byte) error {
	if err := s.db.DeleteRange(s.key(nsRecord, lower), s.key(nsRecord, upper), pebble.Sync); err != nil {
		return fmt.Errorf("device %s: delete range: %w", s.name, err)
	}
	return nil
}

// Commit applies ops atomically and durably, together with the append head
// (so reserved space that a committed record names is never reused).
func (s *Store) Commit(ctx context.Context, ops ...Op) error {
	s.mu.Lock()
	err := s.syncErr
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.claimRecords(ctx, ops); err != nil {
		return err
	}
	if unlock := s.lockChecked(ops); unlock != nil {
		defer unlock()
		for _, op := range ops {
			if !op.Check {
				continue
			}
			cur, err := s.Get(ctx, op.Key)
			if errors.Is(err, metastore.ErrNotFound) {
				cur, err = nil, nil
			}
			if err != nil {
				return err
			}
			if (cur == nil) != (op.Expect == nil) || !bytes.Equal(cur, op.Expect) {
				return fmt.Errorf("device %s: %w", s.name, ErrConflict)
			}
		}
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, op := range ops {
		if op.Delete {
			b.Delete(s.key(nsRecord, op.Key), nil)
		} else {
			b.Set(s.key(nsRecord, op.Key), op.Value, nil)
		}
	}
	if err := s.applyWithHead(b); err != nil {
		return fmt.Errorf("device %s: commit: %w", s.name, err)
	}
	return nil
}

// applyWithHead commits b durably together with the current append head.
//
// The head must only grow in the order batches are applied: Open trusts the
// last committed head as the end of all referenced data and trims past it.
// Two commits that read the head first and applied their batches later could
// be applied crosswise (the one that read the lower head last), leaving a
// head below the shards of the other, acknowledged, commit; the next start
// trimmed them away, and later writes would have reused their space. So the
// head is read and the batch enters the commit pipeline under headMu, and
// only the WAL fsync, shared by every batch waiting on it, runs outside it.
func (s *Store) applyWithHead(b *pebble.Batch) error {
	s.headMu.Lock()
	s.mu.Lock()
	head := s.head
	s.mu.Unlock()
	b.Set(s.key(nsState, []byte("head")), binary.BigEndian.AppendUint64(nil, uint64(head)), nil)
	if s.beforeApply != nil {
		s.beforeApply()
	}
	err := s.db.ApplyNoSyncWait(b, pebble.Sync)
	s.headMu.Unlock()
	if err != nil {
		return err
	}
	return b.SyncWait()
}

// lockChecked takes the key locks of a commit's conditional ops (in stripe
// order, so two commits never wait on each other crosswise); nil if none.
func (s *Store) lockChecked(ops []Op) func() {
	var stripes []int
	for _, op := range ops {
		if op.Check {
			stripes = append(stripes, int(crc32.ChecksumIEEE(op.Key)%checkStripes))
		}
	}
	if len(stripes) == 0 {
		return nil
	}
	sort.Ints(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		s.checkLocks[i].Lock()
	}
	return func() {
		for _, i := range stripes {
			s.checkLocks[i].Unlock()
		}
	}
}

const checkStripes = 1024 // many: a stripe is held through the commit's fsync

// Get returns the metadata record under key, or metastore.ErrNotFound.
func (s *Store) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v, closer, err := s.db.Get(s.key(nsRecord, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, metastore.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("device %s: get: %w", s.name, err)
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

// Iter iterates metadata records with keys in [lower, upper); a nil upper
// means to the end of the device's records.
func (s *Store) Iter(ctx context.Context, lower, upper []byte) (RecordIter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts := &pebble.IterOptions{LowerBound: s.key(nsRecord, lower)}
	if upper != nil {
		opts.UpperBound = s.key(nsRecord, upper)
	} else {
		opts.UpperBound = metastore.PrefixEnd(s.key(nsRecord, nil))
	}
	it, err := s.db.NewIter(opts)
	if err != nil {
		return nil, fmt.Errorf("device %s: iterate: %w", s.name, err)
	}
	it.First()
	return &Iter{it: it, prefix: s.key(nsRecord, nil)}, nil
}

// Iter walks metadata records in key order.
type Iter struct {
	it     *pebble.Iterator
	prefix []byte
	seek   []byte
	closed bool
	err    error
}

// SeekGE moves to the first record with key >= k (within the bounds).
func (i *Iter) SeekGE(k []byte) {
	i.seek = append(append(i.seek[:0], i.prefix...), k...)
	i.it.SeekGE(i.seek)
}

// Valid reports whether the iterator is on a record.
func (i *Iter) Valid() bool { return i.it.Valid() }

// Key is the record's key (valid until Next).
func (i *Iter) Key() []byte { return i.it.Key()[len(i.prefix):] }

// Value is the record (valid until Next).
func (i *Iter) Value() []byte { return i.it.Value() }

// Next moves to the next record.
func (i *Iter) Next() { i.it.Next() }

// Close releases the iterator and reports an error that ended the walk
// early (it may be called again).
func (i *Iter) Close() error {
	if i.closed {
		return i.err
	}
	i.closed, i.err = true, i.it.Close()
	return i.err
}
