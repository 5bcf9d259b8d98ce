package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/strata-storage/strata/blockpool/replicate/volrpc"
	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore/shard/shardrpc"
	"github.com/strata-storage/strata/placement"
	"github.com/strata-storage/strata/users"
)

// Cluster mode: the node's buckets, members, root credentials and ring live
// in etcd (--meta etcd://…); its own devices are local, every other ring
// device is reached over RPC.

func (n *Node) clustered() bool { return n.cfg.Meta != "" }

// tlsConfigs are the node's TLS configurations (cluster.TLSConfigs).
func (n *Node) tlsConfigs() (server, client, rpcServer *tls.Config, err error) {
	return cluster.TLSConfigs(n.cfg.TLSCert, n.cfg.TLSKey, n.cfg.TLSCA, n.clustered())
}

// joinCluster connects to etcd, agrees on root credentials, starts the RPC
// transport and registers this node.
func (n *Node) joinCluster(ctx context.Context) error {
	if n.cfg.ClusterSecret == "" {
		return errors.New("a cluster needs a shared secret: set STRATA_CLUSTER_SECRET (or --cluster-secret-file) on every node")
	}
	e, err := cluster.OpenEtcd(ctx, n.cfg.Meta, n.log)
	if err != nil {
		return err
	}
	n.etcd = e
	if err := n.clusterRoot(ctx); err != nil {
		return err
	}
	_, clientTLS, _, err := n.tlsConfigs()
	if err != nil {
		return err
	}
	n.transport = cluster.NewTransport(n.cfg.NodeName, n.cfg.ClusterSecret, clientTLS, n.cfg.RPCTimeouts)
	n.peers = cluster.NewPeers(n.transport)
	return nil
}

// clusterRoot makes every node use the same root credentials.
func (n *Node) clusterRoot(ctx context.Context) (err error) {
	n.Root, n.NewRoot, err = users.ClusterRoot(ctx, n.etcd, n.cfg.Root)
	return err
}

// nodeInfo is what the heartbeat publishes.
func (n *Node) nodeInfo() cluster.NodeInfo {
	info := cluster.NodeInfo{Name: n.cfg.NodeName, Region: n.cfg.Region, Zone: n.cfg.Zone, Started: n.started}
	if n.rpcLn != nil {
		info.RPCAddr = n.advertise(n.rpcLn.Addr().String())
	}
	if n.s3Ln != nil {
		info.S3Addr = n.s3Ln.Addr().String()
		info.AdminAddr = n.adminLn.Addr().String()
	}
	if n.volumes != nil {
		pi := n.volumes.Pool()
		info.VolumePool = &pi
	}
	if n.place != nil {
		if r := n.place.Current(); r != nil {
			info.RingVersion = r.Version
		}
	}
	info.Devices = n.devs.Infos(n.cfg.Pools)
	return info
}

// advertise is the address others use: the listen address unless it is a
// wildcard, then --advertise.
func (n *Node) advertise(addr string) string {
	if n.cfg.AdvertiseRPC != "" {
		return n.cfg.AdvertiseRPC
	}
	return addr
}

// startClustered brings a cluster node up: etcd, RPC, membership, the
// shared ring, local devices, then the S3 and admin listeners.
func (n *Node) startClustered(ctx context.Context) (err error) {
	cfg := n.cfg
	if err := n.joinCluster(ctx); err != nil {
		return err
	}
	n.openMeta()
	_, _, rpcTLS, err := n.tlsConfigs()
	if err != nil {
		return err
	}
	if n.rpcLn, err = listen(cfg.RPCAddr, rpcTLS); err != nil {
		return fmt.Errorf("RPC listener: %w", err)
	}
	if err := n.openVolumes(ctx, n.etcd.Sub("v/")); err != nil {
		return err
	}
	rpc := cluster.NewServer(cfg.NodeName, cfg.ClusterSecret, shardrpc.Generations(n.devs), n.Registry, n.log)
	shardrpc.Register(rpc, cfg.NodeName, n.devs, n.Registry)
	volrpc.Register(rpc, cfg.NodeName, n.volumes)
	// No body limits here: a peer relays a slow client's PUT block by block,
	// so its stream may rightly pause for as long as a block takes to
	// arrive; only peers that signed the request get as far as the body,
	// and a peer that dies closes its connections (TCP keep-alive finds
	// the ones that vanish).
	n.rpcSrv = &http.Server{Handler: rpc, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { n.errc <- n.rpcSrv.Serve(n.rpcLn) }()

	member := cluster.NewMember(n.etcd, cfg.HeartbeatTTL, n.nodeInfo, n.log)
	if err := member.Join(ctx); err != nil {
		return err
	}
	n.goBackground(func() { member.Run(ctx) })
	if err := n.peers.Load(ctx, n.etcd, cfg.NodeName); err != nil {
		return err
	}
	n.goBackground(func() {
		n.peers.Follow(ctx, n.etcd, cfg.NodeName, func() {
			if n.place != nil {
				n.place.RefreshDevices()
			}
		})
	})

	r, err := placement.ClusterRing(ctx, n.etcd, n.cfg.ClusterSize, n.layout(), n.log)
	if err != nil {
		return err
	}
	n.Ring = r
	if err := n.openDevices(); err != nil {
		return err
	}
	if err := n.db.Check(); err != nil {
		return err
	}
	ocfg := n.objectConfig()
	ocfg.Hints = metastore.NewPebble(n.db, "h/")
	if n.locks, err = cluster.NewKeyLocks(n.etcd, cfg.HeartbeatTTL, 10*time.Second); err != nil {
		return err
	}
	ocfg.Locker = n.locks
	if err := n.openStore(ctx, ocfg, n.etcd.Sub("m/")); err != nil {
		return err
	}
	n.goBackground(func() { n.store.RunHints(ctx, cfg.HintInterval) })
	if err := n.serve(ctx); err != nil {
		return err
	}
	member.Publish() // the S3 and admin addresses, now that they listen
	return nil
}

func (n *Node) goBackground(f func()) {
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		f()
	}()
}

// stopBackground ends heartbeats (revoking the lease), watches and hint
// replay.
func (n *Node) stopBackground() {
	if n.bgCancel != nil {
		n.bgCancel()
	}
	n.bg.Wait()
	if n.locks != nil {
		n.locks.Close()
		n.locks = nil
	}
	if n.transport != nil {
		n.transport.Close()
	}
}
