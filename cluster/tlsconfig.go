package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLSConfigs returns the server config of the S3, admin and NBD listeners,
// the RPC client config and the RPC server config (all nil without
// certificates; mutual: the certificate must allow client auth). With certificates the RPC is mutual TLS: every node
// presents its certificate as a client too, and the RPC listener accepts
// only clients whose certificate the CA (--tls-ca, else the system roots)
// signed.
func TLSConfigs(certFile, keyFile, caFile string, mutual bool) (server, client, rpcServer *tls.Config, err error) {
	if certFile == "" && keyFile == "" {
		return nil, nil, nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("TLS certificate: %w", err)
	}
	if mutual && !clientAuthAllowed(cert.Leaf) {
		return nil, nil, nil, fmt.Errorf("TLS certificate %s does not allow client authentication (extended key usage clientAuth), which nodes need for mutual TLS on the RPC", certFile)
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	rpcServer = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, ClientAuth: tls.RequireAndVerifyClientCert}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, nil, fmt.Errorf("TLS CA %s: no certificates", caFile)
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
