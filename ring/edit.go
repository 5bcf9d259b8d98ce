package ring

import (
	"errors"
	"fmt"
	"math"
)

// ErrNoDevice reports a device id the ring does not hold.
var ErrNoDevice = errors.New("ring: no such device")

// Edits return a new ring with a higher version and leave the receiver as it
// was. They change the device list only; slots move at the next Rebalance.

// NextID returns an unused device id.
func (r *Ring) NextID() uint32 {
	var next uint32
	for _, d := range r.Devices {
		if d.ID >= next {
			next = d.ID + 1
		}
	}
	return next
}

func validWeight(w float64) error {
	if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
		return fmt.Errorf("ring: weight %v: want a finite number >= 0", w)
	}
	return nil
}

// AddDevice adds an active device. Node and name must be set (an empty
// region or zone is one unnamed domain) and the id and the node/name pair
// unused.
func (r *Ring) AddDevice(d Device) (*Ring, error) {
	if d.Node == "" || d.Name == "" {
		return nil, fmt.Errorf("ring: device needs a node and a name")
	}
	for _, s := range []string{d.Region, d.Zone, d.Node, d.Name} {
		if len(s) > 255 {
			return nil, fmt.Errorf("ring: device label %.20q... is longer than 255 bytes", s)
		}
	}
	if err := validWeight(d.Weight); err != nil {
		return nil, err
	}
	if len(r.Devices) >= MaxDevices {
		return nil, fmt.Errorf("%w: a ring holds at most %d devices", ErrLayout, MaxDevices)
	}
	for _, o := range r.Devices {
		if o.ID == d.ID {
			return nil, fmt.Errorf("ring: device id %d is taken (by %s/%s)", d.ID, o.Node, o.Name)
		}
		if o.Node == d.Node && o.Name == d.Name {
			return nil, fmt.Errorf("ring: node %s already has a device named %s (id %d)", d.Node, d.Name, o.ID)
		}
	}
	d.State = Active
	c := r.clone()
	c.Devices = append(c.Devices, d)
	c.Version++
	return c, nil
}

// SetWeight changes a device's weight.
func (r *Ring) SetWeight(id uint32, w float64) (*Ring, error) {
	if err := validWeight(w); err != nil {
		return nil, err
	}
	return r.editDevice(id, func(d *Device) error { d.Weight = w; return nil })
}

// SetState changes a device's state. Removing is reached through
// RemoveDevice.
func (r *Ring) SetState(id uint32, s State) (*Ring, error) {
	if s > Removing {
		return nil, fmt.Errorf("ring: unknown state %d", s)
	}
	return r.editDevice(id, func(d *Device) error { d.State = s; return nil })
}

func (r *Ring) editDevice(id uint32, edit func(*Device) error) (*Ring, error) {
	i, ok := r.Index(id)
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrNoDevice, id)
	}
	c := r.clone()
	if err := edit(&c.Devices[i]); err != nil {
		return nil, err
	}
	c.Version++
	return c, nil
}

// RemoveDevice takes a device out of the ring. One that holds no slots
// leaves at once; one that does is marked Removing and leaves at the
// rebalance that moves its last slot (which may take several rebalances,
// since each moves at most M slots of a partition).
func (r *Ring) RemoveDevice(id uint32) (*Ring, error) {
	i, ok := r.Index(id)
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrNoDevice, id)
	}
	for _, s := range r.table {
		if int(s) == i {
			return r.SetState(id, Removing)
		}
	}
	c := r.clone()
	c.dropDevices(func(j int) bool { return j == i })
	c.Version++
	return c, nil
}

// dropDevices removes the devices for which drop is true; they must hold no
// slots. The table is rewritten with the new indices.
func (r *Ring) dropDevices(drop func(i int) bool) {
	remap := make([]uint16, len(r.Devices))
	kept := r.Devices[:0:0]
	for i, d := range r.Devices {
		if drop(i) {
			remap[i] = noDevice
			continue
		}
		remap[i] = uint16(len(kept))
		kept = append(kept, d)
	}
	if len(kept) == len(r.Devices) {
		return
	}
	r.Devices = kept
	if r.table != nil {
		t := make([]uint16, len(r.table))
		for j, s := range r.table {
			t[j] = remap[s]
		}
		r.table = t
	}
}

// WithVersion returns the ring renumbered as version v (a rollback puts an
// older placement back under a newer version).
func (r *Ring) WithVersion(v uint64) *Ring {
	c := r.clone()
	c.Version = v
	return c
}
