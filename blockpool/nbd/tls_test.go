package nbd

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-storage/strata/tlspsk"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	t    *testing.T
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{t: t, cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate for cn (a server for 127.0.0.1, or a client)
// and its key, as PEM.
func (ca *testCA) issue(cn string, server bool) (certPEM, keyPEM []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
}

// clientDir writes the GnuTLS layout libnbd and qemu read: ca-cert.pem and,
// for cn != "", client-cert.pem and client-key.pem.
func (ca *testCA) clientDir(trusted *testCA, cn string) string {
	dir := ca.t.TempDir()
	os.WriteFile(filepath.Join(dir, "ca-cert.pem"), trusted.pem, 0o600)
	if cn != "" {
		c, k := ca.issue(cn, false)
		os.WriteFile(filepath.Join(dir, "client-cert.pem"), c, 0o600)
		os.WriteFile(filepath.Join(dir, "client-key.pem"), k, 0o600)
	}
	return dir
}

type grants map[string][]string // identity -> exports

func (g grants) MayAttach(identity, export string) bool {
	for _, e := range g[identity] {
		if e == export {
			return true
		}
	}
	return false
}

// startTLSServer serves the test volumes with TLS required and client
// certificates of ca verified; alice may attach vol1 and vol3, bob vol2.
func startTLSServer(t *testing.T, ca *testCA) string { return startSecureServer(t, ca, nil) }

// startSecureServer is startTLSServer that also takes TLS-PSK clients
// whose keys psk gives (with psk set; ca may then be nil: PSK only).
func startSecureServer(t *testing.T, ca *testCA, psk tlspsk.Keys) string {
	t.Helper()
	addr, vols := startServer(t)
	_ = addr // the plaintext server of startServer is not used here
	opts := Options{PSK: psk, Access: grants{"alice": {"vol1", "vol3"}, "bob": {"vol2"}}}
	if ca != nil {
		certPEM, keyPEM := ca.issue("strata-node", true)
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca.cert)
		opts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(poolExports{vols}, opts, slog.New(slog.DiscardHandler))
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	return ln.Addr().String()
}

func runErr(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// Issue 16 must-show 2 (certificates): nbdinfo and qemu-io attach over
// TLS with a client certificate; without one, without TLS or with a
// certificate of another CA the attach is refused; each client sees only
// the volumes it may attach.
func TestTLSClientsSeeAndAttachOnlyTheirVolumes(t *testing.T) {
	nbdinfo := tool(t, "nbdinfo", "libnbd-bin")
	qemuIO := tool(t, "qemu-io", "qemu-utils")
	ca := newCA(t, "strata test CA")
	addr := startTLSServer(t, ca)
	alice, bob := ca.clientDir(ca, "alice"), ca.clientDir(ca, "bob")

	for _, c := range []struct {
		who, dir, want, not string
	}{{"alice", alice, "vol1", "vol2"}, {"bob", bob, "vol2", "vol1"}} {
		out := run(t, nbdinfo, "--list", "nbds://"+addr+"?tls-certificates="+c.dir)
		if !strings.Contains(out, c.want) || strings.Contains(out, c.not) {
			t.Fatalf("%s's list:\n%s", c.who, out)
		}
	}
	out := run(t, nbdinfo, "--json", "nbds://"+addr+"/vol1?tls-certificates="+alice)
	if !strings.Contains(out, `"export-size": 268435456`) {
		t.Fatalf("alice's nbdinfo of vol1:\n%s", out)
	}
	refused := []struct {
		name string
		args []string
	}{
		{"bob attaching alice's volume", []string{"nbds://" + addr + "/vol1?tls-certificates=" + bob}},
		{"no TLS", []string{"nbd://" + addr + "/vol1"}},
		{"no TLS, list", []string{"--list", "nbd://" + addr}},
		{"TLS without a client certificate", []string{"nbds://" + addr + "/vol1?tls-certificates=" + ca.clientDir(ca, "")}},
		{"a certificate of another CA", []string{"nbds://" + addr + "/vol1?tls-certificates=" + newCA(t, "other CA").clientDir(ca, "alice")}},
	}
	for _, r := range refused {
		out, err := runErr(nbdinfo, r.args...)
		if err == nil {
			t.Fatalf("%s: nbdinfo succeeded:\n%s", r.name, out)
		}
		t.Logf("%s: %s", r.name, strings.TrimSpace(out))
	}

	// qemu-io writes and reads over TLS as alice; as bob it is refused.
	imageOpts := func(dir, export string) []string {
		return []string{"--object", "tls-creds-x509,id=tls0,endpoint=client,dir=" + dir, "--image-opts",
			"driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=" + addr[strings.LastIndex(addr, ":")+1:] + ",export=" + export + ",tls-creds=tls0"}
	}
	out = run(t, qemuIO, append(imageOpts(alice, "vol1"), "-c", "write -P 0x5a 1M 256k", "-c", "read -P 0x5a 1M 256k")...)
	if strings.Contains(out, "Pattern verification failed") || strings.Count(out, "read ") != 1 {
		t.Fatalf("qemu-io over TLS:\n%s", out)
	}
	out, err := runErr(qemuIO, append(imageOpts(bob, "vol1"), "-c", "read 0 4k")...)
	if err == nil && !strings.Contains(out, "Could not open") {
		t.Fatalf("qemu-io as bob on vol1:\n%s", out)
	}
	t.Logf("qemu-io as bob on vol1: %s", strings.TrimSpace(out))
}

// pskDir writes a GnuTLS keys.psk (what qemu's tls-creds-psk reads from
// its dir, and libnbd's tls-psk-file) holding identity's key.
func pskDir(t *testing.T, identity string, key []byte) string {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "keys.psk"), []byte(identity+":"+hex.EncodeToString(key)+"\n"), 0o600)
	return dir
}

// Issue 16 must-show 2 (PSK): nbdinfo and qemu-io attach over TLS-PSK, on
// a server that takes certificate clients on the same port; a wrong key,
// an unknown identity and a client without TLS are refused; each identity
// sees only its volumes.
func TestPSKClientsSeeAndAttachOnlyTheirVolumes(t *testing.T) {
	nbdinfo := tool(t, "nbdinfo", "libnbd-bin")
	qemuIO := tool(t, "qemu-io", "qemu-utils")
	keys := map[string][]byte{"alice": bytes.Repeat([]byte{0xa1}, 32), "bob": bytes.Repeat([]byte{0xb0}, 32)}
	ca := newCA(t, "strata test CA")
	addr := startSecureServer(t, ca, func(id string) ([]byte, bool) { k, ok := keys[id]; return k, ok })
	alice, bob := pskDir(t, "alice", keys["alice"]), pskDir(t, "bob", keys["bob"])
	uri := func(who, dir, export string) string {
		return "nbds://" + who + "@" + addr + "/" + export + "?tls-psk-file=" + filepath.Join(dir, "keys.psk")
	}

	for _, c := range []struct {
		who, dir, want, not string
	}{{"alice", alice, "vol1", "vol2"}, {"bob", bob, "vol2", "vol1"}} {
		out := run(t, nbdinfo, "--list", uri(c.who, c.dir, ""))
		if !strings.Contains(out, c.want) || strings.Contains(out, c.not) {
			t.Fatalf("%s's list over PSK:\n%s", c.who, out)
		}
	}
	out := run(t, nbdinfo, "--json", uri("alice", alice, "vol1"))
	if !strings.Contains(out, `"export-size": 268435456`) {
		t.Fatalf("alice's nbdinfo of vol1 over PSK:\n%s", out)
	}
	// The certificate client is still served on the same port.
	if out := run(t, nbdinfo, "--list", "nbds://"+addr+"?tls-certificates="+ca.clientDir(ca, "bob")); !strings.Contains(out, "vol2") {
		t.Fatalf("bob's list with a certificate beside PSK:\n%s", out)
	}
	refused := []struct{ name, uri string }{
		{"bob attaching alice's volume", uri("bob", bob, "vol1")},
		{"alice with bob's key", uri("alice", pskDir(t, "alice", keys["bob"]), "vol1")},
		{"alice with a wrong key", uri("alice", pskDir(t, "alice", bytes.Repeat([]byte{0xa2}, 32)), "vol1")},
		{"an unknown identity", uri("carol", pskDir(t, "carol", keys["alice"]), "vol1")},
		{"no TLS", "nbd://" + addr + "/vol1"},
	}
	for _, r := range refused {
		out, err := runErr(nbdinfo, r.uri)
		if err == nil {
			t.Fatalf("%s: nbdinfo succeeded:\n%s", r.name, out)
		}
		t.Logf("%s: %s", r.name, strings.TrimSpace(out))
	}

	imageOpts := func(who, dir, export string) []string {
		return []string{"--object", "tls-creds-psk,id=tls0,endpoint=client,username=" + who + ",dir=" + dir, "--image-opts",
			"driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=" + addr[strings.LastIndex(addr, ":")+1:] + ",export=" + export + ",tls-creds=tls0"}
	}
	out = run(t, qemuIO, append(imageOpts("alice", alice, "vol1"), "-c", "write -P 0x6b 2M 256k", "-c", "read -P 0x6b 2M 256k")...)
	if strings.Contains(out, "Pattern verification failed") || strings.Count(out, "read ") != 1 {
		t.Fatalf("qemu-io over PSK:\n%s", out)
	}
	out, err := runErr(qemuIO, append(imageOpts("bob", bob, "vol1"), "-c", "read 0 4k")...)
	if err == nil && !strings.Contains(out, "Could not open") {
		t.Fatalf("qemu-io as bob on vol1 over PSK:\n%s", out)
	}
	t.Logf("qemu-io as bob on vol1 over PSK: %s", strings.TrimSpace(out))

	// A PSK-only server (no certificate) serves PSK clients and refuses
	// certificate ones.
	pskOnly := startSecureServer(t, nil, func(id string) ([]byte, bool) { k, ok := keys[id]; return k, ok })
	if out := run(t, nbdinfo, "--list", "nbds://alice@"+pskOnly+"?tls-psk-file="+filepath.Join(alice, "keys.psk")); !strings.Contains(out, "vol1") {
		t.Fatalf("alice's list on a PSK-only server:\n%s", out)
	}
	if out, err := runErr(nbdinfo, "--list", "nbds://"+pskOnly+"?tls-certificates="+ca.clientDir(ca, "alice")); err == nil {
		t.Fatalf("a certificate client on a PSK-only server got in:\n%s", out)
	}
}

// Before STARTTLS a TLS server answers every option but ABORT with
// NBD_REP_ERR_TLS_REQD, and hangs up on NBD_OPT_EXPORT_NAME.
func TestTLSIsRequiredBeforeAnything(t *testing.T) {
	ca := newCA(t, "ca")
	addr := startTLSServer(t, ca)
	cl := dial(t, addr)
	for _, opt := range []uint32{optList, optInfo, optGo, 42} {
		cl.option(opt, goRequest("vol1"))
		if typ, _ := cl.reply(opt); typ != repErrTLSReqd {
			t.Fatalf("option %d before TLS: reply %#x", opt, typ)
		}
	}
	cl.option(optStartTLS, []byte("x"))
	if typ, _ := cl.reply(optStartTLS); typ != repErrInvalid {
		t.Fatalf("STARTTLS with data: %#x", typ)
	}
	cl.option(optExportName, []byte("vol1"))
	var b [1]byte
	if _, err := cl.c.Read(b[:]); err == nil {
		t.Fatal("NBD_OPT_EXPORT_NAME before TLS got an answer")
	}
	// A plaintext server answers STARTTLS as unsupported.
	plain, _ := startServer(t)
	pc := dial(t, plain)
	pc.option(optStartTLS, nil)
	if typ, _ := pc.reply(optStartTLS); typ != repErrUnsup {
		t.Fatalf("STARTTLS on a plaintext server: %#x", typ)
	}
}

// Issue 16 must-show 2 (memory): two connections that ask for 80 reads of
// 32 MiB each and never read a reply make the server hold no more than its
// buffer limits; once they go, everything is given back.
func TestUnreadRepliesHoldBoundedMemory(t *testing.T) {
	addr, _ := startServer(t)
	srv := lastServer
	var peak int64
	var conns []net.Conn
	for i := 0; i < 2; i++ {
		cl := dial(t, addr)
		cl.goTo("vol1")
		var b []byte
		for j := 0; j < 80; j++ {
			b = binary.BigEndian.AppendUint32(b, magicRequest)
			b = binary.BigEndian.AppendUint16(b, 0)
			b = binary.BigEndian.AppendUint16(b, cmdRead)
			b = binary.BigEndian.AppendUint64(b, uint64(j))
			b = binary.BigEndian.AppendUint64(b, uint64(j%8)<<25)
			b = binary.BigEndian.AppendUint32(b, MaxPayload)
		}
		cl.c.SetDeadline(time.Time{})
		go cl.c.Write(b)
		conns = append(conns, cl.c)
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		peak = max(peak, srv.BuffersInUse())
		time.Sleep(10 * time.Millisecond)
	}
	if peak == 0 || peak > DefaultServerBuffers {
		t.Fatalf("the server held %d bytes of buffers for unread replies (limit %d)", peak, DefaultServerBuffers)
	}
	if peak > 2*DefaultConnBuffers {
		t.Fatalf("two connections held %d bytes, more than their two shares", peak)
	}
	for _, c := range conns {
		c.Close()
	}
	deadline = time.Now().Add(60 * time.Second) // in-flight 32 MiB reads finish first (slow under -race)
	for srv.BuffersInUse() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := srv.BuffersInUse(); n != 0 {
		t.Fatalf("%d bytes still held after the clients left", n)
	}
	t.Logf("peak %d MiB held for 160 unread 32 MiB reads", peak>>20)
}
