package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"
)

// KeyLocks serialise writes of one object key across every gateway of the
// cluster: an etcd mutex per key under the node's session lease, so a lock
// held by a node that dies is released when its lease runs out.
type KeyLocks struct {
	session *concurrency.Session
	prefix  string
	wait    time.Duration
}

// NewKeyLocks opens the node's lock session (lease ttl).
func NewKeyLocks(e *Etcd, ttl, wait time.Duration) (*KeyLocks, error) {
	s, err := concurrency.NewSession(e.c, concurrency.WithTTL(max(int(ttl/time.Second), 2)))
	if err != nil {
		return nil, fmt.Errorf("etcd lock session: %w", err)
	}
	return &KeyLocks{session: s, prefix: e.prefix + "locks/", wait: wait}, nil
}

// Close ends the session, releasing every lock it holds.
func (l *KeyLocks) Close() error { return l.session.Close() }

// Lock takes the cluster-wide lock of name, waiting at most the configured
// time; the returned func releases it.
func (l *KeyLocks) Lock(ctx context.Context, name string) (func(), error) {
	sum := sha256.Sum256([]byte(name))
	m := concurrency.NewMutex(l.session, l.prefix+hex.EncodeToString(sum[:12]))
	ctx, cancel := context.WithTimeout(ctx, l.wait)
	defer cancel()
	if err := m.Lock(ctx); err != nil {
		return nil, fmt.Errorf("cluster lock: %w", err)
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), l.wait)
		defer cancel()
		m.Unlock(uctx) // on failure the lease releases it
	}, nil
}
