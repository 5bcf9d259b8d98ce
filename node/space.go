package node

import (
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

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

// guardFor returns the guard of dir's filesystem (nil if dir cannot be
// examined: then nothing is guarded there).
func (n *Node) guardFor(dir string) *diskspace.Guard {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		n.log.Warn("disk space: cannot examine the filesystem; writes there are not guarded", "dir", dir, "err", err)
		return nil
	}
	n.space.mu.Lock()
	defer n.space.mu.Unlock()
	if n.space.byFS == nil {
		n.space.byFS = map[uint64]*diskspace.Guard{}
	}
	if g := n.space.byFS[uint64(st.Dev)]; g != nil {
		return g
	}
	g := diskspace.New(dir, n.cfg.DiskReserve, nil)
	g.OnChange(func(full bool) {
		if full {
			total, free := g.Space()
			n.log.Error("disk space down to the reserve: writes are refused (507) until space is freed; reads and deletes go on", "dir", dir, "free_bytes", free, "total_bytes", total)
		} else {
			n.log.Warn("disk space above the reserve again: writes accepted", "dir", dir)
		}
	})
	n.space.byFS[uint64(st.Dev)] = g
	return g
}

// localSpace is the guard of a local device (nil for others).
func (n *Node) localSpace(id uint32) *diskspace.Guard {
	n.ringMu.Lock()
	defer n.ringMu.Unlock()
	if ld := n.local[id]; ld != nil {
		return ld.space
	}
	return nil
}

// registerDeviceFull exports strata_device_full for one device.
func (n *Node) registerDeviceFull(device string, g *diskspace.Guard) {
	if n.Registry == nil || g == nil {
		return
	}
	_ = n.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_device_full", Help: "1 while the device's filesystem is down to its reserve and writes to it are refused.",
		ConstLabels: prometheus.Labels{"device": device},
	}, func() float64 {
		if g.Full() {
			return 1
		}
		return 0
	}))
}
