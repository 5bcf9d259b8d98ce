package blockserve

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-storage/strata/blockpool/nbd"
	"github.com/strata-storage/strata/metastore"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// selfSigned is a certificate for the node and its PEM.
func selfSigned(t *testing.T) (*tls.Config, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "node"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func write(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The NBD TLS options a node's flags make: plaintext only without keys or
// certificates, certificates checked against a CA, PSK alone, and every
// combination that would do nothing refused.
func TestNBDOptions(t *testing.T) {
	cert, caPEM := selfSigned(t)
	ca := write(t, "ca.pem", caPEM)
	junk := write(t, "junk.pem", []byte("not a certificate"))
	psk := write(t, "psk", []byte("client1:00112233445566778899aabbccddeeff\n"))
	for _, c := range []struct {
		name      string
		cfg       Config
		err       string
		tls, keys bool
	}{
		{"plaintext", Config{}, "", false, false},
		{"client CA without a certificate", Config{NBDClientCA: ca}, "--nbd-client-ca needs --tls-cert", false, false},
		{"insecure with a certificate", Config{ServerTLS: cert, NBDInsecure: true, TLSCA: ca}, "--nbd-insecure serves plaintext", false, false},
		{"insecure with keys", Config{NBDPSKFile: psk, NBDInsecure: true}, "--nbd-insecure serves plaintext", false, false},
		{"certificate without a CA or keys", Config{ServerTLS: cert}, "needs the CA of its clients", false, false},
		{"certificate and keys, no CA", Config{ServerTLS: cert, NBDPSKFile: psk}, "", false, true},
		{"keys alone", Config{NBDPSKFile: psk}, "", false, true},
		{"certificate and CA", Config{ServerTLS: cert, TLSCA: ca}, "", true, false},
		{"the client CA wins over the node's", Config{ServerTLS: cert, TLSCA: junk, NBDClientCA: ca}, "", true, false},
		{"a CA file without certificates", Config{ServerTLS: cert, NBDClientCA: junk}, "no certificates", false, false},
	} {
		c.cfg.Log = quiet
		opts, err := (&Service{cfg: c.cfg}).nbdOptions()
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err == "" && ((opts.TLS != nil) != c.tls || (opts.PSK != nil) != c.keys):
			t.Errorf("%s: TLS %v, PSK %v", c.name, opts.TLS != nil, opts.PSK != nil)
		case c.tls && opts.TLS.ClientAuth != tls.RequireAndVerifyClientCert:
			t.Errorf("%s: client certificates are not required", c.name)
		}
	}
}

// Without TLS, NBD is served on loopback only; Close is idempotent.
func TestOpenServesPlaintextOnLoopbackOnly(t *testing.T) {
	open := func(addr string) (*Service, error) {
		db, err := metastore.OpenPebble(t.TempDir(), quiet)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return Open(context.Background(), Config{Node: "n1", Zone: "z1", Dir: t.TempDir(), Meta: metastore.NewPebble(db, "v/"),
			Lease: time.Second, NBDAddr: addr, Registry: prometheus.NewRegistry(), Log: quiet})
	}
	// (Checked on an address, not a listener: tests listen on loopback.)
	elsewhere := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 10809}
	if err := mayServe(elsewhere, nbd.Options{}, false); err == nil || !strings.Contains(err.Error(), "loopback addresses only") {
		t.Fatalf("plaintext off loopback: %v", err)
	}
	if err := mayServe(elsewhere, nbd.Options{}, true); err != nil {
		t.Fatalf("plaintext off loopback with --nbd-insecure: %v", err)
	}
	if err := mayServe(elsewhere, nbd.Options{PSK: func(string) ([]byte, bool) { return nil, false }}, false); err != nil {
		t.Fatalf("PSK off loopback: %v", err)
	}
	s, err := open("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.NBDAddr(), "127.0.0.1:") || s.Manager() == nil {
		t.Fatalf("NBD on %q", s.NBDAddr())
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	off, err := open("off")
	if err != nil || off.NBDAddr() != "" {
		t.Fatalf("NBD off: %q %v", off.NBDAddr(), err)
	}
	off.Close(context.Background())
}
