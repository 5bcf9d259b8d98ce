// Package tlspsk is the server side of TLS 1.2 with pre-shared keys
// (RFC 4279, the PSK key exchange, with the AES-GCM suites of RFC 5487):
// the TLS that qemu's tls-creds-psk and libnbd's tls-psk-file speak, and
// that Go's crypto/tls does not have.
//
// It is deliberately small: one protocol version (TLS 1.2), two cipher
// suites (TLS_PSK_WITH_AES_128_GCM_SHA256 and ..._AES_256_GCM_SHA384), no
// resumption, no renegotiation, no compression. What it guarantees:
//   - a connection is established only with a peer that holds the key of
//     the identity it names: both Finished messages are MACs under a master
//     secret derived from that key, compared in constant time;
//   - the extended master secret (RFC 7627) is used whenever the client
//     offers it, binding the keys to the whole handshake;
//   - every record after ChangeCipherSpec is authenticated and encrypted
//     with AES-GCM under per-direction keys, with the record sequence
//     number in its nonce and additional data, so reordered, replayed,
//     truncated or altered records fail;
//   - memory per connection is bounded: records are at most 2^14 bytes of
//     plaintext and a handshake message at most 64 KiB.
//
// Server peeks at a ClientHello so that one listener can hand PSK clients
// to this package and certificate clients to crypto/tls.
package tlspsk
