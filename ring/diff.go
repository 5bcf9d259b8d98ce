package ring

import "sort"

// Diff compares the placement of two rings device by device (matched by
// id, so devices may have been added or dropped in between).
type Diff struct {
	// Moved is how many slots changed device; PartitionsMoved how many
	// partitions had at least one; MaxPerPartition the most slots of one
	// partition that moved.
	Moved           int `json:"moved"`
	PartitionsMoved int `json:"partitions_moved"`
	MaxPerPartition int `json:"max_per_partition"`
	// Slots is partitions * width of the newer ring.
	Slots   int          `json:"slots"`
	Devices []DeviceDiff `json:"devices"`
}

// DeviceDiff is one device's part in a Diff.
type DeviceDiff struct {
	ID     uint32 `json:"id"`
	Node   string `json:"node"`
	Name   string `json:"name"`
	Before int    `json:"before"` // slots held
	After  int    `json:"after"`  // slots held
	In     int    `json:"in"`     // slots gained and lost
	Out    int    `json:"out"`    // slots gained and lost
}

// DiffRings compares old and new. Rings of different partition power or
// layout cannot be compared slot by slot; every slot counts as moved then.
func DiffRings(old, new *Ring) Diff {
	if old == nil || !old.Built() || old.PartPower != new.PartPower || old.Width() != new.Width() {
		return diffTables(nil, new)
	}
	return diffTables(old, new)
}

func diffTables(old, new *Ring) Diff {
	byID := map[uint32]*DeviceDiff{}
	var out Diff
	get := func(d *Device) *DeviceDiff {
		dd := byID[d.ID]
		if dd == nil {
			dd = &DeviceDiff{ID: d.ID, Node: d.Node, Name: d.Name}
			byID[d.ID] = dd
		}
		return dd
	}
	if new.Built() {
		out.Slots = len(new.table)
	}
	newDevs := make([]*DeviceDiff, len(new.Devices))
	for i := range new.Devices {
		newDevs[i] = get(&new.Devices[i])
	}
	var oldDevs []*DeviceDiff
	if old != nil {
		oldDevs = make([]*DeviceDiff, len(old.Devices))
		for i := range old.Devices {
			oldDevs[i] = get(&old.Devices[i])
		}
		for _, s := range old.table {
			oldDevs[s].Before++
		}
	}
	w := new.Width()
	movedHere := 0
	for pos, s := range new.table {
		nd := newDevs[s]
		nd.After++
		if old != nil && old.table != nil {
			if od := oldDevs[old.table[pos]]; od != nd {
				od.Out++
				nd.In++
				out.Moved++
				movedHere++
			}
		} else {
			nd.In++
		}
		if pos%w == w-1 {
			if movedHere > 0 {
				out.PartitionsMoved++
				out.MaxPerPartition = max(out.MaxPerPartition, movedHere)
			}
			movedHere = 0
		}
	}
	for _, dd := range byID {
		out.Devices = append(out.Devices, *dd)
	}
	sort.Slice(out.Devices, func(a, b int) bool { return out.Devices[a].ID < out.Devices[b].ID })
	return out
}
