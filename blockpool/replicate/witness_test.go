package replicate

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// newWitnessRig is two data replicas (n0, n1) and a diskless tie-breaker
// (n2), as a 2-replica volume in a 3-node cluster has.
func newWitnessRig(t *testing.T, size int64) *rig { return newRig(t, 3, size, 2) }

func TestTieBreakerKeepsTwoReplicasWriting(t *testing.T) {
	r := newWitnessRig(t, 8<<20)
	// The primary is not told which member is the witness: the witness
	// says so itself.
	p := r.mustOpen(0)
	rng := rand.New(rand.NewPCG(5, 6))
	shadow := make([]byte, r.size)
	write := func(what string) {
		t.Helper()
		off := rng.Int64N(r.size - 65536)
		b := randBytes(rng, 1+rng.IntN(65536))
		if _, err := p.WriteAt(b, off); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		copy(shadow[off:], b)
	}
	write("all up")

	// n1's node dies: n0 and the witness are a majority, writes go on.
	r.links[1].cut.Store(true)
	for range 20 {
		write("n1 down")
	}
	if err := p.Sync(); err != nil {
		t.Fatalf("flush with n1 down: %v", err)
	}
	r.waitState(p, "n1", Outdated)
	var w MemberInfo
	for _, m := range p.Members() {
		if m.Node == "n2" {
			w = m
		}
	}
	if !w.Diskless || w.State != UpToDate {
		t.Fatalf("the tie-breaker as the primary sees it: %+v", w)
	}
	if g0, g2 := r.reps[0].Status().Gen, r.reps[2].Status().Gen; g0 != g2 {
		t.Fatalf("the witness missed a generation: n0 at %d, witness at %d", g0, g2)
	}
	if peers := r.reps[0].Peers(); len(peers) != 1 || peers[0] != "n1" {
		t.Fatalf("n0 keeps bitmaps for %v, want only n1 (none for the witness)", peers)
	}
	got := make([]byte, r.size)
	if _, err := p.ReadAt(got, 0); err != nil || !bytes.Equal(got, shadow) {
		t.Fatalf("read with n1 down: %v", err)
	}

	// n1 returns and is resynced from n0 (never from the witness).
	r.links[1].cut.Store(false)
	r.waitState(p, "n1", UpToDate)
	if !bytes.Equal(r.image(1), shadow) {
		t.Fatal("n1 differs after its resync")
	}

	// The witness's node dies: the two data replicas are a majority.
	r.links[2].cut.Store(true)
	write("witness down")
	r.waitState(p, "n2", Outdated)
	write("witness down, noticed")
	r.links[2].cut.Store(false)
	r.waitState(p, "n2", UpToDate)
	if g0, g2 := r.reps[0].Status().Gen, r.reps[2].Status().Gen; g0 != g2 {
		t.Fatalf("the witness came back at generation %d, n0 is at %d", g2, g0)
	}

	// n1 and the witness both gone: n0 alone is no majority.
	r.links[1].cut.Store(true)
	r.links[2].cut.Store(true)
	// (The write that finds them gone may reach n0 unacknowledged, as in
	// any replicated write; the next is refused before it is applied.)
	if _, err := p.WriteAt(bytes.Repeat([]byte{1}, 4096), 0); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("write with only n0 left: %v", err)
	}
	if _, err := p.WriteAt(bytes.Repeat([]byte{1}, 4096), 8192); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("second write with only n0 left: %v", err)
	}
	if !bytes.Equal(r.image(0)[8192:12288], shadow[8192:12288]) {
		t.Fatal("a refused write was applied")
	}
	r.links[1].cut.Store(false)
	r.links[2].cut.Store(false)
	r.waitState(p, "n1", UpToDate)
	r.waitState(p, "n2", UpToDate)
	if _, err := p.WriteAt(shadow[:4096], 0); err != nil {
		t.Fatal(err)
	}
	write("all back")
	if _, err := p.ReadAt(got, 0); err != nil || !bytes.Equal(got, shadow) {
		t.Fatalf("read after all came back: %v", err)
	}

	// Only the state file is on the witness's disk.
	entries, err := os.ReadDir(r.dirs[2])
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != stateFile {
		t.Fatalf("the witness's directory holds %v", names)
	}
}

// The witness is what keeps a replica that missed writes from becoming
// primary with it: the generation it took proves a newer copy elsewhere.
func TestTieBreakerRefusesTheStaleSide(t *testing.T) {
	r := newWitnessRig(t, 8<<20)
	p1 := r.mustOpen(0)
	if _, err := p1.WriteAt(bytes.Repeat([]byte{1}, 4096), 0); err != nil {
		t.Fatal(err)
	}
	r.links[1].cut.Store(true)
	if _, err := p1.WriteAt(bytes.Repeat([]byte{2}, 4096), 0); err != nil {
		t.Fatalf("write with n1 down: %v", err)
	}
	// Now n0's node dies too (no release) and n1 comes back: n1 and the
	// witness are two of three, but n1 lacks the second write.
	crash(p1)
	side := func(i int, cut bool) *cutLink {
		l := &cutLink{LocalLink: LocalLink{r.reps[i]}}
		l.cut.Store(cut)
		return l
	}
	stale := []Link{side(0, true), side(1, false), side(2, false)}
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		var p2 *Primary
		p2, err = Open(context.Background(), Config{Name: "v", Self: "n1", Links: stale, Witnesses: []string{"n2"}, CallTimeout: time.Second, RetryInterval: time.Hour, Log: quiet})
		if err == nil {
			p2.Close()
			t.Fatal("a primary opened on the replica that missed a write")
		}
		if !errors.Is(err, ErrPrimaryElsewhere) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // n0's lease runs out
	}
	if !errors.Is(err, ErrNoUpToDate) {
		t.Fatalf("open on the stale side: %v, want ErrNoUpToDate", err)
	}
	// n0 returns: a primary on n1's node now serves n0's copy, and
	// brings n1 up to date from it.
	all := []Link{side(0, false), side(1, false), side(2, false)}
	p2, err := Open(context.Background(), Config{Name: "v", Self: "n1", Links: all, Witnesses: []string{"n2"}, CallTimeout: time.Second, RetryInterval: 50 * time.Millisecond, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	got := make([]byte, 4096)
	if _, err := p2.ReadAt(got, 0); err != nil || got[0] != 2 {
		t.Fatalf("read after n0 came back: %d, %v", got[0], err)
	}
	r.waitState(p2, "n1", UpToDate)
	if !bytes.Equal(r.image(1), r.image(0)) {
		t.Fatal("n1 differs from n0 after its resync")
	}
}

func TestWitnessHoldsNoData(t *testing.T) {
	w, err := CreateWitness(filepath.Join(t.TempDir(), "w"), "n2", 1<<20, testLease)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if !w.Witness() || !w.Status().Witness || w.Volume() != nil {
		t.Fatal("not a witness")
	}
	if _, err := w.Promote(5, "n0", Mode{}); err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"write":    w.Write(5, 0, make([]byte, 4096), nil),
		"trim":     w.Trim(5, 0, 4096, nil),
		"read":     w.Read(5, 0, make([]byte, 4096)),
		"snapshot": w.Snapshot(5, "s"),
		"resync":   w.SetGen(5, GenChange{Gen: 9, BeginSync: true}),
	} {
		if !errors.Is(err, ErrWitness) {
			t.Errorf("%s on a witness: %v", what, err)
		}
	}
	if err := w.Sync(5); err != nil {
		t.Fatalf("the primary's epoch check: %v", err)
	}
	if err := w.Sync(4); !errors.Is(err, ErrFenced) {
		t.Fatalf("an older epoch's check: %v", err)
	}
	if err := w.SetGen(5, GenChange{Gen: 7, Track: []string{"n1"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Resize(5, 2<<20); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w, err = OpenReplica(w.dir, "n2", testLease)
	if err != nil {
		t.Fatal(err)
	}
	if st := w.Status(); !st.Witness || st.Gen != 7 || st.Size != 2<<20 || len(w.Peers()) != 0 {
		t.Fatalf("reopened witness: %+v, bitmaps %v", st, w.Peers())
	}
}
