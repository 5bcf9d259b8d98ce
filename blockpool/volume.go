package blockpool

import (
	"errors"
	"fmt"
	"io"
)

// Volume is a fixed-size, byte-addressed block of storage.
type Volume interface {
	io.ReaderAt
	io.WriterAt
	// Sync makes every completed WriteAt and Trim durable.
	Sync() error
	// Trim discards the range [off, off+length); it reads back as zeroes.
	Trim(off, length int64) error
	// Size is the logical size in bytes.
	Size() int64
	Close() error
}

// ErrOutOfRange is returned for an access beyond the end of a volume.
var ErrOutOfRange = errors.New("blockpool: access beyond end of volume")

func checkRange(off, length, size int64) error {
	if off < 0 || length < 0 || off+length > size || off+length < off {
		return fmt.Errorf("%w: offset %d length %d size %d", ErrOutOfRange, off, length, size)
	}
	return nil
}
