package objectstore

import (
	"fmt"
	"sync"
)

// Versions known to be damaged beyond repair. A HEAD reads only records,
// so on its own it would say 200 for an object whose GET fails; once a
// read or the scrub has found a version's data lost, HEAD answers as GET
// does. The set is bounded and kept in memory: after a restart the scrub
// (or the next GET) finds the damage again. A version that is healed after
// all (a device came back) leaves the set.

// maxDamaged bounds the set; past it the oldest entries are forgotten.
const maxDamaged = 10000

type damagedSet struct {
	mu    sync.Mutex
	why   map[[16]byte]string
	order [][16]byte
}

func (d *damagedSet) mark(id [16]byte, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.why == nil {
		d.why = map[[16]byte]string{}
	}
	if _, ok := d.why[id]; !ok {
		d.order = append(d.order, id)
	}
	d.why[id] = err.Error()
	for len(d.order) > maxDamaged {
		delete(d.why, d.order[0])
		d.order = d.order[1:]
	}
}

func (d *damagedSet) clear(id [16]byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.why, id) // its slot in order is dropped when it comes up
}

// check returns ErrDamaged for a version known to be damaged.
func (d *damagedSet) check(id [16]byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if why, ok := d.why[id]; ok {
		if len(why) > 0 {
			return fmt.Errorf("%w (found earlier: %s)", ErrDamaged, trimDamaged(why))
		}
		return ErrDamaged
	}
	return nil
}

// trimDamaged drops the ErrDamaged text a stored reason starts with.
func trimDamaged(why string) string {
	prefix := ErrDamaged.Error() + ": "
	if len(why) > len(prefix) && why[:len(prefix)] == prefix {
		return why[len(prefix):]
	}
	return why
}
