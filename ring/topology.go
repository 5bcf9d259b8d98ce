package ring

import (
	"math"
	"sort"
)

// Failure-domain tiers, outermost first.
const (
	tierRegion = iota
	tierZone
	tierNode
	tiers
)

// topology is the failure-domain tree of a device list with the placement
// rules derived from it: how many slots of one partition a domain may hold
// (its limit) and how many slots in all it should hold (its target).
type topology struct {
	// dom[t][i] is the domain of device i at tier t; domains are numbered
	// per tier.
	dom [tiers][]int32
	// parent[t][x] is the domain at tier t-1 holding domain x of tier t.
	parent [tiers][]int32
	// children[t][x] lists the tier t+1 domains (devices for the node
	// tier) under domain x of tier t, eligible ones only.
	children [tiers][][]int32
	roots    []int32 // eligible regions
	eligible []bool
	// caps[t][x] is the number of eligible devices under domain x.
	caps [tiers][]int
	// limit[t][x] is the most slots of one partition domain x may hold.
	limit [tiers][]int
	// want[t][x] and wantDev[i]: slots per partition, on average.
	want    [tiers][]float64
	wantDev []float64
	// target[i] is device i's whole number of slots; targets sum to
	// partitions*width.
	target []int
	// domTarget[t][x] sums the targets under domain x.
	domTarget [tiers][]int
	names     [tiers][]string
}

// newTopology derives the placement rules for devs and width slots per
// partition over parts partitions. It reports false when fewer than width
// devices are eligible.
func newTopology(devs []Device, width, parts int) (*topology, bool) {
	t := &topology{eligible: make([]bool, len(devs))}
	index := [tiers]map[string]int32{{}, {}, {}}
	for i := range devs {
		d := &devs[i]
		t.eligible[i] = d.eligible()
		keys := [tiers]string{d.Region, d.Region + "\x00" + d.Zone, d.Region + "\x00" + d.Zone + "\x00" + d.Node}
		for tier := 0; tier < tiers; tier++ {
			x, ok := index[tier][keys[tier]]
			if !ok {
				x = int32(len(t.names[tier]))
				index[tier][keys[tier]] = x
				t.names[tier] = append(t.names[tier], keys[tier])
				if tier > 0 {
					t.parent[tier] = append(t.parent[tier], t.dom[tier-1][i])
				} else {
					t.parent[tier] = append(t.parent[tier], -1)
				}
			}
			t.dom[tier] = append(t.dom[tier], x)
		}
	}
	eligibleCount := 0
	for tier := 0; tier < tiers; tier++ {
		n := len(t.names[tier])
		t.caps[tier] = make([]int, n)
		t.limit[tier] = make([]int, n)
		t.want[tier] = make([]float64, n)
		t.domTarget[tier] = make([]int, n)
		t.children[tier] = make([][]int32, n)
	}
	for i := range devs {
		if !t.eligible[i] {
			continue
		}
		eligibleCount++
		for tier := 0; tier < tiers; tier++ {
			t.caps[tier][t.dom[tier][i]]++
		}
		node := t.dom[tierNode][i]
		t.children[tierNode][node] = append(t.children[tierNode][node], int32(i))
	}
	if eligibleCount < width {
		return t, false
	}
	// Tree edges between eligible domains, in first-seen order.
	for tier := tiers - 1; tier >= 0; tier-- {
		for x, c := range t.caps[tier] {
			if c == 0 {
				continue
			}
			if tier == 0 {
				t.roots = append(t.roots, int32(x))
			} else {
				p := t.parent[tier][x]
				t.children[tier-1][p] = append(t.children[tier-1][p], int32(x))
			}
		}
	}
	t.setLimits(width)
	weights := t.weights(devs)
	t.wantDev = make([]float64, len(devs))
	t.spread(-1, 0, float64(width), weights)
	t.setTargets(parts * width)
	return t, true
}

// waterLevel returns the smallest L with sum(min(cap, L)) >= need.
func waterLevel(caps []int, need int) int {
	for l := 1; ; l++ {
		sum := 0
		for _, c := range caps {
			sum += min(c, l)
		}
		if sum >= need || l > need {
			return l
		}
	}
}

// setLimits derives per-partition limits that spread a partition as widely
// as the devices allow. Zones come first: as even over all zones as their
// device counts permit (so zones >= width means one slot per zone).
// Regions are then as even as those zone limits permit, and nodes as even
// inside their zone as filling the zone to its limit permits.
func (t *topology) setLimits(width int) {
	zoneCaps := t.caps[tierZone]
	lz := waterLevel(zoneCaps, width)
	effZone := make([]int, len(zoneCaps))
	for z, c := range zoneCaps {
		t.limit[tierZone][z] = lz
		effZone[z] = min(c, lz)
	}
	regionCap := make([]int, len(t.caps[tierRegion]))
	for z, e := range effZone {
		regionCap[t.parent[tierZone][z]] += e
	}
	lr := waterLevel(regionCap, width)
	for r := range regionCap {
		t.limit[tierRegion][r] = lr
	}
	for z, nodes := range t.children[tierZone] {
		caps := make([]int, len(nodes))
		for j, n := range nodes {
			caps[j] = t.caps[tierNode][n]
		}
		ln := 1
		if len(caps) > 0 {
			ln = waterLevel(caps, effZone[z])
		}
		for _, n := range nodes {
			t.limit[tierNode][n] = ln
		}
	}
}

// weights returns the eligible weight under every domain.
func (t *topology) weights(devs []Device) (w [tiers + 1][]float64) {
	for tier := 0; tier < tiers; tier++ {
		w[tier] = make([]float64, len(t.names[tier]))
	}
	w[tiers] = make([]float64, len(devs))
	for i := range devs {
		if !t.eligible[i] {
			continue
		}
		w[tiers][i] = devs[i].Weight
		for tier := 0; tier < tiers; tier++ {
			w[tier][t.dom[tier][i]] += devs[i].Weight
		}
	}
	return w
}

// effective is the most slots of one partition domain x of tier can hold.
func (t *topology) effective(tier int, x int32) float64 {
	if tier == tiers {
		return 1
	}
	sum := 0
	if tier == tierNode {
		sum = t.caps[tierNode][x]
	} else {
		for _, c := range t.children[tier][x] {
			sum += int(t.effective(tier+1, c))
		}
	}
	return float64(min(sum, t.limit[tier][x]))
}

// spread shares want slots per partition of domain x (tier-1; -1 is the
// root) among its children in proportion to weight, each held between the
// least it must take (what its siblings cannot hold) and the most it may.
func (t *topology) spread(x int32, tier int, want float64, w [tiers + 1][]float64) {
	var kids []int32
	if x < 0 {
		kids = t.roots
	} else {
		kids = t.children[tier-1][x]
	}
	hi := make([]float64, len(kids))
	wt := make([]float64, len(kids))
	total := 0.0
	for j, c := range kids {
		hi[j] = t.effective(tier, c)
		wt[j] = w[tier][c]
		total += hi[j]
	}
	lo := make([]float64, len(kids))
	for j := range kids {
		lo[j] = math.Max(0, want-(total-hi[j]))
	}
	share := clampedShares(want, wt, lo, hi)
	for j, c := range kids {
		if tier == tiers {
			t.wantDev[c] = share[j]
			continue
		}
		t.want[tier][c] = share[j]
		t.spread(c, tier+1, share[j], w)
	}
}

// clampedShares returns s[j] = clamp(lambda*w[j], lo[j], hi[j]) with the
// lambda that makes them sum to want.
func clampedShares(want float64, w, lo, hi []float64) []float64 {
	s := make([]float64, len(w))
	sum := func(l float64) float64 {
		total := 0.0
		for j := range w {
			total += math.Min(hi[j], math.Max(lo[j], l*w[j]))
		}
		return total
	}
	a, b := 0.0, 1.0
	for sum(b) < want && b < 1e300 {
		b *= 2
	}
	for range 200 {
		mid := (a + b) / 2
		if sum(mid) < want {
			a = mid
		} else {
			b = mid
		}
	}
	for j := range w {
		s[j] = math.Min(hi[j], math.Max(lo[j], b*w[j]))
	}
	return s
}

// setTargets turns per-partition wants into whole slot counts summing to
// total (largest remainder first).
func (t *topology) setTargets(total int) {
	parts := 0.0
	for _, w := range t.wantDev {
		parts += w
	}
	n := len(t.wantDev)
	t.target = make([]int, n)
	rem := make([]int, 0, n)
	sum := 0
	scale := float64(total) / math.Max(parts, 1e-300)
	exact := make([]float64, n)
	for i, w := range t.wantDev {
		exact[i] = w * scale
		t.target[i] = int(math.Floor(exact[i]))
		sum += t.target[i]
		if t.eligible[i] {
			rem = append(rem, i)
		}
	}
	sort.SliceStable(rem, func(a, b int) bool {
		return exact[rem[a]]-float64(t.target[rem[a]]) > exact[rem[b]]-float64(t.target[rem[b]])
	})
	for j := 0; sum < total && len(rem) > 0; j = (j + 1) % len(rem) {
		t.target[rem[j]]++
		sum++
	}
	for i, v := range t.target {
		for tier := 0; tier < tiers; tier++ {
			t.domTarget[tier][t.dom[tier][i]] += v
		}
	}
}
