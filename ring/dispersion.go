package ring

import (
	"math"
	"sort"
)

// DispersionReport says how well the ring spreads partitions over failure
// domains, and what losing one rack (zone) or node would cost.
type DispersionReport struct {
	Partitions int `json:"partitions"`
	Width      int `json:"width"`
	M          int `json:"m"`
	// Limits are the most slots of one partition the builder lets one
	// region, zone or node hold with the current devices (0 if unbuilt).
	RegionLimit int `json:"region_limit"`
	ZoneLimit   int `json:"zone_limit"`
	NodeLimit   int `json:"node_limit"`
	// MaxPerRegion, MaxPerZone and MaxPerNode are the worst partitions
	// actually seen.
	MaxPerRegion int `json:"max_per_region"`
	MaxPerZone   int `json:"max_per_zone"`
	MaxPerNode   int `json:"max_per_node"`
	// ZoneHistogram[c] counts partitions whose fullest zone holds c slots;
	// NodeHistogram likewise for nodes.
	ZoneHistogram []int `json:"zone_histogram"`
	NodeHistogram []int `json:"node_histogram"`
	// OverLimit counts partitions that break a limit (after device changes,
	// until the next rebalance).
	OverLimit int `json:"over_limit"`
	// Zones and Nodes: what the failure of each one alone would do.
	Zones []DomainLoss `json:"zones"`
	Nodes []DomainLoss `json:"nodes"`
	// Balance: each device's slots against its target.
	Balance []DeviceBalance `json:"balance"`
	// WorstDeviation is the largest |slots-target|/target over devices
	// with a target, as a fraction.
	WorstDeviation float64 `json:"worst_deviation"`
}

// DomainLoss is what losing one failure domain costs.
type DomainLoss struct {
	Region  string `json:"region"` // Node empty for a zone
	Zone    string `json:"zone"`   // Node empty for a zone
	Node    string `json:"node"`   // Node empty for a zone
	Devices int    `json:"devices"`
	// Partitions with slots in the domain; AtRisk have exactly M there (one
	// more failure anywhere loses them); Lost have more than M (their data
	// is unreadable while the domain is down).
	Partitions int `json:"partitions"`
	AtRisk     int `json:"at_risk"`
	Lost       int `json:"lost"`
}

// DeviceBalance compares a device's slots with its weighted share.
type DeviceBalance struct {
	ID     uint32  `json:"id"`
	Node   string  `json:"node"`
	Name   string  `json:"name"`
	Weight float64 `json:"weight"`
	State  State   `json:"state"`
	Slots  int     `json:"slots"`
	Target int     `json:"target"`
	// Deviation is (Slots-Target)/Target, or 0 when both are 0.
	Deviation float64 `json:"deviation"`
}

// Dispersion computes the report.
func (r *Ring) Dispersion() DispersionReport {
	w := r.Width()
	rep := DispersionReport{Partitions: r.Partitions(), Width: w, M: r.M}
	top, ok := newTopology(r.Devices, w, r.Partitions())
	if ok {
		for _, l := range top.limit[tierRegion] {
			rep.RegionLimit = max(rep.RegionLimit, l)
		}
		for _, l := range top.limit[tierZone] {
			rep.ZoneLimit = max(rep.ZoneLimit, l)
		}
		for _, l := range top.limit[tierNode] {
			rep.NodeLimit = max(rep.NodeLimit, l)
		}
	}
	counts := r.SlotCounts()
	for i, d := range r.Devices {
		b := DeviceBalance{ID: d.ID, Node: d.Node, Name: d.Name, Weight: d.Weight, State: d.State, Slots: counts[i]}
		if ok {
			b.Target = top.target[i]
		}
		if b.Target > 0 {
			b.Deviation = float64(b.Slots-b.Target) / float64(b.Target)
		} else if b.Slots > 0 {
			b.Deviation = math.Inf(1)
		}
		if ok && top.eligible[i] {
			rep.WorstDeviation = math.Max(rep.WorstDeviation, math.Abs(b.Deviation))
		}
		rep.Balance = append(rep.Balance, b)
	}
	if !r.Built() {
		return rep
	}
	// Domains of every device, numbered per tier.
	if top == nil {
		top, _ = newTopology(r.Devices, w, r.Partitions())
	}
	zones := make([]DomainLoss, len(top.names[tierZone]))
	nodes := make([]DomainLoss, len(top.names[tierNode]))
	for i, d := range r.Devices {
		z, n := top.dom[tierZone][i], top.dom[tierNode][i]
		zones[z].Region, zones[z].Zone = d.Region, d.Zone
		zones[z].Devices++
		nodes[n].Region, nodes[n].Zone, nodes[n].Node = d.Region, d.Zone, d.Node
		nodes[n].Devices++
	}
	rep.ZoneHistogram = make([]int, w+1)
	rep.NodeHistogram = make([]int, w+1)
	pc := [tiers][]int{make([]int, len(top.names[0])), make([]int, len(top.names[1])), make([]int, len(top.names[2]))}
	losses := [tiers][]DomainLoss{nil, zones, nodes}
	for p := 0; p < r.Partitions(); p++ {
		row := r.Slots(uint32(p))
		var worst [tiers]int
		over := false
		for _, s := range row {
			for t := 0; t < tiers; t++ {
				x := top.dom[t][s]
				pc[t][x]++
				worst[t] = max(worst[t], pc[t][x])
				if ok && pc[t][x] > top.limit[t][x] && top.limit[t][x] > 0 {
					over = true
				}
			}
		}
		if over {
			rep.OverLimit++
		}
		rep.MaxPerRegion = max(rep.MaxPerRegion, worst[tierRegion])
		rep.MaxPerZone = max(rep.MaxPerZone, worst[tierZone])
		rep.MaxPerNode = max(rep.MaxPerNode, worst[tierNode])
		rep.ZoneHistogram[worst[tierZone]]++
		rep.NodeHistogram[worst[tierNode]]++
		for _, s := range row {
			for t := 0; t < tiers; t++ {
				x := top.dom[t][s]
				c := pc[t][x]
				if c == 0 {
					continue // counted already for this partition
				}
				if t > tierRegion {
					l := &losses[t][x]
					l.Partitions++
					switch {
					case c > r.M:
						l.Lost++
					case c == r.M:
						l.AtRisk++
					}
				}
				pc[t][x] = 0
			}
		}
	}
	byLoss := func(ls []DomainLoss) []DomainLoss {
		sort.SliceStable(ls, func(a, b int) bool {
			if ls[a].Lost != ls[b].Lost {
				return ls[a].Lost > ls[b].Lost
			}
			return ls[a].AtRisk > ls[b].AtRisk
		})
		return ls
	}
	rep.Zones, rep.Nodes = byLoss(zones), byLoss(nodes)
	return rep
}
