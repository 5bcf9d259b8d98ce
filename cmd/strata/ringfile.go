package main

import (
	"github.com/strata-storage/strata/admin"
	"github.com/strata-storage/strata/ring"
)

// ringFiles edits ring files offline for `strata ring` without --server.
type ringFiles struct{}

func (ringFiles) Create(path string, partPower uint8, ec string, minPartHours uint16) (admin.RingInfo, error) {
	k, m, err := ring.ParseEC(ec)
	if err != nil {
		return admin.RingInfo{}, err
	}
	r, err := ring.New(partPower, k, m, minPartHours)
	if err != nil {
		return admin.RingInfo{}, err
	}
	if err := r.Save(path); err != nil {
		return admin.RingInfo{}, err
	}
	return r.Info(), nil
}

func (ringFiles) Info(path string) (admin.RingInfo, error) {
	r, err := ring.Load(path)
	if err != nil {
		return admin.RingInfo{}, err
	}
	return r.Info(), nil
}

// edit applies one device edit to the file.
func edit(path string, change func(*ring.Ring) (*ring.Ring, error)) (admin.RingInfo, error) {
	r, err := ring.Load(path)
	if err != nil {
		return admin.RingInfo{}, err
	}
	next, err := change(r)
	if err != nil {
		return admin.RingInfo{}, err
	}
	if err := next.Save(path); err != nil {
		return admin.RingInfo{}, err
	}
	return next.Info(), nil
}

func (ringFiles) AddDevice(path string, d admin.RingDevice, id int64) (admin.RingInfo, error) {
	return edit(path, func(r *ring.Ring) (*ring.Ring, error) {
		d.ID = r.NextID()
		if id >= 0 {
			d.ID = uint32(id)
		}
		return r.AddDevice(d)
	})
}

func (ringFiles) SetWeight(path string, id uint32, w float64) (admin.RingInfo, error) {
	return edit(path, func(r *ring.Ring) (*ring.Ring, error) { return r.SetWeight(id, w) })
}

func (ringFiles) SetState(path string, id uint32, s admin.RingState) (admin.RingInfo, error) {
	return edit(path, func(r *ring.Ring) (*ring.Ring, error) { return r.SetState(id, s) })
}

func (ringFiles) RemoveDevice(path string, id uint32) (admin.RingInfo, error) {
	return edit(path, func(r *ring.Ring) (*ring.Ring, error) { return r.RemoveDevice(id) })
}

func (ringFiles) Rebalance(path string, ignoreMinPartHours bool, stored int64) (admin.RebalanceAnswer, error) {
	r, err := ring.Load(path)
	if err != nil {
		return admin.RebalanceAnswer{}, err
	}
	next, res, err := r.Rebalance(ring.RebalanceOptions{IgnoreMinPartHours: ignoreMinPartHours})
	if err != nil {
		return admin.RebalanceAnswer{}, err
	}
	if err := next.Save(path); err != nil {
		return admin.RebalanceAnswer{}, err
	}
	est := int64(-1)
	if stored >= 0 && res.Slots > 0 {
		est = int64(float64(stored) * float64(res.Moved) / float64(res.Slots))
	}
	return admin.RebalanceAnswer{Version: next.Version, Result: *res, BytesEstimate: est}, nil
}

func (ringFiles) Diff(oldPath, newPath string) (admin.RingDiffAnswer, error) {
	old, err := ring.Load(oldPath)
	if err != nil {
		return admin.RingDiffAnswer{}, err
	}
	cur, err := ring.Load(newPath)
	if err != nil {
		return admin.RingDiffAnswer{}, err
	}
	return admin.RingDiffAnswer{From: old.Version, To: cur.Version, Diff: ring.DiffRings(old, cur)}, nil
}
