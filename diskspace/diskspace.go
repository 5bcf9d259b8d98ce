// Package diskspace keeps a filesystem's free space above a reserve.
// Writes that fill a disk ask a Guard before they take space; once free
// space falls to the reserve they are refused, so the node never runs the
// disk to zero under its metadata database (whose log cannot survive a
// failed write) and deletes, which free space, always have room to run.
package diskspace

import (
	"fmt"
	"sync"
	"syscall"
	"time"
)

// Reserve is the free space writes leave alone: Percent of the
// filesystem's size, but at least Min and at most Max bytes.
type Reserve struct {
	Percent  float64
	Min, Max int64
}

// DefaultReserve keeps 2% free, between 64 MiB and 8 GiB.
func DefaultReserve() Reserve { return Reserve{Percent: 2, Min: 64 << 20, Max: 8 << 30} }

func (r Reserve) bytes(total int64) int64 {
	b := int64(float64(total) * r.Percent / 100)
	if r.Max > 0 && b > r.Max {
		b = r.Max
	}
	return max(b, r.Min)
}

// Statfs reads a filesystem's size and free bytes (for unprivileged
// writers); a test replaces it.
type Statfs func(dir string) (total, free int64, err error)

// SysStatfs is statfs(2).
func SysStatfs(dir string) (int64, int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize, nil
}

// refresh is how long a reading is trusted (claims made since are taken
// off it).
const refresh = 500 * time.Millisecond

// Guard watches the filesystem under one directory.
type Guard struct {
	dir     string
	reserve Reserve
	statfs  Statfs

	mu      sync.Mutex
	read    time.Time
	total   int64
	free    int64 // at the last reading, less the claims since
	err     error
	onState func(full bool)
	full    bool
}

// New returns the guard of dir's filesystem; statfs nil means SysStatfs.
func New(dir string, r Reserve, statfs Statfs) *Guard {
	if statfs == nil {
		statfs = SysStatfs
	}
	return &Guard{dir: dir, reserve: r, statfs: statfs}
}

// OnChange calls fn whenever the guard's view flips between full and not.
func (g *Guard) OnChange(fn func(full bool)) {
	g.mu.Lock()
	g.onState = fn
	g.mu.Unlock()
}

// ErrFull is returned for a write that would eat into the reserve.
var ErrFull = fmt.Errorf("disk space: free space is down to the reserve")

func (g *Guard) readLocked(now time.Time) {
	if !g.read.IsZero() && now.Sub(g.read) < refresh {
		return
	}
	g.read = now
	g.total, g.free, g.err = g.statfs(g.dir)
}

// Claim asks for n bytes of new space (0 asks whether there is room at
// all). It fails with ErrFull once free space, less n, would fall below
// the reserve scaled by share (1 for data; metadata gets a smaller share
// so it still has room after data was refused).
func (g *Guard) Claim(n int64, share float64) error {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.readLocked(now)
	if g.err != nil {
		return nil // an unreadable filesystem is the writes' own business
	}
	want := int64(float64(g.reserve.bytes(g.total)) * share)
	g.judge()
	if g.free-n < want {
		g.setFull(true)
		return fmt.Errorf("%w (%s: %d bytes free, %d kept in reserve)", ErrFull, g.dir, g.free, want)
	}
	g.free -= n
	return nil
}

func (g *Guard) setFull(full bool) {
	if full != g.full {
		g.full = full
		if g.onState != nil {
			go g.onState(full)
		}
	}
}

// Exhausted tells the guard a write failed for want of space: the next
// question reads the filesystem again.
func (g *Guard) Exhausted() {
	g.mu.Lock()
	g.read = time.Time{}
	g.mu.Unlock()
}

// Full reports whether data writes are being refused.
func (g *Guard) Full() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.readLocked(time.Now())
	if g.err == nil {
		g.judge()
	}
	return g.full
}

// judge updates the full state from the reading: full below the reserve,
// not full again only with a margin above it (so a refused write is not
// followed by a "not full" while the next one would be refused too).
func (g *Guard) judge() {
	r := g.reserve.bytes(g.total)
	switch {
	case g.free < r:
		g.setFull(true)
	case g.free >= r+max(r/8, 4<<20):
		g.setFull(false)
	}
}

// Space is the filesystem's size and free bytes at the last reading.
func (g *Guard) Space() (total, free int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.readLocked(time.Now())
	return g.total, g.free
}
