package blockpool

import (
	"bytes"
	"errors"
	"testing"
)

func TestFilePoolLifecycle(t *testing.T) {
	p, err := OpenFilePool("p0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Create("vol-a", 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Create("vol-a", 1<<20); !errors.Is(err, ErrVolumeExists) {
		t.Fatalf("second create: got %v, want ErrVolumeExists", err)
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden"} {
		if _, err := p.Create(bad, 1<<20); !errors.Is(err, ErrBadName) {
			t.Errorf("create %q: got %v, want ErrBadName", bad, err)
		}
	}
	data := bytes.Repeat([]byte("strata"), 100000)
	if _, err := v.WriteAt(data, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := v.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.WriteAt([]byte("x"), 64<<20); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("write past end: got %v", err)
	}
	infos, err := p.List()
	if err != nil || len(infos) != 1 || infos[0].Size != 64<<20 {
		t.Fatalf("list: %+v %v", infos, err)
	}
	if infos[0].Allocated >= 64<<20 || infos[0].Allocated < int64(len(data)) {
		t.Fatalf("thin allocation: %d bytes allocated for %d written", infos[0].Allocated, len(data))
	}
	allocated := infos[0].Allocated

	// Punch a hole in the middle: it reads as zeroes and frees space.
	if err := v.Trim(1<<20+4096, 256<<10); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	if _, err := v.ReadAt(got, 1<<20); err != nil {
		t.Fatal(err)
	}
	want := append([]byte(nil), data...)
	clear(want[4096 : 4096+256<<10])
	if !bytes.Equal(got, want) {
		t.Fatal("read after trim differs")
	}
	infos, _ = p.List()
	if infos[0].Allocated > allocated-200<<10 {
		t.Fatalf("trim freed too little: %d -> %d", allocated, infos[0].Allocated)
	}
	v.Close()

	v, err = p.Open("vol-a")
	if err != nil || v.Size() != 64<<20 {
		t.Fatalf("reopen: %v", err)
	}
	v.Close()
	if err := p.Delete("vol-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Open("vol-a"); !errors.Is(err, ErrNoSuchVolume) {
		t.Fatalf("open deleted: %v", err)
	}
	if err := p.Delete("vol-a"); !errors.Is(err, ErrNoSuchVolume) {
		t.Fatalf("delete twice: %v", err)
	}
	if total, free, err := p.Capacity(); err != nil || total == 0 || free > total {
		t.Fatalf("capacity %d/%d %v", free, total, err)
	}
}

func TestMemVolumeCrashDropsUnsynced(t *testing.T) {
	v := NewMemVolume(1 << 16)
	v.WriteAt([]byte("durable"), 0)
	v.Sync()
	v.WriteAt([]byte("lost!!!"), 0)
	v.Crash()
	got := make([]byte, 7)
	v.ReadAt(got, 0)
	if string(got) != "durable" {
		t.Fatalf("after crash: %q", got)
	}
}

func TestMemVolumeCrashClone(t *testing.T) {
	v := NewMemVolume(1 << 16)
	v.WriteAt([]byte("synced"), 100)
	v.Sync()
	v.WriteAt([]byte("pending"), 100)
	c := v.CrashClone()
	got := make([]byte, 7)
	c.ReadAt(got, 100)
	if string(got[:6]) != "synced" {
		t.Fatalf("clone holds %q", got)
	}
	v.ReadAt(got, 100)
	if string(got) != "pending" {
		t.Fatalf("original changed: %q", got)
	}
}

func TestFaultVolume(t *testing.T) {
	f := NewFaultVolume(NewMemVolume(4096))
	f.FailNthWrite(2)
	if _, err := f.WriteAt([]byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("b"), 1); !errors.Is(err, ErrInjected) {
		t.Fatalf("2nd write: %v", err)
	}
	f.FailSync(true)
	if err := f.Sync(); !errors.Is(err, ErrInjected) {
		t.Fatal("sync did not fail")
	}
	f.CorruptReads(true)
	b := make([]byte, 2)
	f.ReadAt(b, 0)
	if b[0] == 'a' && b[1] == 0 {
		t.Fatal("read was not corrupted")
	}
}
