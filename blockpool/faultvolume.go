package blockpool

import (
	"errors"
	"sync"
)

// ErrInjected is the error a FaultVolume returns for an injected failure.
var ErrInjected = errors.New("blockpool: injected fault")

// FaultVolume wraps a Volume and fails or corrupts chosen operations, for
// tests of what the layers above do when storage misbehaves.
type FaultVolume struct {
	Volume
	mu          sync.Mutex
	stall       <-chan struct{}
	writes      int
	failWriteAt int // fail the Nth WriteAt (1-based); 0 = never
	failSync    bool
	corruptRead bool // flip a bit in every read
}

// NewFaultVolume wraps v with no faults armed.
func NewFaultVolume(v Volume) *FaultVolume { return &FaultVolume{Volume: v} }

// FailNthWrite makes the n-th WriteAt from now fail (and write nothing).
func (f *FaultVolume) FailNthWrite(n int) {
	f.mu.Lock()
	f.writes, f.failWriteAt = 0, n
	f.mu.Unlock()
}

// FailSync makes every Sync fail while on is true.
func (f *FaultVolume) FailSync(on bool) { f.mu.Lock(); f.failSync = on; f.mu.Unlock() }

// StallReads makes every read wait until release is closed (nil: no
// stall), as a disk that stops answering would.
func (f *FaultVolume) StallReads(release <-chan struct{}) {
	f.mu.Lock()
	f.stall = release
	f.mu.Unlock()
}

// CorruptReads flips one bit in the data of every read while on is true.
func (f *FaultVolume) CorruptReads(on bool) { f.mu.Lock(); f.corruptRead = on; f.mu.Unlock() }

func (f *FaultVolume) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	f.writes++
	fail := f.failWriteAt != 0 && f.writes == f.failWriteAt
	f.mu.Unlock()
	if fail {
		return 0, ErrInjected
	}
	return f.Volume.WriteAt(p, off)
}

func (f *FaultVolume) Sync() error {
	f.mu.Lock()
	fail := f.failSync
	f.mu.Unlock()
	if fail {
		return ErrInjected
	}
	return f.Volume.Sync()
}

func (f *FaultVolume) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	stall := f.stall
	f.mu.Unlock()
	if stall != nil {
		<-stall
	}
	n, err := f.Volume.ReadAt(p, off)
	f.mu.Lock()
	corrupt := f.corruptRead
	f.mu.Unlock()
	if corrupt && n > 0 {
		p[n/2] ^= 0x40
	}
	return n, err
}
