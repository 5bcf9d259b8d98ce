package objectstore

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Abandoned multipart uploads hold shard space until someone aborts them.
// The sweep aborts uploads initiated longer ago than Config.StaleUploadAge,
// as an AbortIncompleteMultipartUpload lifecycle rule would.

type sweeper struct {
	expired prometheus.Counter
}

func newSweeper(reg prometheus.Registerer) *sweeper {
	sw := &sweeper{expired: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_multipart_uploads_expired_total", Help: "Abandoned multipart uploads aborted by the background sweep."})}
	if reg != nil {
		reg.MustRegister(sw.expired)
	}
	return sw
}

// SweepUploads aborts every upload initiated before now-StaleUploadAge and
// returns how many it aborted.
func (s *Store) SweepUploads(ctx context.Context, now time.Time) (int, error) {
	cutoff := now.Add(-s.cfg.StaleUploadAge)
	n := 0
	for _, b := range s.ListBuckets(ctx) {
		uploads, err := s.ListUploads(ctx, b.Name, 1<<30)
		if err != nil {
			return n, err
		}
		for _, u := range uploads {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			if !u.Initiated.Before(cutoff) {
				continue
			}
			if err := s.AbortUpload(ctx, b.Name, u.Key, u.UploadID); err != nil {
				s.log.Warn("abort stale upload", "bucket", b.Name, "key", u.Key, "upload", u.UploadID, "err", err)
				continue
			}
			s.sweep.expired.Inc()
			s.log.Info("aborted stale multipart upload", "bucket", b.Name, "key", u.Key, "upload", u.UploadID, "initiated", u.Initiated)
			n++
		}
	}
	return n, nil
}

func (s *Store) runSweeper(ctx context.Context) {
	if s.cfg.SweepInterval <= 0 || s.cfg.StaleUploadAge <= 0 {
		return
	}
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if _, err := s.SweepUploads(ctx, now); err != nil && ctx.Err() == nil {
				s.log.Warn("upload sweep", "err", err)
			}
		}
	}
}
