package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/strata-storage/strata/cluster"
	"github.com/strata-storage/strata/metastore"
	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/objectstore/shard"
	"github.com/strata-storage/strata/placement"
	"github.com/strata-storage/strata/ring"
)

// Cluster mode: the node's buckets, members, root credentials and ring live
// in etcd (--meta etcd://…); its own devices are local, every other ring
// device is reached over RPC.

// Keys of the cluster metadata store.
const (
	keyRing = "ring"
	keyRoot = "root-credentials"
)

func (n *Node) clustered() bool { return n.cfg.Meta != "" }

// tlsConfigs returns the server config of the S3, admin and NBD listeners,
// the RPC client config and the RPC server config (all nil without
// certificates). With certificates the RPC is mutual TLS: every node
// presents its certificate as a client too, and the RPC listener accepts
// only clients whose certificate the CA (--tls-ca, else the system roots)
// signed.
func (n *Node) tlsConfigs() (server, client, rpcServer *tls.Config, err error) {
	if n.cfg.TLSCert == "" && n.cfg.TLSKey == "" {
		return nil, nil, nil, nil
	}
	cert, err := tls.LoadX509KeyPair(n.cfg.TLSCert, n.cfg.TLSKey)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("TLS certificate: %w", err)
	}
	if n.clustered() && !clientAuthAllowed(cert.Leaf) {
		return nil, nil, nil, fmt.Errorf("TLS certificate %s does not allow client authentication (extended key usage clientAuth), which nodes need for mutual TLS on the RPC", n.cfg.TLSCert)
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	rpcServer = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, ClientAuth: tls.RequireAndVerifyClientCert}
	if n.cfg.TLSCA != "" {
		pem, err := os.ReadFile(n.cfg.TLSCA)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, nil, fmt.Errorf("TLS CA %s: no certificates", n.cfg.TLSCA)
		}
		client.RootCAs, rpcServer.ClientCAs = pool, pool
	}
	return server, client, rpcServer, nil
}

// clientAuthAllowed reports whether a certificate may authenticate a TLS
// client: no extended key usage at all, or one that names client auth.
func clientAuthAllowed(leaf *x509.Certificate) bool {
	if leaf == nil || len(leaf.ExtKeyUsage) == 0 {
		return true
	}
	for _, u := range leaf.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
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

// clusterRoot makes every node use the same root credentials: the first
// node's (given or generated) are stored in etcd; others must match.
func (n *Node) clusterRoot(ctx context.Context) error {
	want := n.cfg.Root
	if want.AccessKey == "" || want.SecretKey == "" {
		want = newCredentials()
	}
	v, _ := json.Marshal(want)
	created, err := n.etcd.PutIfAbsent(ctx, keyRoot, v)
	if err != nil {
		return err
	}
	b, err := n.etcd.Get(ctx, keyRoot)
	if err != nil {
		return err
	}
	var have Credentials
	if err := json.Unmarshal(b, &have); err != nil {
		return fmt.Errorf("cluster root credentials: %w", err)
	}
	if n.cfg.Root.AccessKey != "" && have != n.cfg.Root {
		return errors.New("STRATA_ROOT_USER/STRATA_ROOT_PASSWORD differ from the cluster's root credentials")
	}
	n.Root, n.NewRoot = have, created && n.cfg.Root.AccessKey == ""
	return nil
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
	local := n.devs.Snapshot()
	for i := 0; i < n.cfg.Pools; i++ {
		name := fmt.Sprintf("disk%d", i)
		di := cluster.DeviceInfo{Name: name}
		for id, ld := range local {
			if ld.Name == name {
				total, free, _ := ld.Pool.Capacity()
				di.CapacityBytes, di.FreeBytes, di.ID = int64(total), int64(free), id
				if ld.Store != nil {
					di.UsedBytes = ld.Store.Used()
				}
			}
		}
		info.Devices = append(info.Devices, di)
	}
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

// clusterRing waits for the cluster's ring, building it from the members
// once ClusterSize nodes have joined if nobody has yet.
func (n *Node) clusterRing(ctx context.Context) (*ring.Ring, error) {
	logged := time.Time{}
	for {
		if b, err := n.etcd.Get(ctx, keyRing); err == nil {
			r, err := placement.DecodeRing(b)
			if err != nil {
				return nil, fmt.Errorf("cluster ring: %w", err)
			}
			return r, nil
		} else if !errors.Is(err, metastore.ErrNotFound) {
			return nil, err
		}
		members, err := cluster.ListMembers(ctx, n.etcd)
		if err != nil {
			return nil, err
		}
		up := 0
		for _, m := range members {
			if m.State == "up" {
				up++
			}
		}
		if n.cfg.ClusterSize > 0 && up >= n.cfg.ClusterSize {
			r, err := n.buildClusterRing(members)
			if err != nil {
				return nil, err
			}
			b, err := r.MarshalBinary()
			if err != nil {
				return nil, err
			}
			if _, err := n.etcd.PutIfAbsent(ctx, keyRing, b); err != nil {
				return nil, err
			}
			continue // read back whichever ring won
		}
		if time.Since(logged) > 10*time.Second {
			n.log.Info("waiting for the cluster's ring", "members_up", up, "cluster_size", n.cfg.ClusterSize)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// buildClusterRing places every device of every live member.
func (n *Node) buildClusterRing(members []cluster.NodeInfo) (*ring.Ring, error) {
	ec := n.cfg.EC
	if ec == "" {
		ec = "2+2"
	}
	k, m, err := ParseEC(ec)
	if err != nil {
		return nil, err
	}
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	var devs []ring.Device
	for _, mb := range members {
		if mb.State != "up" {
			continue
		}
		for _, d := range mb.Devices {
			devs = append(devs, ring.Device{ID: uint32(len(devs)), Region: mb.Region, Zone: mb.Zone, Node: mb.Name, Name: d.Name, Weight: 1})
		}
	}
	r, err := ring.Build(devs, n.cfg.PartPower, k, m)
	if err != nil {
		return nil, fmt.Errorf("building the cluster ring: %w", err)
	}
	n.log.Info("built the cluster ring", "devices", len(devs), "ec", ec)
	return r, nil
}

// LocalDevice and LocalDeviceIDs serve the RPC.
// They read the device set's snapshot: an RPC never waits for a ring edit.
func (n *Node) LocalDevice(id uint32) *shard.Store { return n.devs.Store(id) }

func (n *Node) LocalDeviceIDs() []uint32 { return n.devs.IDs() }

// startClustered brings a cluster node up: etcd, RPC, membership, the
// shared ring, local devices, then the S3 and admin listeners.
func (n *Node) startClustered(ctx context.Context) (err error) {
	cfg := n.cfg
	n.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := n.privateDataDir(); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := n.joinCluster(ctx); err != nil {
		return err
	}
	n.db = metastore.OpenMirrored(filepath.Join(cfg.DataDir, "meta"), n.log)
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
	rpc := cluster.NewServer(cfg.NodeName, cfg.ClusterSecret, n, n.Registry, n.log)
	rpc.SetVolumes(n.volumes)
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

	r, err := n.clusterRing(ctx)
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
	ocfg := objectstore.DefaultConfig()
	ocfg.DeviceUnreadable = n.devs.Unreadable
	ocfg.BlockSize, ocfg.Logger, ocfg.Registry = cfg.BlockSize, n.log, n.Registry
	ocfg.StaleUploadAge = cfg.StaleUploadAge
	ocfg.Hints = metastore.NewPebble(n.db, "h/")
	if n.locks, err = cluster.NewKeyLocks(n.etcd, cfg.HeartbeatTTL, 10*time.Second); err != nil {
		return err
	}
	ocfg.Locker = n.locks
	if n.store, err = objectstore.New(ocfg, r, n.place.DevicesFor(r), n.etcd.Sub("m/")); err != nil {
		return err
	}
	n.place.Start(ctx, r, n.store, n.volumes)
	n.registerPoolMetrics()
	n.goBackground(func() { n.store.RunHints(ctx, cfg.HintInterval) })
	return n.serve(ctx)
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
