package devices

import (
	"sync"
	"syscall"

	"github.com/strata-storage/strata/diskspace"
)

// Disk space: one guard per filesystem under the data dir, shared by the
// devices (pools) and the metadata database on it, so their claims add up.
// A guard refuses shard data once free space is down to the reserve and
// records at half of it; deletes may use the rest. Each flip between full
// and not is logged once, and strata_device_full shows it per device.

type spaceGuards struct {
	mu   sync.Mutex
	byFS map[uint64]*diskspace.Guard
}

// GuardFor returns the guard of dir's filesystem (nil if dir cannot be
// examined: then nothing is guarded there).
func (s *Set) GuardFor(dir string) *diskspace.Guard {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		s.cfg.Log.Warn("disk space: cannot examine the filesystem; writes there are not guarded", "dir", dir, "err", err)
		return nil
	}
	s.space.mu.Lock()
	defer s.space.mu.Unlock()
	if s.space.byFS == nil {
		s.space.byFS = map[uint64]*diskspace.Guard{}
	}
	if g := s.space.byFS[uint64(st.Dev)]; g != nil {
		return g
	}
	g := diskspace.New(dir, s.cfg.Reserve, nil)
	g.OnChange(func(full bool) {
		if full {
			total, free := g.Space()
			s.cfg.Log.Error("disk space down to the reserve: writes are refused (507) until space is freed; reads and deletes go on", "dir", dir, "free_bytes", free, "total_bytes", total)
		} else {
			s.cfg.Log.Warn("disk space above the reserve again: writes accepted", "dir", dir)
		}
	})
	s.space.byFS[uint64(st.Dev)] = g
	return g
}
