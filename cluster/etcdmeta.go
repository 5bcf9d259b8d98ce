package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strata-storage/strata/metastore"
)

// Etcd is the cluster metadata store on an etcd cluster: every gateway
// reads and writes the same buckets, members and ring, and watches carry
// changes to every node.
type Etcd struct {
	c      *clientv3.Client
	prefix string
	log    *slog.Logger
	// callTimeout is EtcdCallTimeout unless a test sets it.
	callTimeout time.Duration
}

// ParseEtcdURL turns etcd://host:2379[,host:2379…][/prefix] into endpoints
// and a key prefix (default "strata/").
func ParseEtcdURL(s string) (endpoints []string, prefix string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "etcd" || u.Host == "" {
		return nil, "", fmt.Errorf("metadata store %q: want etcd://host:port[,host:port…][/prefix]", s)
	}
	for _, h := range strings.Split(u.Host, ",") {
		if h != "" {
			endpoints = append(endpoints, "http://"+h)
		}
	}
	prefix = strings.Trim(u.Path, "/")
	if prefix == "" {
		prefix = "strata"
	}
	return endpoints, prefix + "/", nil
}

// OpenEtcd connects to the etcd cluster of an etcd:// URL.
func OpenEtcd(ctx context.Context, rawURL string, log *slog.Logger) (*Etcd, error) {
	eps, prefix, err := ParseEtcdURL(rawURL)
	if err != nil {
		return nil, err
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: nil})
	if err != nil {
		return nil, fmt.Errorf("etcd %v: %w", eps, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.Status(sctx, c.Endpoints()[0]); err != nil {
		c.Close()
		return nil, fmt.Errorf("etcd %v: %w", eps, err)
	}
	return &Etcd{c: c, prefix: prefix, log: log}, nil
}

// Close disconnects.
func (e *Etcd) Close() error { return e.c.Close() }

// EtcdCallTimeout bounds a metadata call whose context has no deadline of
// its own: an etcd that stopped answering (partitioned, out of quorum)
// fails the call instead of holding its caller forever.
const EtcdCallTimeout = 10 * time.Second

func (e *Etcd) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	t := e.callTimeout
	if t <= 0 {
		t = EtcdCallTimeout
	}
	return context.WithTimeout(ctx, t)
}

// Client is the etcd client (leases, watches).
func (e *Etcd) Client() *clientv3.Client { return e.c }

// Ready is nil when etcd answers a read (within ctx and the store's
// deadline): the node's readiness.
func (e *Etcd) Ready(ctx context.Context) error {
	if _, err := e.Get(ctx, "ready-probe"); err != nil && !errors.Is(err, metastore.ErrNotFound) {
		return fmt.Errorf("etcd: %w", err)
	}
	return nil
}

// Sub returns a view of the keys under p (another metastore.Store).
func (e *Etcd) Sub(p string) *Etcd {
	return &Etcd{c: e.c, prefix: e.prefix + p, log: e.log, callTimeout: e.callTimeout}
}

func (e *Etcd) Get(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	r, err := e.c.Get(ctx, e.prefix+key)
	if err != nil {
		return nil, fmt.Errorf("etcd get %q: %w", key, err)
	}
	if len(r.Kvs) == 0 {
		return nil, metastore.ErrNotFound
	}
	return r.Kvs[0].Value, nil
}

func (e *Etcd) Put(ctx context.Context, key string, value []byte) error {
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	if _, err := e.c.Put(ctx, e.prefix+key, string(value)); err != nil {
		return fmt.Errorf("etcd put %q: %w", key, err)
	}
	return nil
}

func (e *Etcd) PutIfAbsent(ctx context.Context, key string, value []byte) (bool, error) {
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	k := e.prefix + key
	r, err := e.c.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).Then(clientv3.OpPut(k, string(value))).Commit()
	if err != nil {
		return false, fmt.Errorf("etcd put-if-absent %q: %w", key, err)
	}
	return r.Succeeded, nil
}

// Swap stores value only if the key holds old (absent when old is nil).
func (e *Etcd) Swap(ctx context.Context, key string, old, value []byte) (bool, error) {
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	k := e.prefix + key
	cmp := clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
	if old != nil {
		cmp = clientv3.Compare(clientv3.Value(k), "=", string(old))
	}
	r, err := e.c.Txn(ctx).If(cmp).Then(clientv3.OpPut(k, string(value))).Commit()
	if err != nil {
		return false, fmt.Errorf("etcd swap %q: %w", key, err)
	}
	return r.Succeeded, nil
}

func (e *Etcd) Delete(ctx context.Context, key string) error {
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	if _, err := e.c.Delete(ctx, e.prefix+key); err != nil {
		return fmt.Errorf("etcd delete %q: %w", key, err)
	}
	return nil
}

func (e *Etcd) List(ctx context.Context, prefix string) ([]metastore.KV, error) {
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	r, err := e.c.Get(ctx, e.prefix+prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("etcd list %q: %w", prefix, err)
	}
	out := make([]metastore.KV, 0, len(r.Kvs))
	for _, kv := range r.Kvs {
		out = append(out, metastore.KV{Key: strings.TrimPrefix(string(kv.Key), e.prefix), Value: kv.Value})
	}
	return out, nil
}

// Watch calls fn for every change under prefix (value nil: deleted) until
// ctx ends, re-establishing the watch after errors; after a gap it calls
// fn with every current entry again, so a watcher never stays stale.
func (e *Etcd) Watch(ctx context.Context, prefix string, fn func(key string, value []byte)) {
	for ctx.Err() == nil {
		gctx, cancel := e.bounded(ctx)
		r, err := e.c.Get(gctx, e.prefix+prefix, clientv3.WithPrefix())
		cancel()
		if err != nil {
			e.log.Warn("etcd watch: list failed; retrying", "prefix", prefix, "err", err)
			sleepCtx(ctx, time.Second)
			continue
		}
		for _, kv := range r.Kvs {
			fn(strings.TrimPrefix(string(kv.Key), e.prefix), kv.Value)
		}
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for resp := range e.c.Watch(wctx, e.prefix+prefix, clientv3.WithPrefix(), clientv3.WithRev(r.Header.Revision+1)) {
			if err := resp.Err(); err != nil {
				e.log.Warn("etcd watch interrupted; resyncing", "prefix", prefix, "err", err)
				break
			}
			for _, ev := range resp.Events {
				var v []byte
				if ev.Type == clientv3.EventTypePut {
					v = ev.Kv.Value
				}
				fn(strings.TrimPrefix(string(ev.Kv.Key), e.prefix), v)
			}
		}
		cancel()
		sleepCtx(ctx, 200*time.Millisecond)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
