package blockpool

import (
	"errors"
	"sync"
)

// MemVolume keeps a volume in memory. It remembers the synced content of
// every page written since the last Sync, so Crash can drop every write that
// a real disk could lose on power failure.
type MemVolume struct {
	mu     sync.Mutex
	data   []byte
	undo   map[int64][]byte // page -> content at the last Sync
	hwm    int64            // nothing at or past this offset was ever written
	closed bool
}

const memPage = 4096

// NewMemVolume returns a zeroed in-memory volume of the given size.
func NewMemVolume(size int64) *MemVolume {
	return &MemVolume{data: make([]byte, size), undo: map[int64][]byte{}}
}

var errClosed = errors.New("blockpool: volume closed")

func (v *MemVolume) ReadAt(p []byte, off int64) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return 0, errClosed
	}
	if err := checkRange(off, int64(len(p)), int64(len(v.data))); err != nil {
		return 0, err
	}
	return copy(p, v.data[off:]), nil
}

// remember saves the synced content of the pages in [off, off+n).
func (v *MemVolume) remember(off, n int64) {
	for pg := off / memPage; pg*memPage < off+n; pg++ {
		if _, ok := v.undo[pg]; !ok {
			end := min((pg+1)*memPage, int64(len(v.data)))
			v.undo[pg] = append([]byte(nil), v.data[pg*memPage:end]...)
		}
	}
}

func (v *MemVolume) WriteAt(p []byte, off int64) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return 0, errClosed
	}
	if err := checkRange(off, int64(len(p)), int64(len(v.data))); err != nil {
		return 0, err
	}
	v.remember(off, int64(len(p)))
	v.hwm = max(v.hwm, off+int64(len(p)))
	return copy(v.data[off:], p), nil
}

func (v *MemVolume) Sync() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return errClosed
	}
	clear(v.undo)
	return nil
}

func (v *MemVolume) Trim(off, length int64) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := checkRange(off, length, int64(len(v.data))); err != nil {
		return err
	}
	end := min(off+length, v.hwm) // never-written space is zero already
	if end > off {
		v.remember(off, end-off)
		clear(v.data[off:end])
	}
	return nil
}

func (v *MemVolume) Size() int64 { return int64(len(v.data)) }

func (v *MemVolume) Close() error {
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
	return nil
}

// Crash drops every write since the last Sync and reopens the volume, as a
// power failure followed by a restart would.
func (v *MemVolume) Crash() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for pg, b := range v.undo {
		copy(v.data[pg*memPage:], b)
	}
	clear(v.undo)
	v.closed = false
}

// CrashClone returns the volume as a power failure now would leave it (only
// synced writes), as a new volume; this one is untouched and keeps working.
func (v *MemVolume) CrashClone() *MemVolume {
	v.mu.Lock()
	defer v.mu.Unlock()
	c := &MemVolume{data: append([]byte(nil), v.data...), undo: map[int64][]byte{}, hwm: v.hwm}
	for pg, b := range v.undo {
		copy(c.data[pg*memPage:], b)
	}
	return c
}
