package replicate

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

// A replica dies and is replaced under a running primary: the dead member
// leaves first (the quorum then counts 2 of 2), the new one joins empty
// and is resynced in full while writes go on, and every write lands on
// the survivors and the newcomer.
func TestReplacingAReplicaUnderARunningPrimary(t *testing.T) {
	r := newRig(t, 3, 16<<20)
	p := r.mustOpen(0)
	rng := rand.New(rand.NewPCG(9, 9))
	if _, err := p.WriteAt(randBytes(rng, 12<<20), 0); err != nil {
		t.Fatal(err)
	}
	r.links[2].cut.Store(true) // n2 is gone for good
	if _, err := p.WriteAt(randBytes(rng, 1<<20), 1<<20); err != nil {
		t.Fatal(err)
	}
	p.RemoveMember("n2")
	if got := p.MemberNodes(); len(got) != 2 || p.quorum() != 2 {
		t.Fatalf("after removing n2: members %v, quorum %d", got, p.quorum())
	}
	rep, err := CreateReplica(filepath.Join(t.TempDir(), "n3"), "n3", r.size, testLease)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rep.Close() })
	p.AddMember(LocalLink{rep})
	if p.quorum() != 2 {
		t.Fatalf("quorum of 3 members: %d", p.quorum())
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if _, err := p.WriteAt(randBytes(rng, 8192), rng.Int64N(r.size-8192)); err != nil {
			t.Fatalf("write %d while n3 joins: %v", i, err)
		}
		if i > 100 && p.Connected("n3") && p.Members()[2].State == UpToDate {
			break
		}
	}
	r.waitState(p, "n3", UpToDate)
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	img := make([]byte, r.size)
	if _, err := rep.Volume().ReadAt(img, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.image(0), r.image(1)) || !bytes.Equal(r.image(0), img) {
		t.Fatal("the new replica differs from the survivors")
	}
	// A live member leaving after its replacement is in sync: the
	// others keep the quorum.
	p.RemoveMember("n1")
	if _, err := p.WriteAt(randBytes(rng, 4096), 0); err != nil {
		t.Fatalf("write after n1 left: %v", err)
	}
}
