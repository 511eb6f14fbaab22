package natsbridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/internal/redact"

	"github.com/gamepersist/gamepersist/internal/configerr"
)

// Defaults that ConnectConfig.WithDefaults fills in for zero fields. Every other zero
// field leaves nats.go's own default (nats.GetDefaultOptions).
const (
	// defaultURL is the server Connect dials when ConnectConfig.URLs is empty.
	defaultURL = nats.DefaultURL
	// defaultClientName is the connection name shown in the server's monitoring.
	defaultClientName = "gamepersist"
	// defaultMaxReconnects (-1) keeps reconnecting forever. It differs from nats.go's
	// 60 attempts (2 minutes at nats.go's 2 s wait) on purpose: a game server outlives a
	// NATS restart or a long network outage, and a connection that gave up is closed for
	// good — every Bridge, invalidator and subscription on it would stop for the rest of
	// the process's life. nats.NoReconnect() in ConnectConfig.Options disables it.
	defaultMaxReconnects = -1
	// defaultMinTLSVersion is the lowest TLS version Connect accepts, and the floor.
	defaultMinTLSVersion = tls.VersionTLS12
)

// ConnectConfig configures Connect. The zero value connects to nats://127.0.0.1:4222 without TLS or
// credentials. Options are checked eagerly (files are read, conflicts are rejected) and
// every problem is an error wrapping ErrInvalidConfig.
type ConnectConfig struct {
	// URLs lists the servers, e.g. "nats://host:4222" or "tls://host:4222"; a URL
	// without a scheme gets "nats://". Credentials may be embedded ("nats://u:p@h",
	// "nats://token@h") but then no other credential option may be set. Every error and
	// log line shows the URLs with credentials replaced by "xxxxx". Default: nats://127.0.0.1:4222 (nats.DefaultURL).
	URLs []string
	// Name is the connection name shown in the server's monitoring. Default:
	// "gamepersist".
	Name string

	// RequireTLS refuses a server that does not offer TLS. It is implied by any TLS
	// option below and by a "tls://" URL. Without it, a server that requires TLS is
	// still spoken to over TLS, verified against the system roots.
	RequireTLS bool
	// CAFile is a PEM file of CA certificates that replaces the system roots for
	// verifying the server's certificate.
	CAFile string
	// CertFile and KeyFile are the client's PEM certificate and key for mutual TLS;
	// set both or neither.
	CertFile, KeyFile string
	// TLSConfig is a base TLS configuration; it is cloned, never modified. The file
	// options above add to it, ServerName overrides it, and its MinVersion is raised to
	// MinTLSVersion. A TLSConfig with InsecureSkipVerify is honoured as the caller's
	// explicit choice; nothing else turns verification off.
	TLSConfig *tls.Config
	// ServerName is the name the server's certificate must carry. Default: the host
	// of the URL being dialled (hostname verification is always on).
	ServerName string
	// MinTLSVersion is the lowest TLS version accepted; it may not be below
	// TLS 1.2. Default: TLS 1.2.
	MinTLSVersion uint16

	// User and Password authenticate with a user name and password (both required).
	User, Password string
	// Token authenticates with a token.
	Token string
	// NKeySeedFile authenticates with the NKey user seed in this file (read eagerly).
	NKeySeedFile string
	// CredsFile authenticates with a decentralised-auth credentials file (JWT and seed),
	// read by nats.go on every (re)connect; it must be readable at Connect.
	CredsFile string

	// ConnectTimeout bounds the dial and handshake to one server; Connect also stops at
	// ctx's deadline. Default: nats.go's (nats.DefaultTimeout, 2 s).
	ConnectTimeout time.Duration
	// MaxReconnects is how many reconnect attempts are made per server before giving
	// up; negative means forever. 0 means -1 (forever), unlike nats.go's 60: a game
	// server outlives a NATS restart or a long outage, and a connection that gave up is
	// closed for good, stopping every Bridge, invalidator and subscription on it. To
	// disable reconnection, or to tune the wait, jitter or ping interval (nats.go's
	// defaults: 2 s, 100 ms / 1 s with TLS, 2 minutes), pass nats.NoReconnect(),
	// nats.ReconnectWait, nats.ReconnectJitter or nats.PingInterval in Options.
	MaxReconnects int

	// Logger receives connect, disconnect, reconnect, close, lame-duck and
	// asynchronous error events as structured lines (fields "event", "url",
	// "server_id", "error"), credentials redacted. A lost connection is a warning with
	// its error and the server's url; the disconnect a deliberate Close causes is a
	// debug line, the close itself an info line. Connect also warns when certificate
	// verification is off (a TLSConfig with InsecureSkipVerify) and when a password or
	// token went to the server without TLS. The zero value logs nothing.
	Logger zerolog.Logger

	// Options are extra nats.go options, applied after everything above, so they can
	// set anything ConnectConfig does not (or override what it does). Event handlers
	// they set (connect, disconnect, reconnect, closed, lame duck, async error) run
	// after Connect's logging ones instead of replacing them. A nats.SetCustomDialer
	// here replaces the dialer with which Connect honours ctx.
	Options []nats.Option
}

// WithDefaults returns a copy of c with every zero field set to its documented
// default. It does not validate; Connect does.
func (c ConnectConfig) WithDefaults() ConnectConfig {
	if len(c.URLs) == 0 {
		c.URLs = []string{defaultURL}
	}
	if c.Name == "" {
		c.Name = defaultClientName
	}
	if c.MinTLSVersion == 0 {
		c.MinTLSVersion = defaultMinTLSVersion
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = nats.DefaultTimeout
	}
	if c.MaxReconnects == 0 {
		c.MaxReconnects = defaultMaxReconnects
	}
	return c
}

// Validate fills defaults and checks c as Connect would, reading the CA, certificate,
// key and seed files, without dialling. The error wraps ErrInvalidConfig.
func (c ConnectConfig) Validate() error {
	_, err := c.WithDefaults().options(newConnEvents(newRedactor(c)))
	return err
}

// Connect validates cfg and opens a NATS connection, trying each server once within
// ctx; the *nats.Conn is the caller's to Close. Errors wrap ErrInvalidConfig or
// ErrConnect (nats.go's and crypto/tls's errors stay in the chain) and name the servers
// with credentials redacted.
func Connect(ctx context.Context, cfg ConnectConfig) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	red := newRedactor(cfg)
	events := newConnEvents(red)
	opts, err := cfg.options(events)
	if err != nil {
		return nil, err
	}
	dialer := newContextDialer(ctx, cfg.ConnectTimeout)
	opts = append(opts, nats.SetCustomDialer(dialer))
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	canceled := dialer.release()
	servers := red.urls(cfg.URLs)
	if err == nil && canceled {
		nc.Close()
		return nil, fmt.Errorf("%w to %s: %w", ErrConnect, servers, context.Cause(ctx))
	}
	if err != nil {
		cause := &redactedError{msg: red.redact(err.Error()) + connectHint(err), err: err}
		if ctxErr := contextEnded(ctx); ctxErr != nil {
			return nil, fmt.Errorf("%w to %s: %w (%w)", ErrConnect, servers, ctxErr, cause)
		}
		return nil, fmt.Errorf("%w to %s: %w", ErrConnect, servers, cause)
	}
	// Remember the server now: nats.go runs the connect handler later, on its callback
	// goroutine, and by then a lost connection reports no URL.
	events.remember(nc)
	_, tlsErr := nc.TLSConnectionState()
	onTLS := tlsErr == nil
	cfg.Logger.Info().
		Str("event", "connect").
		Str("url", red.redact(nc.ConnectedUrl())).
		Str("server_id", nc.ConnectedServerId()).
		Bool("tls", onTLS).
		Msg("nats connected")
	if cfg.TLSConfig != nil && cfg.TLSConfig.InsecureSkipVerify {
		cfg.Logger.Warn().Str("event", "insecure_tls").Str("url", red.redact(nc.ConnectedUrl())).
			Msg("nats TLS certificate verification is disabled (TLSConfig.InsecureSkipVerify): the server is not authenticated")
	}
	if !onTLS && cfg.sendsSecret() {
		cfg.Logger.Warn().Str("event", "plaintext_credentials").Str("url", red.redact(nc.ConnectedUrl())).
			Msg("nats password or token sent without TLS: anyone on the path can read it; use tls:// or RequireTLS")
	}
	return nc, nil
}

// sendsSecret reports whether the connection sends a reusable secret (a password or a
// token, in the options or in a URL); NKey and credentials files only sign a nonce.
func (c ConnectConfig) sendsSecret() bool {
	if c.Password != "" || c.Token != "" {
		return true
	}
	for _, raw := range c.URLs {
		if u, err := parseServerURL(raw); err == nil && u.User != nil {
			return true
		}
	}
	return false
}

// contextEnded returns ctx's error, or context.DeadlineExceeded when ctx's deadline has
// passed but its timer has not fired yet (a handshake deadline clamped to ctx's deadline
// can expire a moment before ctx reports it).
func contextEnded(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// tlsWanted reports whether any option asks for TLS.
func (c ConnectConfig) tlsWanted() bool {
	if c.RequireTLS || c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.TLSConfig != nil || c.ServerName != "" {
		return true
	}
	for _, u := range c.URLs {
		if strings.HasPrefix(strings.ToLower(u), "tls://") {
			return true
		}
	}
	return false
}

// options validates c (defaults already filled) and turns it into nats.go options.
func (c ConnectConfig) options(events *connEvents) ([]nats.Option, error) {
	red := events.red
	// invalid returns a *ConfigError for field with every secret of c masked in its
	// value and reason.
	invalid := func(field string, value any, reason string) error {
		ce := configError(field, value, red.redact(reason))
		ce.Value = red.redact(ce.Value)
		return ce
	}
	urlCreds := false
	for _, raw := range c.URLs {
		u, err := parseServerURL(raw)
		if err != nil {
			reason := errorReason(err)
			if strings.Contains(raw, "@") {
				// The parser's reason may quote a piece of the user information.
				reason = "cannot parse it (details withheld: it holds credentials; percent-encode reserved characters in them)"
			}
			return nil, invalid("ConnectConfig.URLs", redact.URL(raw), reason)
		}
		if u.User != nil {
			urlCreds = true
		}
	}
	switch {
	case c.Name == "":
		return nil, invalid("ConnectConfig.Name", c.Name, "must not be empty")
	case c.ConnectTimeout < 0:
		return nil, invalid("ConnectConfig.ConnectTimeout", c.ConnectTimeout, "must not be negative")
	case c.MinTLSVersion < tls.VersionTLS12:
		return nil, invalid("ConnectConfig.MinTLSVersion", fmt.Sprintf("%#x", c.MinTLSVersion), "below TLS 1.2")
	case c.Password != "" && c.User == "":
		return nil, configerr.Secret[invalidConfig]("ConnectConfig.Password", "set without User")
	case c.User != "" && c.Password == "":
		return nil, invalid("ConnectConfig.User", c.User, "set without Password")
	case (c.CertFile == "") != (c.KeyFile == ""):
		return nil, invalid("ConnectConfig.CertFile", c.CertFile, "CertFile and KeyFile must be set together")
	}
	methods := 0
	for _, set := range []bool{c.User != "", c.Token != "", c.NKeySeedFile != "", c.CredsFile != "", urlCreds} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		return nil, invalid("ConnectConfig", configerr.NoValue{}, "more than one credential (User/Password, Token, NKeySeedFile, CredsFile, credentials in a URL): the server accepts one")
	}

	opts := []nats.Option{
		nats.Name(c.Name),
		nats.Timeout(c.ConnectTimeout),
		nats.MaxReconnects(c.MaxReconnects),
	}

	if c.TLSConfig != nil && c.TLSConfig.InsecureSkipVerify && (c.CAFile != "" || c.ServerName != "") {
		// Verification is off: the CA and the server name would be silently ignored.
		return nil, invalid("ConnectConfig.TLSConfig", configerr.NoValue{}, "InsecureSkipVerify with CAFile or ServerName: they would not be checked; drop InsecureSkipVerify")
	}
	tlsCfg, err := c.buildTLS()
	if err != nil {
		return nil, invalid("ConnectConfig (TLS)", configerr.NoValue{}, errorReason(err))
	}
	// A TLS configuration is handed to nats.go only when TLS is wanted: from v1.56.0 on,
	// nats.go reads any TLSConfig as a demand for TLS. Without one, a server that
	// requires TLS still gets TLS, verified against the system roots with the URL's host
	// as server name (nats.go's default, Go's minimum of TLS 1.2).
	if c.tlsWanted() {
		opts = append(opts, nats.Secure(tlsCfg))
	}

	switch {
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.NKeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, invalid("ConnectConfig.NKeySeedFile", c.NKeySeedFile, errorReason(err))
		}
		opts = append(opts, opt)
	case c.CredsFile != "":
		f, err := os.Open(c.CredsFile)
		if err != nil {
			return nil, invalid("ConnectConfig.CredsFile", c.CredsFile, errorReason(err))
		}
		_ = f.Close()
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	opts = append(opts, c.eventHandlers(events)...)
	if len(c.Options) == 0 {
		return opts, nil
	}
	for i, o := range c.Options {
		if o == nil {
			return nil, invalid("ConnectConfig.Options", configerr.NoValue{}, "element "+strconv.Itoa(i)+" is nil")
		}
	}
	// The caller's options come last. Their event handlers are found by applying them
	// to an empty nats.Options, then composed after Connect's own.
	var theirs nats.Options
	for _, o := range c.Options {
		if err := o(&theirs); err != nil {
			return nil, invalid("ConnectConfig.Options", configerr.NoValue{}, errorReason(err))
		}
	}
	var ours nats.Options
	for _, o := range opts {
		_ = o(&ours) // Connect's options set fields only
	}
	opts = append(opts, c.Options...)
	return append(opts, composeHandlers(ours, theirs)), nil
}

// buildTLS returns the client TLS configuration: a clone of TLSConfig (or a new one)
// with the CA pool, client certificate, server name and minimum version applied.
func (c ConnectConfig) buildTLS() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: c.MinTLSVersion}
	if c.TLSConfig != nil {
		cfg = c.TLSConfig.Clone()
		if cfg.MinVersion < c.MinTLSVersion {
			cfg.MinVersion = c.MinTLSVersion
		}
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CAFile %q holds no PEM certificate", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("CertFile/KeyFile: %w", err)
		}
		cfg.Certificates = append(cfg.Certificates, cert)
	}
	if c.ServerName != "" {
		cfg.ServerName = c.ServerName
	}
	return cfg, nil
}
