package metastore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// DB is what a Pebble store keeps its keys in: a pebble database, or a
// Mirrored one.
type DB interface {
	Get(key []byte) ([]byte, io.Closer, error)
	Set(key, value []byte, opts *pebble.WriteOptions) error
	Delete(key []byte, opts *pebble.WriteOptions) error
	NewIter(opts *pebble.IterOptions) (*pebble.Iterator, error)
}

// Keys of a copy inside a device's database: the node's keys under
// mirrorNS, and the sequence number of the last write applied at
// mirrorSeqKey. Device stores keep their keys under 'd', so neither
// collides.
const mirrorNS = 'n'

var (
	mirrorSeqKey  = []byte("N")
	primarySeqKey = []byte("\x00mirror/seq") // no node key starts with NUL
)

// Mirrored is the node's metadata database (buckets, users, volumes, jobs)
// kept whole in a primary pebble database and copied, write by write, into
// every local device's database, so that no single damaged database loses
// it: at start (Check) a primary that cannot be opened or read through is
// set aside and rebuilt from the newest copy, and a copy that missed
// writes (a device that was offline, or added) is refreshed from the
// primary.
//
// Writes are ordered by one lock, so every copy applies them in the same
// order, and each carries a sequence number stored in the same batch; a
// write returns once the primary and every copy that is in step have
// synced it. A copy whose write fails drops out of step until it is
// refreshed. Reads come from the primary; one the primary cannot serve
// (a corrupt block) is answered from a copy.
type Mirrored struct {
	dir string
	log *slog.Logger

	mu      sync.Mutex
	primary *pebble.DB // nil while it could not be opened
	openErr error
	seq     uint64
	checked bool
	mirrors map[string]*mirror
	cache   *pebble.Cache
}

type mirror struct {
	name  string
	db    *pebble.DB
	stale bool // missed a write: refreshed before it takes the next
}

// OpenMirrored opens the node's database in dir, with a block cache of
// cacheBytes that the node's device databases share (Cache). A database
// that cannot be opened is not an error yet: Check rebuilds it from a copy
// once the devices' databases are attached.
func OpenMirrored(dir string, log *slog.Logger, cacheBytes int64) *Mirrored {
	if cacheBytes <= 0 {
		cacheBytes = DefaultCacheSize
	}
	m := &Mirrored{dir: dir, log: log, mirrors: map[string]*mirror{}, cache: pebble.NewCache(cacheBytes)}
	m.primary, m.openErr = OpenPebbleWith(dir, log, m.cache)
	return m
}

// Cache is the block cache the node's databases share. It lives until
// the last database using it is closed.
func (m *Mirrored) Cache() *pebble.Cache { return m.cache }

// Primary is the primary database, nil if it could not be opened. It is
// for reading keys written before copies existed (moving them elsewhere);
// writes through it bypass the copies.
func (m *Mirrored) Primary() *pebble.DB {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.primary
}

// AddMirror attaches a device's database as a copy. After Check it is
// brought in step at once.
func (m *Mirrored) AddMirror(name string, db *pebble.DB) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &mirror{name: name, db: db, stale: true}
	m.mirrors[name] = c
	if !m.checked || m.primary == nil {
		return nil
	}
	return m.refreshIfBehind(c)
}

// RemoveMirror detaches a copy (its device went offline or away).
func (m *Mirrored) RemoveMirror(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.mirrors, name)
}

// Check makes the primary whole: it reads all of it, and if it could not be
// opened or read, moves it aside and rebuilds it from the newest readable
// copy; then it refreshes every copy that is not in step. It fails only if
// the primary is damaged and no copy can replace it.
func (m *Mirrored) Check() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.checked = true
	damage := m.openErr
	if damage == nil {
		damage = readThrough(m.primary, nil, nil)
	}
	var seq uint64
	if damage == nil {
		if seq, damage = readSeq(m.primary, primarySeqKey); damage == nil {
			// A copy with writes the primary lacks means the primary lost
			// them (it was replaced, or removed and so created empty).
			if best, bestSeq := m.newestCopy(); best != nil && bestSeq > seq {
				damage = fmt.Errorf("it holds %d writes and device %s's copy %d", seq, best.name, bestSeq)
			}
		}
	}
	if damage != nil {
		if err := m.rebuildPrimary(damage); err != nil {
			return err
		}
		if seq, err := readSeq(m.primary, primarySeqKey); err != nil {
			return fmt.Errorf("metadata database %s: %w", m.dir, err)
		} else {
			m.seq = seq
		}
	} else {
		m.seq = seq
	}
	for _, name := range m.sortedMirrors() {
		if err := m.refreshIfBehind(m.mirrors[name]); err != nil {
			m.log.Error("metadata copy could not be refreshed; it is refreshed before its next write", "device", name, "err", err)
		}
	}
	return nil
}

func (m *Mirrored) sortedMirrors() []string {
	names := make([]string, 0, len(m.mirrors))
	for name := range m.mirrors {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// newestCopy is the readable copy with the highest sequence (mu held).
func (m *Mirrored) newestCopy() (*mirror, uint64) {
	var best *mirror
	var bestSeq uint64
	for _, name := range m.sortedMirrors() {
		c := m.mirrors[name]
		seq, err := readSeq(c.db, mirrorSeqKey)
		if err != nil || seq == 0 || best != nil && seq <= bestSeq {
			continue
		}
		lower := []byte{mirrorNS}
		if err := readThrough(c.db, lower, PrefixEnd(lower)); err != nil {
			m.log.Error("metadata copy unreadable; not used to rebuild", "device", name, "err", err)
			continue
		}
		best, bestSeq = c, seq
	}
	return best, bestSeq
}

// rebuildPrimary replaces a damaged primary with the newest copy (mu held).
func (m *Mirrored) rebuildPrimary(damage error) error {
	best, bestSeq := m.newestCopy()
	if best == nil {
		return fmt.Errorf("metadata database %s is damaged and no device holds a readable copy of it: %w", m.dir, damage)
	}
	if m.primary != nil {
		m.primary.Close()
		m.primary = nil
	}
	aside, err := SetAside(m.dir)
	if err != nil {
		return fmt.Errorf("move the damaged metadata database aside: %w", err)
	}
	db, err := OpenPebbleWith(m.dir, m.log, m.cache)
	if err != nil {
		return err
	}
	lower := []byte{mirrorNS}
	if err := copyRange(best.db, db, lower, PrefixEnd(lower), func(k []byte) []byte { return k[1:] }); err != nil {
		db.Close()
		return fmt.Errorf("rebuild the metadata database from device %s: %w", best.name, err)
	}
	if err := db.Set(primarySeqKey, seqValue(bestSeq), pebble.Sync); err != nil {
		db.Close()
		return fmt.Errorf("rebuild the metadata database: %w", err)
	}
	m.log.Error("metadata database was damaged; rebuilt from a device's copy (the damaged one is kept aside)", "damage", damage.Error(), "from", best.name, "seq", bestSeq, "kept", aside)
	m.primary, m.openErr = db, nil
	return nil
}

// refreshIfBehind rewrites a copy from the primary unless it already holds
// the primary's last write (mu held).
func (m *Mirrored) refreshIfBehind(c *mirror) error {
	seq, err := readSeq(c.db, mirrorSeqKey)
	if err == nil && seq == m.seq && seq != 0 {
		c.stale = false
		return nil
	}
	c.stale = true
	b := c.db.NewBatch()
	lower := []byte{mirrorNS}
	if err := b.DeleteRange(lower, PrefixEnd(lower), nil); err != nil {
		b.Close()
		return err
	}
	it, err := m.primary.NewIter(nil)
	if err != nil {
		b.Close()
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if bytes.Equal(k, primarySeqKey) {
			continue
		}
		b.Set(append([]byte{mirrorNS}, k...), it.Value(), nil)
	}
	if err := it.Close(); err != nil {
		b.Close()
		return fmt.Errorf("read the metadata database: %w", err)
	}
	b.Set(mirrorSeqKey, seqValue(m.seq), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("refresh the metadata copy on %s: %w", c.name, err)
	}
	c.stale = false
	return nil
}

// Get reads key from the primary, or from a copy in step if the primary
// cannot serve it.
func (m *Mirrored) Get(key []byte) ([]byte, io.Closer, error) {
	m.mu.Lock()
	primary, copies := m.primary, m.inStep()
	m.mu.Unlock()
	if primary == nil {
		return nil, nil, m.unavailable()
	}
	v, closer, err := primary.Get(key)
	if err == nil || errors.Is(err, pebble.ErrNotFound) {
		return v, closer, err
	}
	for _, c := range copies {
		v, closer, cerr := c.Get(append([]byte{mirrorNS}, key...))
		if cerr == nil || errors.Is(cerr, pebble.ErrNotFound) {
			m.log.Error("metadata database could not serve a read; a device's copy did", "err", err)
			return v, closer, cerr
		}
	}
	return nil, nil, err
}

// NewIter iterates the primary.
func (m *Mirrored) NewIter(opts *pebble.IterOptions) (*pebble.Iterator, error) {
	m.mu.Lock()
	primary := m.primary
	m.mu.Unlock()
	if primary == nil {
		return nil, m.unavailable()
	}
	return primary.NewIter(opts)
}

// list reads [lower, upper) from the primary, or from a copy in step if
// the primary cannot read all of it.
func (m *Mirrored) list(lower, upper []byte) ([]KV, error) {
	m.mu.Lock()
	primary, copies := m.primary, m.inStep()
	m.mu.Unlock()
	if primary == nil {
		return nil, m.unavailable()
	}
	out, err := listRange(primary, lower, upper, 0)
	if err == nil {
		return out, nil
	}
	for _, c := range copies {
		ml := append([]byte{mirrorNS}, lower...)
		mu := PrefixEnd([]byte{mirrorNS})
		if upper != nil {
			mu = append([]byte{mirrorNS}, upper...)
		}
		if kvs, cerr := listRange(c, ml, mu, 1); cerr == nil {
			m.log.Error("metadata database could not serve a listing; a device's copy did", "err", err)
			return kvs, nil
		}
	}
	return nil, err
}

func (m *Mirrored) unavailable() error {
	return fmt.Errorf("metadata database %s unavailable: %w", m.dir, m.openErr)
}

func (m *Mirrored) inStep() []*pebble.DB {
	var out []*pebble.DB
	for _, name := range m.sortedMirrors() {
		if c := m.mirrors[name]; !c.stale {
			out = append(out, c.db)
		}
	}
	return out
}

// Set writes key on the primary and every copy.
func (m *Mirrored) Set(key, value []byte, _ *pebble.WriteOptions) error {
	return m.write(func(b *pebble.Batch, prefix []byte) {
		b.Set(append(prefix, key...), value, nil)
	})
}

// Delete deletes key on the primary and every copy.
func (m *Mirrored) Delete(key []byte, _ *pebble.WriteOptions) error {
	return m.write(func(b *pebble.Batch, prefix []byte) {
		b.Delete(append(prefix, key...), nil)
	})
}

// write applies one change to the primary and every copy in parallel, each
// with the change's sequence number, and waits for all of them to sync.
func (m *Mirrored) write(change func(b *pebble.Batch, prefix []byte)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.primary == nil {
		return m.unavailable()
	}
	for _, name := range m.sortedMirrors() {
		if c := m.mirrors[name]; c.stale && m.checked {
			if err := m.refreshIfBehind(c); err != nil {
				m.log.Error("metadata copy still out of step", "device", name, "err", err)
			}
		}
	}
	m.seq++
	seq := seqValue(m.seq)
	var copies []*mirror
	for _, name := range m.sortedMirrors() {
		if c := m.mirrors[name]; !c.stale {
			copies = append(copies, c)
		}
	}
	errs := make([]error, len(copies))
	var wg sync.WaitGroup
	for i, c := range copies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := c.db.NewBatch()
			change(b, []byte{mirrorNS})
			b.Set(mirrorSeqKey, seq, nil)
			errs[i] = b.Commit(pebble.Sync)
		}()
	}
	b := m.primary.NewBatch()
	change(b, nil)
	b.Set(primarySeqKey, seq, nil)
	perr := b.Commit(pebble.Sync)
	wg.Wait()
	for i, c := range copies {
		// A copy that missed the write, or took one the primary did not,
		// is out of step until refreshed.
		if errs[i] != nil || perr != nil {
			c.stale = true
		}
		if errs[i] != nil {
			m.log.Error("metadata copy missed a write; it is refreshed before its next one", "device", c.name, "err", errs[i])
		}
	}
	if perr != nil {
		return perr
	}
	return nil
}

// Close flushes and closes the primary; copies belong to their devices.
func (m *Mirrored) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mirrors = map[string]*mirror{}
	if m.cache != nil {
		m.cache.Unref() // the device databases still open hold theirs
		m.cache = nil
	}
	if m.primary == nil {
		return nil
	}
	err := CloseFlushed(m.primary)
	m.primary = nil
	return err
}

// SetAside renames a damaged database's directory to DIR.damaged-TIME (a
// name not yet taken) and returns that name ("" if dir did not exist).
func SetAside(dir string) (string, error) {
	base := fmt.Sprintf("%s.damaged-%s", dir, time.Now().UTC().Format("20060102T150405"))
	for i := 0; ; i++ {
		aside := base
		if i > 0 {
			aside = fmt.Sprintf("%s.%d", base, i)
		}
		if _, err := os.Lstat(aside); err == nil {
			continue
		}
		if err := os.Rename(dir, aside); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return "", nil
			}
			return "", err
		}
		return aside, nil
	}
}

// CloseFlushed writes a database's memtables to table files and closes
// it: the next start replays no log.
func CloseFlushed(db *pebble.DB) error {
	ferr := db.Flush()
	return errors.Join(ferr, db.Close())
}

// readThrough reads every key and value of [lower, upper) (nil: all),
// which verifies the checksum of every block holding them.
func readThrough(db *pebble.DB, lower, upper []byte) error {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		_ = it.Value()
	}
	return it.Close()
}

func copyRange(from, to *pebble.DB, lower, upper []byte, rename func([]byte) []byte) error {
	it, err := from.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	b := to.NewBatch()
	for it.First(); it.Valid(); it.Next() {
		b.Set(rename(it.Key()), it.Value(), nil)
	}
	if err := it.Close(); err != nil {
		b.Close()
		return err
	}
	return b.Commit(pebble.Sync)
}

func listRange(db DB, lower, upper []byte, strip int) ([]KV, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	var out []KV
	for it.First(); it.Valid(); it.Next() {
		out = append(out, KV{Key: string(it.Key()[strip:]), Value: bytes.Clone(it.Value())})
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

func readSeq(db *pebble.DB, key []byte) (uint64, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: mirror sequence of %d bytes", ErrCorruptSeq, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func seqValue(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// ErrCorruptSeq reports a sequence number that is not one.
var ErrCorruptSeq = errors.New("metastore: corrupt sequence number")
