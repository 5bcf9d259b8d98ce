package ring

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

// RebalanceOptions tune one rebalance.
type RebalanceOptions struct {
	// Now is the time the moves are stamped with (default time.Now()).
	Now time.Time
	// IgnoreMinPartHours lets partitions moved less than MinPartHours ago
	// move again; the per-rebalance limit of M moves per partition holds
	// regardless.
	IgnoreMinPartHours bool
}

// RebalanceResult says what a rebalance did.
type RebalanceResult struct {
	Diff
	// Held is how many slots should have moved (off a draining or removing
	// device, or to restore dispersion) but were held back by the per-
	// partition limit or min-part-hours; rebalance again later.
	Held int `json:"held"`
	// Removed lists devices that left the ring with their last slot.
	Removed []Device `json:"removed"`
}

// Rebalance places every partition's slots and returns the new ring,
// leaving the receiver unchanged. Slots stay where they are unless they must
// move: off failed devices (always), off draining or removing devices,
// into a wider spread when the failure domains allow one, and then as few
// as bring every device to its weighted share. No partition moves more than
// max(M,1) slots in one rebalance, and a partition moved within
// MinPartHours moves only off failed devices.
func (r *Ring) Rebalance(opts RebalanceOptions) (*Ring, *RebalanceResult, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	w := r.Width()
	top, ok := newTopology(r.Devices, w, r.Partitions())
	if !ok {
		return nil, nil, fmt.Errorf("%w: EC %d+%d needs %d active devices with weight > 0, have %d", ErrLayout, r.K, r.M, w, countEligible(r.Devices))
	}
	next := r.clone()
	next.Version++
	fresh := r.table == nil
	if fresh {
		next.table = make([]uint16, r.Partitions()*w)
		for i := range next.table {
			next.table[i] = noDevice
		}
		next.lastMove = make([]uint16, r.Partitions())
	} else {
		next.table = append([]uint16(nil), r.table...)
		next.lastMove = append([]uint16(nil), r.lastMove...)
	}
	b := newBuilder(next, top, fresh, opts)
	if !fresh {
		b.orig = r.table
	}
	b.index()
	for p := 0; p < r.Partitions(); p++ {
		b.repair(p)
	}
	b.balance()
	if !fresh {
		b.tidy()
		b.stampMoves()
	}
	res := &RebalanceResult{Held: b.held}
	if r.table != nil {
		res.Diff = diffTables(r, next)
	} else {
		res.Diff = diffTables(nil, next)
	}
	counts := next.SlotCounts()
	next.dropDevices(func(i int) bool {
		if next.Devices[i].State == Removing && counts[i] == 0 {
			res.Removed = append(res.Removed, next.Devices[i])
			return true
		}
		return false
	})
	return next, res, nil
}

func countEligible(devs []Device) int {
	n := 0
	for i := range devs {
		if devs[i].eligible() {
			n++
		}
	}
	return n
}

// builder holds the working state of one rebalance.
type builder struct {
	r     *Ring
	top   *topology
	w     int
	fresh bool
	guard int
	count []int
	dcnt  [tiers][]int
	// slotsOf lists each device's table positions; entries go stale when
	// a slot moves away and are skipped then.
	slotsOf [][]int32
	moved   []uint8
	orig    []uint16 // the table being rebalanced; nil for a fresh ring
	locked  func(p int) bool
	hour    int64 // this rebalance, in hours since the ring's epoch
	held    int
	// per-partition scratch: pc[t][x] counts the partition's slots in
	// domain x; inRow[i] == p+1 when device i holds a slot of partition p.
	pc    [tiers][]uint8
	inRow []int32
	rng   *rand.Rand
}

func newBuilder(r *Ring, top *topology, fresh bool, opts RebalanceOptions) *builder {
	b := &builder{r: r, top: top, w: r.Width(), fresh: fresh, guard: max(r.M, 1), count: make([]int, len(r.Devices)), inRow: make([]int32, len(r.Devices)),
		rng: rand.New(rand.NewPCG(r.Version, uint64(len(r.Devices))))}
	for t := 0; t < tiers; t++ {
		b.dcnt[t] = make([]int, len(top.names[t]))
		b.pc[t] = make([]uint8, len(top.names[t]))
	}
	b.moved = make([]uint8, r.Partitions())
	b.hour = b.hourOf(opts.Now)
	b.locked = func(p int) bool {
		if opts.IgnoreMinPartHours || r.MinPartHours == 0 || b.fresh {
			return false
		}
		last := int64(r.lastMove[p]) - 1
		return last >= 0 && b.hour-last < int64(r.MinPartHours)
	}
	return b
}

// hourOf returns whole hours since the ring's epoch, moving the epoch (and
// the stamps) forward when the stamps would overflow 16 bits.
func (b *builder) hourOf(now time.Time) int64 {
	r := b.r
	if r.Epoch.IsZero() || now.Before(r.Epoch) {
		r.Epoch = now.UTC().Truncate(time.Hour)
		for i := range r.lastMove {
			r.lastMove[i] = 0
		}
	}
	h := int64(now.Sub(r.Epoch) / time.Hour)
	if h+1 >= 0xFFFF {
		shift := h - 1<<14
		r.Epoch = r.Epoch.Add(time.Duration(shift) * time.Hour)
		lm := make([]uint16, len(r.lastMove))
		for i, v := range r.lastMove {
			if int64(v) > shift {
				lm[i] = uint16(int64(v) - shift)
			}
		}
		r.lastMove = lm
		h -= shift
	}
	return h
}

func (b *builder) index() {
	b.slotsOf = make([][]int32, len(b.r.Devices))
	for pos, d := range b.r.table {
		if d == noDevice {
			continue
		}
		b.add(int(d), int32(pos))
	}
}

func (b *builder) add(d int, pos int32) {
	b.touch(pos, uint16(d))
	b.count[d]++
	for t := 0; t < tiers; t++ {
		b.dcnt[t][b.top.dom[t][d]]++
	}
	b.slotsOf[d] = append(b.slotsOf[d], pos)
}

func (b *builder) remove(pos int32) {
	d := int(b.r.table[pos])
	b.touch(pos, noDevice)
	b.count[d]--
	for t := 0; t < tiers; t++ {
		b.dcnt[t][b.top.dom[t][d]]--
	}
}

// touch sets a slot and keeps moved[p], the number of p's slots that differ
// from the ring being rebalanced, current.
func (b *builder) touch(pos int32, d uint16) {
	if b.orig != nil {
		p := int(pos) / b.w
		if b.r.table[pos] != b.orig[pos] {
			b.moved[p]--
		}
		if d != b.orig[pos] {
			b.moved[p]++
		}
	}
	b.r.table[pos] = d
}

// changed reports whether the slot at pos already moved in this rebalance;
// moving it again costs nothing more.
func (b *builder) changed(pos int32) bool { return b.orig != nil && b.r.table[pos] != b.orig[pos] }

// canMove reports whether the slot at pos may move: always in a fresh ring
// or if it moved already; else if its partition is within the per-
// rebalance limit and not held by min-part-hours.
func (b *builder) canMove(pos int32) bool {
	return b.fresh || b.changed(pos) || b.movable(int(pos)/b.w)
}

func (b *builder) row(p int) []uint16 { return b.r.table[p*b.w : (p+1)*b.w] }

// movable reports whether partition p may have one more slot moved.
func (b *builder) movable(p int) bool {
	return b.fresh || (int(b.moved[p]) < b.guard && !b.locked(p))
}

// load fills the per-partition scratch counts for p; unload clears them.
func (b *builder) load(p int) {
	for _, d := range b.row(p) {
		if d == noDevice {
			continue
		}
		b.inRow[d] = int32(p + 1)
		for t := 0; t < tiers; t++ {
			b.pc[t][b.top.dom[t][d]]++
		}
	}
}

func (b *builder) unload(p int) {
	for _, d := range b.row(p) {
		if d == noDevice {
			continue
		}
		b.inRow[d] = 0
		for t := 0; t < tiers; t++ {
			b.pc[t][b.top.dom[t][d]] = 0
		}
	}
}

func (b *builder) excess(d int) int { return b.count[d] - b.top.target[d] }

// repair empties the slots of p that must move and fills every empty slot.
func (b *builder) repair(p int) {
	row := b.row(p)
	base := int32(p * b.w)
	if !b.fresh {
		// Off failed devices, whatever the limits say: those shards are
		// gone already.
		for i, d := range row {
			if d != noDevice && b.r.Devices[d].State == Failed {
				b.remove(base + int32(i))
			}
		}
		for i, d := range row {
			if d == noDevice || b.top.eligible[d] {
				continue
			}
			if !b.canMove(base + int32(i)) {
				b.held++
				continue
			}
			b.remove(base + int32(i))
		}
		b.fixDispersion(p)
	}
	b.load(p)
	for i, d := range row {
		if d != noDevice {
			continue
		}
		u := b.pick(p)
		b.add(u, base+int32(i))
		b.inRow[u] = int32(p + 1)
		for t := 0; t < tiers; t++ {
			b.pc[t][b.top.dom[t][u]]++
		}
	}
	b.unload(p)
	if b.fresh {
		// Shards 0..K-1 carry the reads; rotating fresh rows spreads them
		// over devices in proportion to slots.
		b.rotate(p, p%b.w)
	}
}

// rotate turns partition p's row left by n (fresh rows only: no data yet).
func (b *builder) rotate(p, n int) {
	row := b.row(p)
	if n == 0 {
		return
	}
	var tmp [MaxShards]uint16
	copy(tmp[:], row)
	for i := range row {
		row[i] = tmp[(i+n)%len(row)]
	}
	base := int32(p * b.w)
	for i, d := range row {
		list := b.slotsOf[d]
		for j := len(list) - 1; j >= 0; j-- {
			if list[j] >= base && list[j] < base+int32(b.w) {
				list[j] = base + int32(i)
				break
			}
		}
	}
}

// fixDispersion empties slots of p that put more of it in one domain than
// the limits allow, the most over-target device first.
func (b *builder) fixDispersion(p int) {
	row := b.row(p)
	base := int32(p * b.w)
	for {
		b.load(p)
		victim := -1
		for t := 0; t < tiers && victim < 0; t++ {
			for i, d := range row {
				if d == noDevice {
					continue
				}
				x := b.top.dom[t][d]
				if int(b.pc[t][x]) <= b.top.limit[t][x] || b.top.limit[t][x] == 0 {
					continue
				}
				if victim < 0 || b.excess(int(d)) > b.excess(int(row[victim])) {
					victim = i
				}
			}
		}
		b.unload(p)
		if victim < 0 {
			return
		}
		if !b.canMove(base + int32(victim)) {
			b.held++
			return
		}
		b.remove(base + int32(victim))
	}
}

// pick returns the device for an empty slot of the loaded partition p: the
// neediest one the limits allow, descending region, zone, node. When slots
// held back on ineligible devices leave no such device, limits are relaxed
// from the outermost tier in.
func (b *builder) pick(p int) int {
	if !b.fresh {
		// Few slots move in a rebalance: find the neediest device that
		// fits outright, so each moved slot lands where balance wants it
		// and needs no second move.
		best, bestNeed := -1, 0
		top := b.top
		for c := range b.r.Devices {
			if !top.eligible[c] || b.inRow[c] == int32(p+1) {
				continue
			}
			need := top.target[c] - b.count[c]
			if best >= 0 && need <= bestNeed {
				continue
			}
			cr, cz, cn := top.dom[tierRegion][c], top.dom[tierZone][c], top.dom[tierNode][c]
			if int(b.pc[tierRegion][cr]) >= top.limit[tierRegion][cr] || int(b.pc[tierZone][cz]) >= top.limit[tierZone][cz] || int(b.pc[tierNode][cn]) >= top.limit[tierNode][cn] {
				continue
			}
			best, bestNeed = c, need
		}
		if best >= 0 {
			return best
		}
	}
	for relax := 0; relax <= tiers; relax++ {
		if d := b.descend(p, -1, 0, relax); d >= 0 {
			return d
		}
	}
	panic("ring: no device for a slot although enough are eligible")
}

func (b *builder) descend(p int, x int32, tier, relax int) int {
	var kids []int32
	switch {
	case x < 0:
		kids = b.top.roots
	default:
		kids = b.top.children[tier-1][x]
	}
	var tried uint64
	var triedBig map[int32]bool
	for {
		// The domain furthest below its target.
		best, bestNeed := -1, 0.0
		for j, c := range kids {
			if j < 64 && tried&(1<<j) != 0 || j >= 64 && triedBig[c] {
				continue
			}
			// A little noise keeps devices that happen to be equally
			// needy from being paired partition after partition: such
			// pairs fail together and leave the balancer no room.
			need := b.rng.Float64() * 3
			if tier == tiers {
				if b.inRow[c] == int32(p+1) {
					continue
				}
				need += float64(b.top.target[c] - b.count[c])
			} else {
				if tier >= relax && int(b.pc[tier][c]) >= b.top.limit[tier][c] {
					continue
				}
				need += float64(b.top.domTarget[tier][c] - b.dcnt[tier][c])
			}
			if best < 0 || need > bestNeed {
				best, bestNeed = j, need
			}
		}
		if best < 0 {
			return -1
		}
		c := kids[best]
		if tier == tiers {
			return int(c)
		}
		if d := b.descend(p, c, tier+1, relax); d >= 0 {
			return d
		}
		if best < 64 {
			tried |= 1 << best
		} else {
			if triedBig == nil {
				triedBig = map[int32]bool{}
			}
			triedBig[c] = true
		}
	}
}

// fits reports whether device u may take slot i of partition p.
func (b *builder) fits(p, i, u int) bool {
	top := b.top
	ur, uz, un := top.dom[tierRegion][u], top.dom[tierZone][u], top.dom[tierNode][u]
	cr, cz, cn := 0, 0, 0
	for j, s := range b.row(p) {
		if j == i || s == noDevice {
			continue
		}
		if int(s) == u {
			return false
		}
		if top.dom[tierRegion][s] == ur {
			cr++
		}
		if top.dom[tierZone][s] == uz {
			cz++
		}
		if top.dom[tierNode][s] == un {
			cn++
		}
	}
	return cr < top.limit[tierRegion][ur] && cz < top.limit[tierZone][uz] && cn < top.limit[tierNode][un]
}

// balance brings devices to their targets. Moves that only redirect a
// slot already moved in this rebalance cost nothing, so those are tried
// first: single moves from devices above target to devices below, then
// chains; then the same with slots that have not moved yet.
func (b *builder) balance() {
	budget := 128*len(b.r.table) + 1<<23
	for _, freeOnly := range []bool{true, false} {
		if freeOnly && b.fresh {
			continue
		}
		b.directMoves(freeOnly)
		for b.unbalanced() && budget > 0 && b.augment(&budget, freeOnly) {
		}
	}
}

// directMoves moves slots straight from devices above their target to
// devices below it, one slot per move, so every move is one the targets
// require.
func (b *builder) directMoves(freeOnly bool) {
	var under, over []int
	for i := range b.r.Devices {
		switch {
		case !b.top.eligible[i]:
		case b.excess(i) < 0:
			under = append(under, i)
		case b.excess(i) > 0:
			over = append(over, i)
		}
	}
	sort.Slice(over, func(a, c int) bool { return b.excess(over[a]) > b.excess(over[c]) })
	for _, d := range over {
		sort.Slice(under, func(a, c int) bool { return b.excess(under[a]) < b.excess(under[c]) })
		for len(under) > 0 && b.excess(under[len(under)-1]) >= 0 {
			under = under[:len(under)-1]
		}
		if len(under) == 0 {
			return
		}
		for _, pos := range b.movedFirst(d) {
			if b.excess(d) <= 0 || freeOnly && !b.changed(pos) {
				break
			}
			p, i := int(pos)/b.w, int(pos)%b.w
			if !b.canMove(pos) {
				continue
			}
			for _, u := range under {
				if b.excess(u) >= 0 || !b.fits(p, i, u) {
					continue
				}
				b.remove(pos)
				b.add(u, pos)
				break
			}
		}
	}
}

// unbalanced reports whether some eligible device is below its target and
// another above.
func (b *builder) unbalanced() bool {
	under, over := false, false
	for i := range b.r.Devices {
		if !b.top.eligible[i] {
			continue
		}
		e := b.excess(i)
		under = under || e < 0
		over = over || e > 0
	}
	return under && over
}

// chainEdge says how the augmenting search reached a device: by moving the
// slot at pos away from device from.
type chainEdge struct {
	from int
	pos  int32
}

// augment moves one slot's worth of weight from some device above its
// target to one below it along a chain of moves, a -> x1 -> ... -> u, each
// keeping its partition within the limits; the devices in between keep
// their counts. It is the fallback when no single move helps (say every
// partition a device could give up already holds the needy device's node).
// budget bounds the work; it returns false when no chain was found.
func (b *builder) augment(budget *int, freeOnly bool) bool {
	n := len(b.r.Devices)
	prev := make([]chainEdge, n)
	seen := make([]bool, n)
	var queue []int
	for i := 0; i < n; i++ {
		if b.top.eligible[i] && b.excess(i) > 0 {
			queue = append(queue, i)
			seen[i] = true
		}
	}
	top := b.top
	for len(queue) > 0 && *budget > 0 {
		a := queue[0]
		queue = queue[1:]
		ar, az, an := top.dom[tierRegion][a], top.dom[tierZone][a], top.dom[tierNode][a]
		for _, pos := range b.movedFirst(a) {
			if freeOnly && !b.changed(pos) {
				break
			}
			p := int(pos) / b.w
			if !b.canMove(pos) {
				continue
			}
			b.load(p)
			for c := 0; c < n; c++ {
				if seen[c] || !top.eligible[c] || b.inRow[c] == int32(p+1) {
					continue
				}
				*budget--
				cr, cz, cn := top.dom[tierRegion][c], top.dom[tierZone][c], top.dom[tierNode][c]
				ur, uz, un := int(b.pc[tierRegion][cr]), int(b.pc[tierZone][cz]), int(b.pc[tierNode][cn])
				if cr == ar {
					ur--
				}
				if cz == az {
					uz--
				}
				if cn == an {
					un--
				}
				if ur >= top.limit[tierRegion][cr] || uz >= top.limit[tierZone][cz] || un >= top.limit[tierNode][cn] {
					continue
				}
				seen[c] = true
				prev[c] = chainEdge{a, pos}
				if b.excess(c) < 0 {
					b.unload(p)
					return b.applyChain(c, prev)
				}
				queue = append(queue, c)
			}
			b.unload(p)
		}
	}
	return false
}

// applyChain carries out the moves that end at device u, last first, and
// checks each again (two of them may share a partition); on a failed check
// it undoes what it did.
func (b *builder) applyChain(u int, prev []chainEdge) bool {
	type step struct {
		pos      int32
		from, to int
	}
	var steps []step
	for c := u; ; {
		e := prev[c]
		steps = append(steps, step{e.pos, e.from, c})
		c = e.from
		if b.excess(c) > 0 {
			break // a source: every device above its target is one
		}
	}
	done := 0
	for _, st := range steps {
		p, i := int(st.pos)/b.w, int(st.pos)%b.w
		if int(b.r.table[st.pos]) != st.from || !b.canMove(st.pos) || !b.fits(p, i, st.to) {
			break
		}
		b.remove(st.pos)
		b.add(st.to, st.pos)
		done++
	}
	if done == len(steps) {
		return true
	}
	for j := done - 1; j >= 0; j-- {
		st := steps[j]
		b.remove(st.pos)
		b.add(st.from, st.pos)
	}
	return false
}

// tidy undoes detours: a slot that moved from device x to y while x took
// some other moved slot can instead stay on x, with y taking that other
// slot, when the limits allow. Counts stay the same; one move fewer.
func (b *builder) tidy() {
	for pos := range b.r.table {
		a := int32(pos)
		x := b.orig[a]
		y := b.r.table[a]
		if x == y || !b.top.eligible[x] {
			continue
		}
		pa, ia := int(a)/b.w, int(a)%b.w
		for _, c := range b.slotsOf[x] {
			if c == a || b.r.table[c] != x || !b.changed(c) {
				continue
			}
			pc, ic := int(c)/b.w, int(c)%b.w
			if pc == pa || !b.fits(pc, ic, int(y)) {
				continue
			}
			b.remove(c)
			b.add(int(y), c)
			if b.fits(pa, ia, int(x)) {
				b.remove(a)
				b.add(int(x), a)
				break
			}
			b.remove(c)
			b.add(int(x), c)
		}
	}
}

// movedFirst returns device d's slot positions, the ones already moved in
// this rebalance first (moving those again costs nothing).
func (b *builder) movedFirst(d int) []int32 {
	list := b.slotsOf[d]
	out := make([]int32, 0, len(list))
	for _, pos := range list {
		if int(b.r.table[pos]) == d && b.changed(pos) {
			out = append(out, pos)
		}
	}
	for _, pos := range list {
		if int(b.r.table[pos]) == d && !b.changed(pos) {
			out = append(out, pos)
		}
	}
	b.slotsOf[d] = append(list[:0], out...)
	return out
}

// stampMoves records the hour of this rebalance on every partition that
// had a slot moved.
func (b *builder) stampMoves() {
	for p, n := range b.moved {
		if n > 0 {
			b.r.lastMove[p] = uint16(b.hour) + 1
		}
	}
}
