package ring

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// randomCluster builds a device list: 1-5 regions, 1-8 racks, 1-20 nodes
// and 1-8 devices per node, weights from 0.5 to 4 (some racks uneven).
func randomCluster(rng *rand.Rand) []Device {
	var devs []Device
	id := uint32(0)
	regions := 1 + rng.IntN(5)
	racks := regions + rng.IntN(8-min(regions, 7))
	nodes := racks + rng.IntN(max(1, 21-racks))
	devsPerNode := 1 + rng.IntN(8)
	for n := 0; n < nodes; n++ {
		rack := n % racks
		if n >= racks {
			rack = rng.IntN(racks)
		}
		region := rack % regions
		per := devsPerNode
		if rng.IntN(4) == 0 {
			per = 1 + rng.IntN(8)
		}
		for d := 0; d < per; d++ {
			w := 1.0
			switch rng.IntN(3) {
			case 1:
				w = 0.5 + rng.Float64()*3.5
			case 2:
				w = float64(1 + rng.IntN(4))
			}
			devs = append(devs, Device{ID: id, Region: fmt.Sprintf("r%d", region), Zone: fmt.Sprintf("rack%d", rack),
				Node: fmt.Sprintf("node%d", n), Name: fmt.Sprintf("sd%c", 'a'+d), Weight: w})
			id++
		}
	}
	return devs
}

var layouts = [][2]int{{2, 1}, {2, 2}, {3, 2}, {4, 2}, {6, 3}, {8, 3}, {8, 4}}

// zoneBound is the most shards of one partition a zone can be asked to
// hold: ceil(width/zones) when every zone has that many devices, more when
// small zones push the rest onto the others.
func zoneBound(devs []Device, width int) int {
	perZone := map[string]int{}
	for _, d := range devs {
		perZone[d.Region+"/"+d.Zone]++
	}
	for l := 1; ; l++ {
		sum := 0
		for _, c := range perZone {
			sum += min(c, l)
		}
		if sum >= width {
			return l
		}
	}
}

func zonesOf(devs []Device) int {
	z := map[string]bool{}
	for _, d := range devs {
		z[d.Region+"/"+d.Zone] = true
	}
	return len(z)
}

// checkRing verifies the structural and dispersion properties of a built
// ring and returns its report.
func checkRing(t *testing.T, r *Ring) DispersionReport {
	t.Helper()
	w := r.Width()
	zones := zonesOf(r.Devices)
	bound := zoneBound(r.Devices, w)
	lost := map[string]int{}
	for p := 0; p < r.Partitions(); p++ {
		seen := map[uint16]bool{}
		perZone := map[string]int{}
		for _, s := range r.Slots(uint32(p)) {
			if seen[s] {
				t.Fatalf("partition %d holds device %d twice", p, s)
			}
			seen[s] = true
			perZone[r.Devices[s].Region+"/"+r.Devices[s].Zone]++
		}
		for z, c := range perZone {
			if zones >= w && c > 1 {
				t.Fatalf("%d zones >= %d slots, yet partition %d has %d shards in zone %s", zones, w, p, c, z)
			}
			if c > bound {
				t.Fatalf("partition %d has %d shards in zone %s; at most %d (ceil(%d/%d)=%d) were needed", p, c, z, bound, w, zones, (w+zones-1)/zones)
			}
			if c > r.M {
				lost[z]++
			}
		}
	}
	rep := r.Dispersion()
	// The report's rack-failure loss must match an independent count.
	for _, z := range rep.Zones {
		if got, want := z.Lost, lost[z.Region+"/"+z.Zone]; got != want {
			t.Fatalf("report says losing zone %s loses %d partitions; counted %d", z.Zone, got, want)
		}
	}
	return rep
}

// weightShares returns each device's share of all slots by weight alone,
// and whether dispersion lets every device have it: no domain's weighted
// share of a partition exceeds what it can hold within the limits.
func weightShares(r *Ring) ([]float64, bool) {
	top, _ := newTopology(r.Devices, r.Width(), r.Partitions())
	total := 0.0
	for _, d := range r.Devices {
		total += d.Weight
	}
	w := float64(r.Width())
	shares := make([]float64, len(r.Devices))
	sums := [tiers][]float64{}
	for t := range sums {
		sums[t] = make([]float64, len(top.names[t]))
	}
	free := true
	for i, d := range r.Devices {
		shares[i] = d.Weight / total * w * float64(r.Partitions())
		if d.Weight/total*w > 1 {
			free = false
		}
		for t := 0; t < tiers; t++ {
			sums[t][top.dom[t][i]] += d.Weight
		}
	}
	for t := range sums {
		for x, s := range sums[t] {
			if s/total*w > top.effective(t, int32(x))+1e-9 {
				free = false
			}
		}
	}
	return shares, free
}

func TestRandomClustersDispersionAndBalance(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	worstFree, worstAll := 0.0, 0.0
	freeCases := 0
	for c := 0; c < 60; c++ {
		devs := randomCluster(rng)
		lay := layouts[rng.IntN(len(layouts))]
		k, m := lay[0], lay[1]
		if len(devs) < k+m {
			continue
		}
		r, err := Build(devs, 12, k, m)
		if err != nil {
			t.Fatalf("case %d: %v", c, err)
		}
		rep := checkRing(t, r)
		shares, free := weightShares(r)
		for i, b := range rep.Balance {
			// Against the dispersion-aware target always...
			if d := math.Abs(float64(b.Slots - b.Target)); d > math.Max(1, 0.01*float64(b.Target)) {
				t.Errorf("case %d (%d devices, EC %d+%d): device %d has %d slots, target %d", c, len(devs), k, m, b.ID, b.Slots, b.Target)
			}
			worstAll = math.Max(worstAll, math.Abs(float64(b.Slots-b.Target))/math.Max(1, float64(b.Target)))
			// ...and against the plain weight share where dispersion
			// does not bind.
			if free {
				d := math.Abs(float64(b.Slots) - shares[i])
				if d > math.Max(1, 0.01*shares[i]) {
					t.Errorf("case %d: device %d has %d slots, weight share %.1f", c, b.ID, b.Slots, shares[i])
				}
				worstFree = math.Max(worstFree, d/shares[i])
			}
		}
		if free {
			freeCases++
		}
		t.Logf("case %2d: %4d devices in %d zones, EC %d+%d: max/zone %d (limit %d), worst deviation %.2f%%, losing the worst rack loses %d of %d partitions",
			c, len(devs), zonesOf(devs), k, m, rep.MaxPerZone, rep.ZoneLimit, 100*rep.WorstDeviation, rep.Zones[0].Lost, rep.Partitions)
	}
	t.Logf("worst deviation from target: %.3f%%; from weight share in the %d cases dispersion left free: %.3f%%", 100*worstAll, freeCases, 100*worstFree)
	if freeCases == 0 {
		t.Fatal("no random case was free of dispersion limits; the weight-share check never ran")
	}
}

// minimumMoves is the fewest slot moves that take every device from its
// slots in old to its target in the report of the new ring: what the
// devices below target lack (each move gives one slot to one device).
func minimumMoves(old *Ring, after DispersionReport) int {
	had := map[uint32]int{}
	counts := old.SlotCounts()
	for i, d := range old.Devices {
		had[d.ID] = counts[i]
	}
	lack := 0
	for _, b := range after.Balance {
		lack += max(0, b.Target-had[b.ID])
	}
	return lack
}

func TestAddDeviceMovesNearMinimum(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	checked := 0
	worst := 0.0
	defer func() { t.Logf("adding one device moved at most %.3fx the minimum", worst) }()
	for c := 0; c < 40; c++ {
		devs := randomCluster(rng)
		lay := layouts[rng.IntN(len(layouts))]
		if len(devs) < lay[0]+lay[1] {
			continue
		}
		r, err := Build(devs, 12, lay[0], lay[1])
		if err != nil {
			t.Fatal(err)
		}
		before := r.Dispersion()
		host := devs[rng.IntN(len(devs))]
		nd := Device{ID: r.NextID(), Region: host.Region, Zone: host.Zone, Node: host.Node, Name: "new", Weight: 0.5 + 3*rng.Float64()}
		r2, err := r.AddDevice(nd)
		if err != nil {
			t.Fatal(err)
		}
		r3, res, err := r2.Rebalance(RebalanceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		after := checkRing(t, r3)
		var target, got int
		for _, b := range after.Balance {
			if b.ID == nd.ID {
				target, got = b.Target, b.Slots
			}
		}
		if res.MaxPerPartition > max(r.M, 1) {
			t.Fatalf("case %d: %d slots of one partition moved; at most %d may", c, res.MaxPerPartition, max(r.M, 1))
		}
		// Where the weights fit the failure domains the new device reaches
		// its target; where they bind, a few slots can be out of reach
		// without moving others (reported, and bounded).
		if _, free := weightShares(r3); free && float64(got) < float64(target)-math.Max(1, 0.01*float64(target)) ||
			float64(got) < 0.95*float64(target) {
			t.Errorf("case %d: new device got %d slots, target %d", c, got, target)
		}
		if before.ZoneLimit != after.ZoneLimit || before.NodeLimit != after.NodeLimit || before.RegionLimit != after.RegionLimit {
			t.Logf("case %d: the new device widened the spread (limits %d/%d/%d -> %d/%d/%d); %d moves include dispersion repairs",
				c, before.RegionLimit, before.ZoneLimit, before.NodeLimit, after.RegionLimit, after.ZoneLimit, after.NodeLimit, res.Moved)
			continue
		}
		checked++
		minimum := minimumMoves(r, after)
		if float64(res.Moved) > math.Ceil(1.05*float64(minimum)) {
			t.Errorf("case %d (%d devices, EC %d+%d): adding one device moved %d slots; minimum %d (its target %d)", c, len(devs), r.K, r.M, res.Moved, minimum, target)
		}
		worst = math.Max(worst, float64(res.Moved)/math.Max(1, float64(minimum)))
		t.Logf("case %2d: +1 device: moved %d slots, minimum %d (%.3fx), new device %d of target %d", c, res.Moved, minimum, float64(res.Moved)/math.Max(1, float64(minimum)), got, target)
	}
	if checked < 10 {
		t.Fatalf("only %d cases kept their limits", checked)
	}
}

func TestRemoveDeviceMovesOnlyItsSlots(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 1))
	checked := 0
	worstRatio := map[bool]float64{}
	defer func() {
		t.Logf("removing one device moved at most %.3fx the minimum where dispersion left weights free, %.3fx where it bound them", worstRatio[true], worstRatio[false])
	}()
	for c := 0; c < 40; c++ {
		devs := randomCluster(rng)
		lay := layouts[rng.IntN(len(layouts))]
		if len(devs) < lay[0]+lay[1]+1 {
			continue
		}
		r, err := Build(devs, 12, lay[0], lay[1])
		if err != nil {
			t.Fatal(err)
		}
		before := r.Dispersion()
		victim := devs[rng.IntN(len(devs))]
		held := r.SlotCounts()[victim.ID]
		r2, err := r.RemoveDevice(victim.ID)
		if err != nil {
			t.Fatal(err)
		}
		r3, res, err := r2.Rebalance(RebalanceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		after := checkRing(t, r3)
		if _, still := r3.Index(victim.ID); still || len(res.Removed) != 1 {
			t.Fatalf("case %d: device %d still in the ring after its slots moved", c, victim.ID)
		}
		if res.MaxPerPartition > max(r.M, 1) {
			t.Fatalf("case %d: %d slots of one partition moved", c, res.MaxPerPartition)
		}
		if before.ZoneLimit != after.ZoneLimit || before.NodeLimit != after.NodeLimit || before.RegionLimit != after.RegionLimit {
			t.Logf("case %d: removing narrowed the spread; %d moves for %d slots", c, res.Moved, held)
			continue
		}
		checked++
		// Where dispersion leaves the weights free, little more than the
		// device's own slots move (a few detours where node limits leave
		// a slot only one home). Where it binds, the new targets can ask
		// other slots to shift too: what balance requires, bounded here
		// and printed.
		minimum := max(held, minimumMoves(r, after))
		_, free := weightShares(r3)
		bound := 1.1
		if !free {
			bound = 1.5
		}
		// A rebalance may also settle what the old ring left off target
		// (a slot or two per device where the limits were tight).
		slack := 0
		for _, b := range before.Balance {
			slack += abs(b.Slots - b.Target)
		}
		if float64(res.Moved) > math.Ceil(bound*float64(minimum))+float64(slack) {
			t.Errorf("case %d (%d devices, EC %d+%d, free %v): removing a device with %d slots moved %d; minimum %d", c, len(devs), r.K, r.M, free, held, res.Moved, minimum)
		}
		worstRatio[free] = math.Max(worstRatio[free], float64(res.Moved)/math.Max(1, float64(minimum)))
		t.Logf("case %2d: -1 device: moved %d slots, it held %d, minimum %d (%.3fx; dispersion-free %v), worst deviation after %.2f%%", c, res.Moved, held, minimum, float64(res.Moved)/math.Max(1, float64(minimum)), free, 100*after.WorstDeviation)
	}
	if checked < 10 {
		t.Fatalf("only %d cases kept their limits", checked)
	}
}

func abs(x int) int { return max(x, -x) }

func TestRebalanceOfBalancedRingMovesNothing(t *testing.T) {
	r, _ := Build(devices(4, 3, 2), 10, 4, 2)
	r2, res, err := r.Rebalance(RebalanceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Moved != 0 || r2.Version != r.Version+1 {
		t.Fatalf("moved %d slots of a balanced ring", res.Moved)
	}
}

func TestDrainRespectsGuardAndMinPartHours(t *testing.T) {
	// Nine racks of one device, EC 4+2; three drain at once, so some
	// partitions hold three draining slots but may move only M=2 per
	// rebalance.
	r, err := New(8, 4, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devices(9, 1, 1) {
		r, _ = r.AddDevice(d)
	}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	r, _, _ = r.Rebalance(RebalanceOptions{Now: now})
	for _, id := range []uint32{0, 1, 2} {
		r, _ = r.SetState(id, Draining)
	}
	r2, res, err := r.Rebalance(RebalanceOptions{Now: now.Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if res.MaxPerPartition > 2 {
		t.Fatalf("moved %d slots of one partition, M is 2", res.MaxPerPartition)
	}
	if res.Held == 0 {
		t.Fatal("no partition held three draining slots; the test needs one")
	}
	left := 0
	for i, c := range r2.SlotCounts() {
		if r2.Devices[i].State == Draining {
			left += c
		}
	}
	if left != res.Held {
		t.Fatalf("%d slots left on draining devices, %d reported held", left, res.Held)
	}
	// Within the hour nothing more moves: those partitions just moved.
	_, res3, _ := r2.Rebalance(RebalanceOptions{Now: now.Add(2*time.Hour + 30*time.Minute)})
	if res3.Moved != 0 || res3.Held != left {
		t.Fatalf("within min-part-hours: moved %d, held %d", res3.Moved, res3.Held)
	}
	// After it, the rest leaves.
	r4, res4, _ := r2.Rebalance(RebalanceOptions{Now: now.Add(4 * time.Hour)})
	if res4.Moved != left || res4.Held != 0 {
		t.Fatalf("after min-part-hours: moved %d of %d", res4.Moved, left)
	}
	for i, c := range r4.SlotCounts() {
		if r4.Devices[i].State == Draining && c != 0 {
			t.Fatalf("draining device %d still holds %d slots", r4.Devices[i].ID, c)
		}
	}
	checkRing(t, r4)
}

func TestTooFewActiveDevicesIsRefused(t *testing.T) {
	r, _ := Build(devices(7, 1, 1), 6, 4, 2)
	for _, id := range []uint32{0, 1} {
		r, _ = r.SetState(id, Draining)
	}
	if _, _, err := r.Rebalance(RebalanceOptions{}); err == nil {
		t.Fatal("EC 4+2 over 5 active devices was accepted")
	}
}

func TestFailedDeviceMovesAtOnce(t *testing.T) {
	r, err := New(8, 2, 1, 24)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devices(4, 2, 1) {
		r, _ = r.AddDevice(d)
	}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	r, _, _ = r.Rebalance(RebalanceOptions{Now: now})
	held := r.SlotCounts()[3]
	r, _ = r.SetState(3, Failed)
	r2, res, err := r.Rebalance(RebalanceOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if got := r2.SlotCounts()[3]; got != 0 {
		t.Fatalf("failed device still holds %d slots", got)
	}
	if res.Moved < held {
		t.Fatalf("moved %d, the failed device held %d", res.Moved, held)
	}
	checkRing(t, r2)
}
