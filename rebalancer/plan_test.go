package rebalancer

import (
	"fmt"
	"testing"

	"github.com/strata-storage/strata/ring"
)

func testRing(t *testing.T, zones, perZone int) *ring.Ring {
	t.Helper()
	var devs []ring.Device
	for z := 0; z < zones; z++ {
		for i := 0; i < perZone; i++ {
			devs = append(devs, ring.Device{ID: uint32(z*perZone + i), Zone: fmt.Sprint("z", z), Node: fmt.Sprint("n", z*perZone+i), Name: "d", Weight: 1})
		}
	}
	r, err := ring.Build(devs, 8, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPlanMoves(t *testing.T) {
	base := testRing(t, 3, 4)
	used := map[uint32]int64{}
	for _, d := range base.Devices {
		used[d.ID] = 1 << 30
	}
	edit := func(f func(r *ring.Ring) (*ring.Ring, error)) *ring.Ring {
		r, err := f(base)
		if err != nil {
			t.Fatal(err)
		}
		next, _, err := r.Rebalance(ring.RebalanceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	addZone := edit(func(r *ring.Ring) (*ring.Ring, error) {
		for i := 0; i < 4; i++ {
			var err error
			if r, err = r.AddDevice(ring.Device{ID: uint32(100 + i), Zone: "z9", Node: fmt.Sprint("m", i), Name: "d", Weight: 1}); err != nil {
				return nil, err
			}
		}
		return r, nil
	})
	failOne := edit(func(r *ring.Ring) (*ring.Ring, error) { return r.SetState(5, ring.Failed) })
	drainOne := edit(func(r *ring.Ring) (*ring.Ring, error) { return r.SetState(5, ring.Draining) })
	other := testRing(t, 3, 4)
	otherPower, err := ring.Build(base.Devices, 6, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		target   *ring.Ring
		moves    func(p *Plan) bool
		rebuilds bool
		err      bool
	}{
		{name: "same placement", target: other, moves: func(p *Plan) bool { return len(p.Moves) == 0 && len(p.Units) == 0 }},
		{name: "a zone joins", target: addZone, moves: func(p *Plan) bool {
			for _, m := range p.Moves {
				if m.To < 100 || m.Rebuild {
					return false
				}
			}
			return len(p.Moves) == p.Minimum && p.Bytes > 0
		}},
		{name: "a device fails", target: failOne, rebuilds: true, moves: func(p *Plan) bool {
			for _, m := range p.Moves {
				if m.From != 5 || !m.Rebuild {
					return false
				}
			}
			return len(p.Moves) == base.SlotCounts()[5] && len(p.Units) > 0 && p.Units[0].Kind == "rebuild"
		}},
		{name: "a device drains", target: drainOne, moves: func(p *Plan) bool {
			for _, m := range p.Moves {
				if m.From != 5 || m.Rebuild {
					return false
				}
			}
			return len(p.Moves) > 0 && len(p.Units) == 1 && p.Units[0].Device == 5
		}},
		{name: "another partition power", target: otherPower, err: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := NewPlan([]*ring.Ring{base}, c.target, used, Dead(c.target))
			if c.err {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !c.moves(p) {
				t.Fatalf("plan: %d moves (minimum %d), %d units, %d bytes", len(p.Moves), p.Minimum, len(p.Units), p.Bytes)
			}
			s := p.Summarize([]*ring.Ring{base}, c.target, 1<<20)
			var in, out int
			for _, d := range s.Devices {
				in += d.MovesIn
				out += d.MovesOut
			}
			if in != len(p.Moves) || out+s.Rebuilds != len(p.Moves) {
				t.Fatalf("summary: %d in, %d out, %d rebuilds for %d moves", in, out, s.Rebuilds, len(p.Moves))
			}
		})
	}
	// Two sources: data placed by either moves straight to the target,
	// once per (partition, shard, device).
	p, err := NewPlan([]*ring.Ring{base, addZone}, drainOne, used, Dead(drainOne))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[[3]uint32]bool{}
	for _, m := range p.Moves {
		k := [3]uint32{m.Partition, uint32(m.Shard), m.From}
		if seen[k] {
			t.Fatalf("move %+v planned twice", m)
		}
		seen[k] = true
	}
}
