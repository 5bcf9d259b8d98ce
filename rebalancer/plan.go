package rebalancer

import (
	"fmt"
	"sort"

	"github.com/strata-storage/strata/ring"
)

// Move is one planned change of a shard's location: every record of
// shard Shard of partition Partition leaves device From (of source ring
// Source) for device To of the target ring. Rebuild moves have a dead
// source: their shards are decoded from the survivors.
type Move struct {
	Partition uint32 `json:"partition"`
	Shard     int    `json:"shard"`
	Source    int    `json:"source"`
	From      uint32 `json:"from"`
	To        uint32 `json:"to"`
	Rebuild   bool   `json:"rebuild,omitempty"`
	Bytes     int64  `json:"bytes"` // estimated
}

// Unit is what one worker does in one walk: the records of one device
// that moves name. A copy unit walks the source device itself; a rebuild
// unit walks a surviving device of each partition (the witness) and
// rebuilds the dead slots of every object it holds a record of.
type Unit struct {
	Kind   string `json:"kind"` // "copy" or "rebuild"
	Source int    `json:"source"`
	Device uint32 `json:"device"` // the device walked
	// copy: (partition, shard) -> target device id
	copies map[uint64]uint32
	// rebuild: partition -> the witness's slot and the slots to rebuild
	rebuilds map[uint32]rebuildSet
	Moves    int   `json:"moves"`
	Bytes    int64 `json:"bytes"` // estimated
}

type rebuildSet struct {
	witness int
	shards  []int
}

func slotKey(p uint32, shard int) uint64 { return uint64(p)<<8 | uint64(shard) }

// Plan is the work between source rings and a target.
type Plan struct {
	Moves []Move
	Units []*Unit
	// Bytes estimates what moves, from each source device's bytes per
	// slot; Minimum is the slot moves that reach the target's per-device
	// counts with nothing moved twice (the ring's minimum).
	Bytes   int64
	Minimum int
}

// Dead reports devices whose shards are lost (failed in the target ring).
func Dead(target *ring.Ring) func(ring.Device) bool {
	return func(d ring.Device) bool {
		if i, ok := target.Index(d.ID); ok {
			return target.Devices[i].State == ring.Failed
		}
		return d.State == ring.Failed
	}
}

// NewPlan lists the moves that bring data placed by sources (oldest
// first) to target, grouped into units. used maps device id to bytes
// stored, for the estimates.
func NewPlan(sources []*ring.Ring, target *ring.Ring, used map[uint32]int64, dead func(ring.Device) bool) (*Plan, error) {
	if !target.Built() {
		return nil, fmt.Errorf("rebalancer: the target ring has no placement yet")
	}
	w := target.Width()
	for _, s := range sources {
		if !s.Built() || s.PartPower != target.PartPower || s.Width() != w {
			return nil, fmt.Errorf("rebalancer: ring v%d and v%d differ in partition power or width; data cannot move between them", s.Version, target.Version)
		}
	}
	p := &Plan{}
	perSlot := func(r *ring.Ring, di int) int64 {
		counts := r.SlotCounts()
		if counts[di] == 0 {
			return 0
		}
		return used[r.Devices[di].ID] / int64(counts[di])
	}
	units := map[[3]uint64]*Unit{}
	unit := func(kind string, src int, dev uint32) *Unit {
		k := [3]uint64{0, uint64(src), uint64(dev)}
		if kind == "rebuild" {
			k[0], k[1] = 1, 0
		}
		u := units[k]
		if u == nil {
			u = &Unit{Kind: kind, Source: int(k[1]), Device: dev, copies: map[uint64]uint32{}, rebuilds: map[uint32]rebuildSet{}}
			units[k] = u
		}
		return u
	}
	slotBytes := make([]map[int]int64, len(sources))
	for si, s := range sources {
		slotBytes[si] = map[int]int64{}
		for di := range s.Devices {
			slotBytes[si][di] = perSlot(s, di)
		}
	}
	for part := uint32(0); part < uint32(target.Partitions()); part++ {
		trow := target.Slots(part)
		seen := make([]map[uint32]bool, w) // per slot: source devices already planned
		var rebuild []int
		var rebuildBytes int64
		for si := len(sources) - 1; si >= 0; si-- {
			s := sources[si]
			srow := s.Slots(part)
			for i := 0; i < w; i++ {
				from, to := s.Devices[srow[i]], target.Devices[trow[i]]
				if from.ID == to.ID || seen[i][from.ID] {
					continue
				}
				if seen[i] == nil {
					seen[i] = map[uint32]bool{}
				}
				seen[i][from.ID] = true
				b := slotBytes[si][int(srow[i])]
				m := Move{Partition: part, Shard: i, Source: si, From: from.ID, To: to.ID, Bytes: b}
				if dead(from) {
					// Rebuilt once, whichever source put it there.
					if !contains(rebuild, i) {
						m.Rebuild = true
						rebuild = append(rebuild, i)
						rebuildBytes += b
						p.Moves = append(p.Moves, m)
					}
					continue
				}
				u := unit("copy", si, from.ID)
				u.copies[slotKey(part, i)] = to.ID
				u.Moves++
				u.Bytes += b
				p.Bytes += b
				p.Moves = append(p.Moves, m)
			}
		}
		if len(rebuild) > 0 {
			// The witness: a live device whose slot stays put, so its
			// records are neither moving nor gone.
			witness := -1
			for i := 0; i < w && witness < 0; i++ {
				d := target.Devices[trow[i]]
				if contains(rebuild, i) || dead(d) {
					continue
				}
				stable := true
				for _, s := range sources {
					stable = stable && s.Devices[s.Slots(part)[i]].ID == d.ID
				}
				if stable {
					witness = i
				}
			}
			if witness < 0 {
				return nil, fmt.Errorf("rebalancer: partition %d has no surviving shard that stays in place to rebuild from", part)
			}
			u := unit("rebuild", 0, target.Devices[trow[witness]].ID)
			u.rebuilds[part] = rebuildSet{witness: witness, shards: rebuild}
			u.Moves += len(rebuild)
			u.Bytes += rebuildBytes
			p.Bytes += rebuildBytes
		}
	}
	for _, u := range units {
		p.Units = append(p.Units, u)
	}
	sort.Slice(p.Units, func(a, b int) bool {
		x, y := p.Units[a], p.Units[b]
		if x.Kind != y.Kind {
			return x.Kind < y.Kind
		}
		if x.Source != y.Source {
			return x.Source < y.Source
		}
		return x.Device < y.Device
	})
	if len(sources) > 0 {
		p.Minimum = minimumMoves(sources[0], target)
	}
	return p, nil
}

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// minimumMoves is the fewest slot moves that take every device from its
// count in old to its count in target: the slots devices gain, plus the
// slots of failed devices, which are lost whatever the target.
func minimumMoves(old, target *ring.Ring) int {
	d := ring.DiffRings(old, target)
	n := 0
	for _, dd := range d.Devices {
		if dd.After > dd.Before {
			n += dd.After - dd.Before
		}
	}
	return n
}

// DomainLoad is the moves and bytes of one device or zone.
type DomainLoad struct {
	Name     string `json:"name"`
	Zone     string `json:"zone,omitempty"`
	MovesOut int    `json:"moves_out"`
	MovesIn  int    `json:"moves_in"`
	BytesOut int64  `json:"bytes_out"`
	BytesIn  int64  `json:"bytes_in"`
	Rebuilds int    `json:"rebuilds_in"`
	DeviceID uint32 `json:"device_id,omitempty"`
}

// Summary is what `strata rebalance plan` shows: the moves and bytes per
// device and per zone, and how long they take at a bandwidth limit.
type Summary struct {
	FromVersion []uint64     `json:"from_versions"`
	ToVersion   uint64       `json:"to_version"`
	Moves       int          `json:"moves"`
	Rebuilds    int          `json:"rebuilds"`
	Minimum     int          `json:"minimum_moves"`
	Bytes       int64        `json:"bytes"`
	Units       int          `json:"units"`
	Devices     []DomainLoad `json:"devices"`
	Zones       []DomainLoad `json:"zones"`
	// Seconds at LimitBytes per second (0: no limit, no estimate).
	LimitBytes int64   `json:"limit_bytes_per_second"`
	Seconds    float64 `json:"estimated_seconds"`
}

// Summarize describes the plan.
func (p *Plan) Summarize(sources []*ring.Ring, target *ring.Ring, limit int64) Summary {
	s := Summary{ToVersion: target.Version, Moves: len(p.Moves), Minimum: p.Minimum, Bytes: p.Bytes, Units: len(p.Units), LimitBytes: limit}
	for _, r := range sources {
		s.FromVersion = append(s.FromVersion, r.Version)
	}
	devs := map[uint32]*DomainLoad{}
	zones := map[string]*DomainLoad{}
	dev := func(id uint32) *DomainLoad {
		if d := devs[id]; d != nil {
			return d
		}
		d := &DomainLoad{DeviceID: id}
		for _, r := range append([]*ring.Ring{target}, sources...) {
			if i, ok := r.Index(id); ok {
				d.Name, d.Zone = r.Devices[i].Node+"/"+r.Devices[i].Name, r.Devices[i].Zone
				break
			}
		}
		devs[id] = d
		return d
	}
	zone := func(name string) *DomainLoad {
		if z := zones[name]; z != nil {
			return z
		}
		z := &DomainLoad{Name: name}
		zones[name] = z
		return z
	}
	for _, m := range p.Moves {
		from, to := dev(m.From), dev(m.To)
		b := m.Bytes
		if m.Rebuild {
			s.Rebuilds++
			to.Rebuilds++
		} else {
			from.MovesOut++
			from.BytesOut += b
			zf := zone(from.Zone)
			zf.MovesOut++
			zf.BytesOut += b
		}
		to.MovesIn++
		to.BytesIn += b
		zt := zone(to.Zone)
		zt.MovesIn++
		zt.BytesIn += b
		if m.Rebuild {
			zt.Rebuilds++
		}
	}
	for _, d := range devs {
		s.Devices = append(s.Devices, *d)
	}
	for _, z := range zones {
		s.Zones = append(s.Zones, *z)
	}
	sort.Slice(s.Devices, func(a, b int) bool { return s.Devices[a].DeviceID < s.Devices[b].DeviceID })
	sort.Slice(s.Zones, func(a, b int) bool { return s.Zones[a].Name < s.Zones[b].Name })
	if limit > 0 {
		s.Seconds = float64(p.Bytes) / float64(limit)
	}
	return s
}
