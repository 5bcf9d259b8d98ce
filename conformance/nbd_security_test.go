package conformance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pki is a test certificate authority.
type pki struct {
	t    *testing.T
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate, PEM
}

func newPKI(t *testing.T) *pki {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "strata test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return &pki{t: t, cert: cert, key: key, file: file}
}

// issue writes a certificate for cn (a server of 127.0.0.1 when server)
// and its key into dir under the given file names.
func (p *pki) issue(dir, cn string, server bool, certName, keyName string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(filepath.Join(dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, keyName), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
}

// clientDir is the directory libnbd (tls-certificates=) and qemu
// (tls-creds-x509 dir=) read: ca-cert.pem, client-cert.pem, client-key.pem.
func (p *pki) clientDir(cn string) string {
	dir := p.t.TempDir()
	ca, _ := os.ReadFile(p.file)
	os.WriteFile(filepath.Join(dir, "ca-cert.pem"), ca, 0o600)
	if cn != "" {
		p.issue(dir, cn, false, "client-cert.pem", "client-key.pem")
	}
	return dir
}

// Must-show 2 of issue 16, on the binary: with a certificate the node
// serves NBD only over TLS to clients with certificates its CA signed, and
// `strata volume access` decides who attaches what: nbdinfo and qemu-io as
// alice reach her volume only, bob his, and nobody without credentials.
// Without a certificate, NBD refuses to listen beyond loopback.
func TestNBDOverTLSWithExportPermissions(t *testing.T) {
	t.Parallel()
	nbdinfo := requireTool(t, "nbdinfo")
	qemuIO := requireTool(t, "qemu-io")
	ca := newPKI(t)
	dir := t.TempDir()
	ca.issue(dir, "node1", true, "cert.pem", "key.pem")
	nbdAddr := freeAddr(t)
	srv := startBinaryServer(t, t.TempDir(), "--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem"),
		"--tls-ca", ca.file, "--nbd-addr", nbdAddr)
	cli := func(args ...string) string {
		return mustCLI(t, append(args, "--server", "https://"+srv.admin, "--ca-file", ca.file)...)
	}
	cli("volume", "create", "alice-db", "64MiB")
	cli("volume", "create", "bob-db", "32MiB")
	cli("volume", "access", "grant", "alice-db", "alice")
	if out := cli("volume", "access", "grant", "bob-db", "bob", "carol"); !strings.Contains(out, "bob, carol") {
		t.Fatalf("grant:\n%s", out)
	}
	cli("volume", "access", "revoke", "bob-db", "carol")
	if out := cli("volume", "access", "show", "bob-db"); !strings.Contains(out, "bob") || strings.Contains(out, "carol") {
		t.Fatalf("show after revoke:\n%s", out)
	}
	if out, err := strataCLI(t, "volume", "access", "grant", "bob-db", "has space", "--server", "https://"+srv.admin, "--ca-file", ca.file); err == nil {
		t.Fatalf("an identity with a space was granted:\n%s", out)
	}
	alice, bob, nobody := ca.clientDir("alice"), ca.clientDir("bob"), ca.clientDir("")

	for _, c := range []struct{ who, dir, sees, not string }{{"alice", alice, "alice-db", "bob-db"}, {"bob", bob, "bob-db", "alice-db"}} {
		out := runTool(t, nbdinfo, "--list", "nbds://"+nbdAddr+"?tls-certificates="+c.dir)
		if !strings.Contains(out, c.sees) || strings.Contains(out, c.not) {
			t.Fatalf("%s's list:\n%s", c.who, out)
		}
	}
	port := nbdAddr[strings.LastIndex(nbdAddr, ":")+1:]
	qemu := func(creds, export string, cmds ...string) (string, error) {
		args := []string{"--object", "tls-creds-x509,id=tls0,endpoint=client,dir=" + creds, "--image-opts",
			"driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=" + port + ",export=" + export + ",tls-creds=tls0"}
		for _, c := range cmds {
			args = append(args, "-c", c)
		}
		out, err := exec.Command(qemuIO, args...).CombinedOutput()
		return string(out), err
	}
	out, err := qemu(alice, "alice-db", "write -P 0x3c 0 1M", "flush", "read -P 0x3c 0 1M")
	if err != nil || strings.Contains(out, "Pattern verification failed") || strings.Count(out, "read ") != 1 {
		t.Fatalf("qemu-io as alice over TLS: %v\n%s", err, out)
	}
	for _, c := range []struct{ name, creds, export string }{
		{"bob on alice's volume", bob, "alice-db"},
		{"no client certificate", nobody, "alice-db"},
	} {
		if out, err := qemu(c.creds, c.export, "read 0 4k"); err == nil && !strings.Contains(out, "can't open") {
			t.Fatalf("qemu-io, %s, was let in:\n%s", c.name, out)
		}
	}
	for _, uri := range []string{"nbd://" + nbdAddr + "/alice-db", "nbds://" + nbdAddr + "/alice-db?tls-certificates=" + bob} {
		if out, err := exec.Command(nbdinfo, uri).CombinedOutput(); err == nil {
			t.Fatalf("nbdinfo %s was let in:\n%s", uri, out)
		}
	}

	// Plaintext beyond loopback is refused at start.
	refusedAtStart(t, "loopback", "--nbd-addr", "0.0.0.0:0")
}

// refusedAtStart runs a node with args and wants it to stop at once,
// saying want.
func refusedAtStart(t *testing.T, want string, args ...string) {
	t.Helper()
	s3, admin := freeAddr(t), freeAddr(t)
	cmd := exec.Command(strataBinary(t), append([]string{"server", "--data-dir", t.TempDir(), "--s3-addr", s3, "--admin-addr", admin, "--chunk-volume-size", "64GiB"}, args...)...)
	cmd.Env = append(os.Environ(), "STRATA_ROOT_USER="+testUser, "STRATA_ROOT_PASSWORD="+testSecret)
	done := make(chan []byte, 1)
	go func() { out, _ := cmd.CombinedOutput(); done <- out }()
	select {
	case out := <-done:
		if !strings.Contains(string(out), want) {
			t.Fatalf("strata server %s stopped without saying %q:\n%s", strings.Join(args, " "), want, out)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("strata server %s started", strings.Join(args, " "))
	}
}

// Must-show 2 of issue 16 (PSK), on the binary: with --nbd-psk-file the
// node requires TLS on NBD and takes clients that prove a pre-shared key;
// `strata volume access` grants PSK identities as it grants certificate
// names; a key added to the file works without a restart; a key file that
// others can read is refused at start.
func TestNBDOverPSKWithExportPermissions(t *testing.T) {
	t.Parallel()
	nbdinfo := requireTool(t, "nbdinfo")
	qemuIO := requireTool(t, "qemu-io")
	keyDir := t.TempDir()
	keyFile := filepath.Join(keyDir, "keys.psk")
	keys := map[string]string{"alice": strings.Repeat("a1", 32), "bob": strings.Repeat("b0", 32), "carol": strings.Repeat("c4", 32)}
	writeKeys := func(who ...string) {
		var b strings.Builder
		for _, w := range who {
			b.WriteString(w + ":" + keys[w] + "\n")
		}
		if err := os.WriteFile(keyFile+".new", []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Rename(keyFile+".new", keyFile)
	}
	writeKeys("alice", "bob")
	nbdAddr := freeAddr(t)
	srv := startBinaryServer(t, t.TempDir(), "--nbd-addr", nbdAddr, "--nbd-psk-file", keyFile)
	cli := func(args ...string) string { return mustCLI(t, append(args, "--server", "http://"+srv.admin)...) }
	cli("volume", "create", "alice-db", "64MiB")
	cli("volume", "create", "bob-db", "32MiB")
	cli("volume", "access", "grant", "alice-db", "alice", "carol")
	cli("volume", "access", "grant", "bob-db", "bob")
	// Each client's own keys.psk, as qemu and libnbd read it.
	clientKeys := func(who, key string) string {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "keys.psk"), []byte(who+":"+key+"\n"), 0o600)
		return dir
	}
	uri := func(who, dir, export string) string {
		return "nbds://" + who + "@" + nbdAddr + "/" + export + "?tls-psk-file=" + filepath.Join(dir, "keys.psk")
	}
	alice, bob := clientKeys("alice", keys["alice"]), clientKeys("bob", keys["bob"])
	for _, c := range []struct{ who, dir, sees, not string }{{"alice", alice, "alice-db", "bob-db"}, {"bob", bob, "bob-db", "alice-db"}} {
		out := runTool(t, nbdinfo, "--list", uri(c.who, c.dir, ""))
		if !strings.Contains(out, c.sees) || strings.Contains(out, c.not) {
			t.Fatalf("%s's list over PSK:\n%s", c.who, out)
		}
	}
	port := nbdAddr[strings.LastIndex(nbdAddr, ":")+1:]
	qemu := func(who, creds, export string, cmds ...string) (string, error) {
		args := []string{"--object", "tls-creds-psk,id=tls0,endpoint=client,username=" + who + ",dir=" + creds, "--image-opts",
			"driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=" + port + ",export=" + export + ",tls-creds=tls0"}
		for _, c := range cmds {
			args = append(args, "-c", c)
		}
		out, err := exec.Command(qemuIO, args...).CombinedOutput()
		return string(out), err
	}
	out, err := qemu("alice", alice, "alice-db", "write -P 0x4d 0 1M", "flush", "read -P 0x4d 0 1M")
	if err != nil || strings.Contains(out, "Pattern verification failed") || strings.Count(out, "read ") != 1 {
		t.Fatalf("qemu-io as alice over PSK: %v\n%s", err, out)
	}
	carol := clientKeys("carol", keys["carol"])
	for _, c := range []struct{ name, uri string }{
		{"bob on alice's volume", uri("bob", bob, "alice-db")},
		{"alice with a wrong key", uri("alice", clientKeys("alice", keys["bob"]), "alice-db")},
		{"carol, granted but not in the key file yet", uri("carol", carol, "alice-db")},
		{"no TLS", "nbd://" + nbdAddr + "/alice-db"},
	} {
		if out, err := exec.Command(nbdinfo, c.uri).CombinedOutput(); err == nil {
			t.Fatalf("nbdinfo, %s, was let in:\n%s", c.name, out)
		}
	}
	// carol's key goes into the file: she reads alice's data, no restart.
	writeKeys("alice", "bob", "carol")
	out, err = qemu("carol", carol, "alice-db", "read -P 0x4d 0 1M")
	if err != nil || strings.Contains(out, "Pattern verification failed") || strings.Count(out, "read ") != 1 {
		t.Fatalf("qemu-io as carol after her key was added: %v\n%s", err, out)
	}

	os.Chmod(keyFile, 0o644)
	refusedAtStart(t, "chmod 600", "--nbd-addr", freeAddr(t), "--nbd-psk-file", keyFile)
}

// rss is a process's resident set in bytes.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// nbdAttach opens a plaintext NBD connection and attaches export with
// NBD_OPT_EXPORT_NAME.
func nbdAttach(t *testing.T, addr, export string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	hello := make([]byte, 18)
	if _, err := io.ReadFull(c, hello); err != nil {
		t.Fatal(err)
	}
	c.Write(binary.BigEndian.AppendUint32(nil, 3)) // fixed newstyle, no zeroes
	opt := binary.BigEndian.AppendUint64(nil, 0x49484156454F5054)
	opt = binary.BigEndian.AppendUint32(opt, 1) // NBD_OPT_EXPORT_NAME
	opt = binary.BigEndian.AppendUint32(opt, uint32(len(export)))
	c.Write(append(opt, export...))
	ans := make([]byte, 10)
	if _, err := io.ReadFull(c, ans); err != nil {
		t.Fatalf("attach %s: %v", export, err)
	}
	c.SetDeadline(time.Time{})
	return c
}

// Must-show 2 of issue 16 (memory): two clients that each ask for 80 reads
// of 32 MiB and never read a reply grow the server's RSS by less than
// 256 MiB, and the server keeps serving others meanwhile.
func TestNBDUnreadRepliesKeepServerMemoryBounded(t *testing.T) {
	t.Parallel()
	nbdAddr := freeAddr(t)
	srv := startBinaryServer(t, t.TempDir(), "--nbd-addr", nbdAddr)
	mustCLI(t, "volume", "create", "big", "256MiB", "--server", "http://"+srv.admin)
	pid := srv.proc.cmd.Process.Pid
	before := rss(t, pid)
	for i := 0; i < 2; i++ {
		c := nbdAttach(t, nbdAddr, "big")
		var b []byte
		for j := 0; j < 80; j++ {
			b = binary.BigEndian.AppendUint32(b, 0x25609513)
			b = binary.BigEndian.AppendUint16(b, 0)
			b = binary.BigEndian.AppendUint16(b, 0) // NBD_CMD_READ
			b = binary.BigEndian.AppendUint64(b, uint64(j))
			b = binary.BigEndian.AppendUint64(b, uint64(j%8)<<25)
			b = binary.BigEndian.AppendUint32(b, 32<<20)
		}
		go c.Write(b) // the server stops reading once it holds its share
	}
	peak := before
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		peak = max(peak, rss(t, pid))
		time.Sleep(20 * time.Millisecond)
	}
	// Another client is served meanwhile.
	nbdinfo := requireTool(t, "nbdinfo")
	t0 := time.Now()
	out, err := exec.Command(nbdinfo, "nbd://"+nbdAddr+"/big").CombinedOutput()
	if err != nil || time.Since(t0) > 10*time.Second {
		t.Fatalf("nbdinfo while two clients hold their buffers: %v after %v\n%s", err, time.Since(t0), out)
	}
	growth := peak - before
	t.Logf("RSS %d MiB before, %d MiB at the peak of 160 unread 32 MiB reads (+%d MiB)", before>>20, peak>>20, growth>>20)
	if growth >= 256<<20 {
		t.Fatalf("RSS grew by %d MiB", growth>>20)
	}
}
