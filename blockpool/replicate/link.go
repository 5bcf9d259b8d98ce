package replicate

import "context"

// Link is how a primary reaches one replica: in process for its own node's
// replica, over the cluster RPC for the others. Every call but Hello and
// Promote carries the primary's epoch and is refused (ErrFenced) once the
// replica has promised a newer one.
type Link interface {
	Node() string
	Hello(ctx context.Context, epoch uint64, primary string) (Status, error)
	Promote(ctx context.Context, epoch uint64, primary string, mode Mode) (Status, error)
	Release(ctx context.Context, epoch uint64) error
	Write(ctx context.Context, epoch uint64, off int64, p []byte, absent []string) error
	Trim(ctx context.Context, epoch uint64, off, n int64, absent []string) error
	Read(ctx context.Context, epoch uint64, off int64, p []byte) error
	Sync(ctx context.Context, epoch uint64) error
	SetGen(ctx context.Context, epoch uint64, g GenChange) error
	Bitmap(ctx context.Context, epoch uint64, peer string) (Track, []uint64, bool, error)
	MergeBitmap(ctx context.Context, epoch uint64, peer string, t Track, words []uint64) error
	DropBitmap(ctx context.Context, epoch uint64, peer string) error
	// Snapshot, Restore and Resize run while the primary holds all I/O.
	Snapshot(ctx context.Context, epoch uint64, name string) error
	Restore(ctx context.Context, epoch uint64, name string) error
	Resize(ctx context.Context, epoch uint64, size int64) error
}

// Mode qualifies a promotion. Force takes over even while another
// primary's lease runs (an operator's decision, as drbdadm primary
// --force). Weak is a primary for background work (a resync, a scrub):
// its lease does not keep a client's primary on another node out.
type Mode struct{ Force, Weak bool }

// LocalLink is the Link to a replica in this process.
type LocalLink struct{ R *Replica }

func (l LocalLink) Node() string { return l.R.Node() }
func (l LocalLink) Hello(_ context.Context, epoch uint64, primary string) (Status, error) {
	return l.R.Hello(epoch, primary), nil
}
func (l LocalLink) Promote(_ context.Context, epoch uint64, primary string, mode Mode) (Status, error) {
	return l.R.Promote(epoch, primary, mode)
}
func (l LocalLink) Release(_ context.Context, epoch uint64) error { return l.R.Release(epoch) }
func (l LocalLink) Write(_ context.Context, epoch uint64, off int64, p []byte, absent []string) error {
	return l.R.Write(epoch, off, p, absent)
}
func (l LocalLink) Trim(_ context.Context, epoch uint64, off, n int64, absent []string) error {
	return l.R.Trim(epoch, off, n, absent)
}
func (l LocalLink) Read(_ context.Context, epoch uint64, off int64, p []byte) error {
	return l.R.Read(epoch, off, p)
}
func (l LocalLink) Sync(_ context.Context, epoch uint64) error { return l.R.Sync(epoch) }
func (l LocalLink) SetGen(_ context.Context, epoch uint64, g GenChange) error {
	return l.R.SetGen(epoch, g)
}
func (l LocalLink) Bitmap(_ context.Context, epoch uint64, peer string) (Track, []uint64, bool, error) {
	return l.R.Bitmap(epoch, peer)
}
func (l LocalLink) MergeBitmap(_ context.Context, epoch uint64, peer string, t Track, words []uint64) error {
	return l.R.MergeBitmap(epoch, peer, t, words)
}
func (l LocalLink) DropBitmap(_ context.Context, epoch uint64, peer string) error {
	return l.R.DropBitmap(epoch, peer)
}
func (l LocalLink) Snapshot(_ context.Context, epoch uint64, name string) error {
	return l.R.Snapshot(epoch, name)
}
func (l LocalLink) Restore(_ context.Context, epoch uint64, name string) error {
	return l.R.Restore(epoch, name)
}
func (l LocalLink) Resize(_ context.Context, epoch uint64, size int64) error {
	return l.R.Resize(epoch, size)
}
