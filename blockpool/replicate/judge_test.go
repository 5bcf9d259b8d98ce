package replicate

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestJudgeHello(t *testing.T) {
	down := errors.New("no answer")
	up := memberView{connected: true}
	away := memberView{}
	for _, c := range []struct {
		name string
		m    memberView
		st   Status
		err  error
		want helloVerdict
	}{
		{"connected and answering", up, Status{Epoch: 5, Primary: "p"}, nil, tracks},
		{"connected, silent", up, Status{}, down, lost},
		{"absent, silent", away, Status{}, down, nothing},
		{"absent, back at our epoch", away, Status{Epoch: 5, Primary: "p"}, nil, resyncs},
		{"absent, back but already syncing", memberView{syncing: true}, Status{Epoch: 5, Primary: "p"}, nil, nothing},
		{"absent, split brain awaits the operator", memberView{split: true}, Status{Epoch: 5, Primary: "p"}, nil, nothing},
		{"promised a newer epoch, lease held", away, Status{Epoch: 6, Primary: "q", Leased: true}, nil, leasedElsewhere},
		{"promised a newer epoch, lease gone", away, Status{Epoch: 6, Primary: "q"}, nil, claimedElsewhere},
		{"our epoch, another primary", away, Status{Epoch: 5, Primary: "q"}, nil, claimedElsewhere},
		{"older epoch: ours to resync", away, Status{Epoch: 4, Primary: "q"}, nil, resyncs},
		{"connected ones are never claimed back", up, Status{Epoch: 6, Primary: "q"}, nil, tracks},
	} {
		if got := judgeHello(5, "p", c.m, c.st, c.err); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// A replica's lease is judged by its clock: another primary is refused
// while the current one was heard from within the lease, and accepted
// once the clock passes it, without waiting.
func TestLeaseOnAnInjectedClock(t *testing.T) {
	r, err := CreateReplica(filepath.Join(t.TempDir(), "vol"), "n1", 1<<20, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.SetClock(func() time.Time { return now })
	if _, err := r.Promote(1, "a", Mode{}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(9 * time.Second)
	if _, err := r.Promote(2, "b", Mode{}); !errors.Is(err, ErrPrimaryElsewhere) {
		t.Fatalf("within a's lease: %v", err)
	}
	if !r.Status().Leased {
		t.Fatal("status does not show the lease")
	}
	now = now.Add(2 * time.Second)
	if r.Status().Leased {
		t.Fatal("status shows a lease that has passed")
	}
	if _, err := r.Promote(2, "b", Mode{}); err != nil {
		t.Fatalf("after a's lease: %v", err)
	}
}

func TestSyncRate(t *testing.T) {
	for _, c := range []struct {
		done, left int64
		elapsed    time.Duration
		rate, eta  float64
	}{
		{0, 1 << 30, time.Second, 0, 0},
		{160 << 20, 320 << 20, 10 * time.Second, 16 << 20, 20},
		{1 << 20, 0, time.Second, 1 << 20, 0},
		{1 << 20, 1 << 20, 0, 0, 0},
	} {
		if rate, eta := syncRate(c.done, c.left, c.elapsed); rate != c.rate || eta != c.eta {
			t.Errorf("syncRate(%d, %d, %v) = %v, %v; want %v, %v", c.done, c.left, c.elapsed, rate, eta, c.rate, c.eta)
		}
	}
}
