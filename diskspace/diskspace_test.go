package diskspace

import (
	"errors"
	"testing"
	"time"
)

func TestReserveBytes(t *testing.T) {
	r := DefaultReserve()
	for _, c := range []struct{ total, want int64 }{
		{256 << 20, 64 << 20}, // the floor
		{100 << 30, 2 << 30},  // 2%
		{10 << 40, 8 << 30},   // the cap
		{1 << 20, 64 << 20},   // a tiny disk is all reserve
		{0, 64 << 20},
	} {
		if got := r.bytes(c.total); got != c.want {
			t.Errorf("reserve of %d: %d, want %d", c.total, got, c.want)
		}
	}
}

func TestClaimsStopAtTheReserve(t *testing.T) {
	free := int64(100 << 20)
	calls := 0
	g := New("/x", Reserve{Percent: 0, Min: 64 << 20}, func(string) (int64, int64, error) {
		calls++
		return 1 << 30, free, nil
	})
	flips := make(chan bool, 4)
	g.OnChange(func(full bool) { flips <- full })
	// Claims between readings add up: 30 MiB fit, the next 10 do not.
	if err := g.Claim(30<<20, 1); err != nil {
		t.Fatal(err)
	}
	if err := g.Claim(10<<20, 1); !errors.Is(err, ErrFull) {
		t.Fatalf("a claim into the reserve: %v", err)
	}
	if calls != 1 {
		t.Fatalf("statfs called %d times within the refresh interval", calls)
	}
	// The disk fills for real: full is seen (and reported once).
	free = 10 << 20
	g.Exhausted()
	if !g.Full() {
		t.Fatal("not full at 10 MiB free with a 64 MiB reserve")
	}
	if f := <-flips; !f {
		t.Fatal("no full report")
	}
	// Space comes back (a delete): after a refresh, writes are let in.
	free = 500 << 20
	time.Sleep(refresh + 10*time.Millisecond)
	if err := g.Claim(1<<20, 1); err != nil {
		t.Fatal(err)
	}
	if f := <-flips; f {
		t.Fatal("no report of space coming back")
	}
}
