package ring

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/zeebo/xxh3"
)

// State is a device's part in placement.
type State uint8

const (
	// Active devices receive slots in proportion to their weight.
	Active State = iota
	// Draining devices keep serving the slots they hold while rebalances
	// move them away (at most M per partition per rebalance); they get no
	// new ones. Setting a draining device active again stops the drain.
	Draining
	// Failed devices are treated as lost: the next rebalance moves all of
	// their slots at once, ignoring min-part-hours.
	Failed
	// Removing devices drain like Draining ones and leave the ring at the
	// rebalance that moves their last slot away.
	Removing
)

var stateNames = [...]string{"active", "draining", "failed", "removing"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// ParseState parses a state name.
func ParseState(s string) (State, error) {
	for i, n := range stateNames {
		if strings.EqualFold(s, n) {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("ring: unknown device state %q (want active, draining, failed or removing)", s)
}

// Device is one placement target: a disk (here a pool's chunk volume) with
// its place in the failure-domain hierarchy region > zone (rack) > node.
type Device struct {
	ID     uint32  `json:"id"`
	Region string  `json:"region"`
	Zone   string  `json:"zone"` // rack
	Node   string  `json:"node"`
	Name   string  `json:"name"`
	Weight float64 `json:"weight"`
	State  State   `json:"state"`
}

// eligible reports whether the device may receive new slots.
func (d *Device) eligible() bool { return d.State == Active && d.Weight > 0 }

// Ring maps partitions to ordered device lists. A Ring value is not
// modified once published: edits and rebalances return a new Ring that
// shares nothing mutable with the old one, so readers need no locks.
type Ring struct {
	Version   uint64
	PartPower uint8
	K, M      int
	// MinPartHours is how long a partition that had a slot moved is left
	// alone by later rebalances (failed devices excepted), so the data of
	// one move is in place before the next; see Swift's min_part_hours.
	MinPartHours uint16
	// Epoch anchors lastMove; it is moved forward when hours overflow.
	Epoch   time.Time
	Devices []Device
	// table holds, for partition p, the indices into Devices of its K+M
	// slots at table[p*(K+M) : (p+1)*(K+M)]. Nil until the first rebalance.
	table []uint16
	// lastMove holds, per partition, the hour (since Epoch) a slot of it
	// last moved, plus one; 0 means never.
	lastMove []uint16
}

// Limits of the layout.
const (
	MaxPartPower = 24
	MaxDevices   = 1<<16 - 1 // 0xFFFF marks an empty slot while building
	MaxShards    = 256       // Reed-Solomon over GF(2^8)
	noDevice     = 0xFFFF
)

// ErrLayout reports an EC layout the devices cannot hold.
var ErrLayout = errors.New("ring: layout does not fit")

// Partitions is the number of partitions.
func (r *Ring) Partitions() int { return 1 << r.PartPower }

// Width is K+M, the number of slots per partition.
func (r *Ring) Width() int { return r.K + r.M }

// Built reports whether the ring has a placement table (it has been
// rebalanced at least once).
func (r *Ring) Built() bool { return r.table != nil }

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

// Index returns the index in Devices of the device with this id.
func (r *Ring) Index(id uint32) (int, bool) {
	for i := range r.Devices {
		if r.Devices[i].ID == id {
			return i, true
		}
	}
	return -1, false
}

// SlotCounts returns how many slots each device holds, indexed like Devices.
func (r *Ring) SlotCounts() []int {
	out := make([]int, len(r.Devices))
	for _, d := range r.table {
		out[d]++
	}
	return out
}

// New returns an empty ring: no devices and no table yet.
func New(partPower uint8, k, m int, minPartHours uint16) (*Ring, error) {
	if k < 1 || m < 0 || k+m > MaxShards {
		return nil, fmt.Errorf("%w: EC %d+%d is not a valid layout", ErrLayout, k, m)
	}
	if partPower > MaxPartPower {
		return nil, fmt.Errorf("%w: part power %d, at most %d", ErrLayout, partPower, MaxPartPower)
	}
	return &Ring{PartPower: partPower, K: k, M: m, MinPartHours: minPartHours, Epoch: time.Now().UTC().Truncate(time.Hour)}, nil
}

// Build returns a ring over these devices, freshly placed.
func Build(devices []Device, partPower uint8, k, m int) (*Ring, error) {
	r, err := New(partPower, k, m, 0)
	if err != nil {
		return nil, err
	}
	for _, d := range devices {
		if r, err = r.AddDevice(d); err != nil {
			return nil, err
		}
	}
	r, _, err = r.Rebalance(RebalanceOptions{})
	return r, err
}

// clone copies the device list; the table is shared (it is never modified
// in place).
func (r *Ring) clone() *Ring {
	c := *r
	c.Devices = append([]Device(nil), r.Devices...)
	return &c
}

// MarshalText writes the state's name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	*s = v
	return err
}

// Info is a ring's header, devices and dispersion report: what `strata ring
// show` prints, offline or from a running node.
type Info struct {
	Version      uint64           `json:"version"`
	PartPower    uint8            `json:"part_power"`
	K            int              `json:"k"`
	M            int              `json:"m"`
	MinPartHours uint16           `json:"min_part_hours"`
	Built        bool             `json:"built"`
	Devices      []Device         `json:"devices"`
	Report       DispersionReport `json:"report"`
}

// Info describes the ring.
func (r *Ring) Info() Info {
	return Info{Version: r.Version, PartPower: r.PartPower, K: r.K, M: r.M, MinPartHours: r.MinPartHours, Built: r.Built(),
		Devices: r.Devices, Report: r.Dispersion()}
}

// BytesEstimate estimates the bytes a rebalance moves: each slot moving off
// a device carries that device's bytes per slot before the move. used maps
// device id to bytes stored.
func (d Diff) BytesEstimate(used map[uint32]int64) int64 {
	var total int64
	for _, dd := range d.Devices {
		if dd.Before > 0 && dd.Out > 0 {
			total += used[dd.ID] / int64(dd.Before) * int64(dd.Out)
		}
	}
	return total
}

// ParseEC parses an erasure layout "K+M".
func ParseEC(s string) (k, m int, err error) {
	a, b, ok := strings.Cut(s, "+")
	k, err1 := strconv.Atoi(a)
	m, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || k < 1 || m < 0 || k+m > MaxShards {
		return 0, 0, fmt.Errorf("invalid erasure coding layout %q: want K+M, for example 2+2 or 4+2", s)
	}
	return k, m, nil
}
