package testnats

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// PKI is a throw-away certificate authority with a server certificate (valid for
// "localhost" and 127.0.0.1) and a client certificate, generated in the test and written
// as PEM files to a temporary directory that is removed when the test ends.
type PKI struct {
	// CAFile is the CA certificate (PEM) that signed both leaf certificates.
	CAFile string
	// ServerCertFile and ServerKeyFile are the server's certificate and key (PEM).
	ServerCertFile, ServerKeyFile string
	// ClientCertFile and ClientKeyFile are the client's certificate and key (PEM),
	// usable for mutual TLS.
	ClientCertFile, ClientKeyFile string
	// CAPool holds CA, for building a tls.Config directly.
	CAPool *x509.CertPool
}

// NewPKI generates a fresh CA, server and client certificate (ECDSA P-256, valid for one
// hour) in t.TempDir(). Each call makes an unrelated CA, so two PKIs serve as "right" and
// "wrong" CA for each other. Cost: three key generations, a few milliseconds.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "gamepersist test CA"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("testnats: create CA: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("testnats: parse CA: %v", err)
	}
	p := &PKI{CAFile: filepath.Join(dir, "ca.pem"), CAPool: x509.NewCertPool()}
	p.CAPool.AddCert(ca)
	writePEM(t, p.CAFile, "CERTIFICATE", caDER)

	leaf := func(name string, usage x509.ExtKeyUsage, dns []string, ips []net.IP) (string, string) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: serial(t),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    time.Now().Add(-time.Minute),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			DNSNames:     dns,
			IPAddresses:  ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatalf("testnats: create %s certificate: %v", name, err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatalf("testnats: marshal %s key: %v", name, err)
		}
		certFile, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		writePEM(t, certFile, "CERTIFICATE", der)
		writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
		return certFile, keyFile
	}
	p.ServerCertFile, p.ServerKeyFile = leaf("server", x509.ExtKeyUsageServerAuth,
		[]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.ClientCertFile, p.ClientKeyFile = leaf("client", x509.ExtKeyUsageClientAuth, nil, nil)
	return p
}

// WithTLS makes the server TLS-only with p's server certificate (TLS 1.2 at least).
// With verifyClients it also requires a client certificate signed by p's CA (mutual TLS).
func WithTLS(t testing.TB, p *PKI, verifyClients bool) func(*server.Options) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.ServerCertFile, p.ServerKeyFile)
	if err != nil {
		t.Fatalf("testnats: load server key pair: %v", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if verifyClients {
		cfg.ClientCAs = p.CAPool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return func(o *server.Options) {
		o.TLSConfig = cfg
		o.TLS = true
		o.TLSVerify = verifyClients
		o.TLSTimeout = 2
	}
}

// WithUserPassword requires clients to authenticate as user with password.
func WithUserPassword(user, password string) func(*server.Options) {
	return func(o *server.Options) {
		o.Username = user
		o.Password = password
	}
}

// WithToken requires clients to authenticate with token.
func WithToken(token string) func(*server.Options) {
	return func(o *server.Options) {
		o.Authorization = token
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testnats: generate key: %v", err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("testnats: serial: %v", err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("testnats: write %s: %v", path, err)
	}
}
