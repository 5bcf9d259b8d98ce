package ring

import (
	"errors"
	"fmt"
	"sort"

	"github.com/zeebo/xxh3"
)

// Device is one placement target: a disk (here a pool's chunk volume) with
// its place in the failure-domain hierarchy.
type Device struct {
	ID     uint32
	Region string
	Zone   string // rack
	Node   string
	Name   string
	Weight float64
}

// Ring maps partitions to ordered device lists.
type Ring struct {
	Version   uint64
	PartPower uint8
	K, M      int
	Devices   []Device
	// table holds, for partition p, the indices into Devices of its K+M
	// slots at table[p*(K+M) : (p+1)*(K+M)].
	table []uint16
}

// Limits of the layout.
const (
	MaxPartPower = 24
	MaxDevices   = 1 << 16
	MaxShards    = 256 // Reed-Solomon over GF(2^8)
)

// ErrLayout reports an EC layout the devices cannot hold.
var ErrLayout = errors.New("ring: layout does not fit")

// Partitions is the number of partitions.
func (r *Ring) Partitions() int { return 1 << r.PartPower }

// Width is K+M, the number of slots per partition.
func (r *Ring) Width() int { return r.K + r.M }

// Partition returns the partition of an object key.
func (r *Ring) Partition(bucket, key string) uint32 {
	h := xxh3.New()
	h.WriteString(bucket)
	h.WriteString("/")
	h.WriteString(key)
	return uint32(h.Sum64() >> (64 - uint(r.PartPower)))
}

// Slots returns the device indices (into Devices) of a partition, shard 0
// first. The slice aliases the ring; callers must not modify it.
func (r *Ring) Slots(part uint32) []uint16 {
	w := r.Width()
	return r.table[int(part)*w : int(part+1)*w]
}

// Build places K+M distinct devices on every partition, spreading each
// partition over as many zones, then nodes, as the devices allow.
func Build(devices []Device, partPower uint8, k, m int) (*Ring, error) {
	if k < 1 || m < 0 || k+m > MaxShards {
		return nil, fmt.Errorf("%w: EC %d+%d is not a valid layout", ErrLayout, k, m)
	}
	if len(devices) < k+m {
		return nil, fmt.Errorf("%w: EC %d+%d needs at least %d devices, have %d", ErrLayout, k, m, k+m, len(devices))
	}
	if len(devices) > MaxDevices {
		return nil, fmt.Errorf("%w: %d devices, at most %d", ErrLayout, len(devices), MaxDevices)
	}
	if partPower > MaxPartPower {
		return nil, fmt.Errorf("%w: part power %d, at most %d", ErrLayout, partPower, MaxPartPower)
	}
	seen := map[uint32]bool{}
	for _, d := range devices {
		if seen[d.ID] {
			return nil, fmt.Errorf("ring: duplicate device id %d", d.ID)
		}
		seen[d.ID] = true
	}
	r := &Ring{Version: 1, PartPower: partPower, K: k, M: m, Devices: append([]Device(nil), devices...)}
	order := interleave(r.Devices)
	w, n := k+m, len(order)
	r.table = make([]uint16, r.Partitions()*w)
	for p := 0; p < r.Partitions(); p++ {
		for i := 0; i < w; i++ {
			r.table[p*w+i] = order[(p+i)%n]
		}
	}
	return r, nil
}

// interleave orders device indices so that neighbours differ in zone first
// and node second: zones take turns, and inside a zone nodes take turns.
func interleave(devs []Device) []uint16 {
	type group struct {
		key   string
		items []uint16
	}
	groupBy := func(idx []uint16, key func(Device) string) []*group {
		byKey := map[string]*group{}
		var gs []*group
		for _, i := range idx {
			k := key(devs[i])
			g := byKey[k]
			if g == nil {
				g = &group{key: k}
				byKey[k] = g
				gs = append(gs, g)
			}
			g.items = append(g.items, i)
		}
		sort.Slice(gs, func(a, b int) bool { return gs[a].key < gs[b].key })
		return gs
	}
	roundRobin := func(lists [][]uint16) []uint16 {
		var out []uint16
		for more := true; more; {
			more = false
			for j := range lists {
				if len(lists[j]) > 0 {
					out = append(out, lists[j][0])
					lists[j] = lists[j][1:]
					more = true
				}
			}
		}
		return out
	}
	all := make([]uint16, len(devs))
	for i := range devs {
		all[i] = uint16(i)
	}
	sort.Slice(all, func(a, b int) bool { return devs[all[a]].ID < devs[all[b]].ID })
	var perZone [][]uint16
	for _, z := range groupBy(all, func(d Device) string { return d.Region + "\x00" + d.Zone }) {
		var perNode [][]uint16
		for _, n := range groupBy(z.items, func(d Device) string { return d.Node }) {
			perNode = append(perNode, n.items)
		}
		perZone = append(perZone, roundRobin(perNode))
	}
	return roundRobin(perZone)
}
