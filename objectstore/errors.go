package objectstore

import (
	"errors"
	"fmt"
)

// Errors callers map to S3 error codes.
var (
	ErrNoSuchBucket      = errors.New("no such bucket")
	ErrBucketExists      = errors.New("bucket already exists")
	ErrBucketNotEmpty    = errors.New("bucket not empty")
	ErrInvalidBucketName = errors.New("invalid bucket name")
	ErrNoSuchKey         = errors.New("no such key")
	ErrInvalidKey        = errors.New("invalid object key")
	ErrKeyTooLong        = fmt.Errorf("%w: longer than 1024 bytes", ErrInvalidKey)
	ErrNoSuchUpload      = errors.New("no such upload")
	ErrInvalidPart       = errors.New("invalid part")
	ErrInvalidPartOrder  = errors.New("parts not in ascending order")
	ErrEntityTooSmall    = errors.New("part smaller than the minimum allowed size")
	ErrEntityTooLarge    = errors.New("object larger than the maximum allowed size")
	ErrIncompleteBody    = errors.New("body shorter than its declared length")
	ErrWriteQuorum       = errors.New("not enough devices accepted the write")
	ErrReadQuorum        = errors.New("not enough devices could serve the read")
	ErrDamaged           = errors.New("object data damaged beyond repair")
	ErrStorageFull       = errors.New("storage full")
	ErrBadDigest         = errors.New("Content-MD5 does not match the body")
)

// ErrMoving refuses what would fight a rebalance under way (repairs that
// place records by the ring in force while the rebalancer moves them).
var ErrMoving = errors.New("objectstore: a rebalance is moving records")
