package natsbridge_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/gamepersist/gamepersist/internal/testkit/testlog"
	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
	"github.com/gamepersist/gamepersist/natsbridge"
)

func connect(t *testing.T, cfg natsbridge.ConnectConfig) *nats.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	nc, err := natsbridge.Connect(ctx, cfg)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func connectErr(t *testing.T, cfg natsbridge.ConnectConfig) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	nc, err := natsbridge.Connect(ctx, cfg)
	if err == nil {
		nc.Close()
		t.Fatal("Connect succeeded, want an error")
	}
	t.Logf("Connect error: %v", err)
	return err
}

// roundTrip proves nc works: a message published on it comes back to a subscription.
func roundTrip(t *testing.T, nc *nats.Conn) {
	t.Helper()
	sub, err := nc.SubscribeSync("probe.roundtrip")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Publish("probe.roundtrip", []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "ping" {
		t.Fatalf("round trip: %v, %v", m, err)
	}
}

func TestConnectConfigValidation(t *testing.T) {
	t.Parallel()
	pki := testnats.NewPKI(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "s3cr3t-pw"
	cases := map[string]natsbridge.ConnectConfig{
		"token and user":        {Token: "tok", User: "u", Password: secret},
		"password without user": {Password: secret},
		"user without password": {User: "u"},
		"nkey and creds":        {NKeySeedFile: garbage, CredsFile: garbage},
		"url creds and token":   {URLs: []string{"nats://u:" + secret + "@127.0.0.1:4222"}, Token: "tok"},
		"cert without key":      {CertFile: pki.ClientCertFile},
		"key without cert":      {KeyFile: pki.ClientKeyFile},
		"unreadable CA":         {CAFile: filepath.Join(t.TempDir(), "missing.pem")},
		"CA without PEM":        {CAFile: garbage},
		"mismatched key":        {CertFile: pki.ClientCertFile, KeyFile: pki.ServerKeyFile},
		"TLS 1.1":               {MinTLSVersion: tls.VersionTLS11},
		"negative timeout":      {ConnectTimeout: -time.Second},
		"bad scheme":            {URLs: []string{"http://u:" + secret + "@127.0.0.1:4222"}},
		"bad port":              {URLs: []string{"nats://u:" + secret + "@127.0.0.1:port"}},
		"no host":               {URLs: []string{"nats://"}},
		"missing seed file":     {NKeySeedFile: filepath.Join(t.TempDir(), "missing.nk")},
		"missing creds file":    {CredsFile: filepath.Join(t.TempDir(), "missing.creds")},
	}
	for name, cfg := range cases {
		err := cfg.Validate()
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, natsbridge.ErrInvalidConfig) {
			t.Errorf("%s: Validate() = %v, want ErrInvalidConfig", name, err)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error shows the password: %v", name, err)
		}
		// Connect rejects it the same way, before dialling anything.
		if _, cerr := natsbridge.Connect(t.Context(), cfg); !errors.Is(cerr, natsbridge.ErrInvalidConfig) {
			t.Errorf("%s: Connect = %v, want ErrInvalidConfig", name, cerr)
		}
	}
	if err := (natsbridge.ConnectConfig{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}).Validate(); err != nil {
		t.Errorf("valid TLS config rejected: %v", err)
	}
	d := natsbridge.ConnectConfig{}.WithDefaults()
	if d.URLs[0] != nats.DefaultURL || d.MinTLSVersion != tls.VersionTLS12 || d.MaxReconnects != -1 ||
		d.ConnectTimeout != nats.DefaultTimeout {
		t.Errorf("defaults: %+v", d)
	}
}

func TestConnectTLS(t *testing.T) {
	t.Parallel()
	pki := testnats.NewPKI(t)
	srv := testnats.Start(t, testnats.WithTLS(t, pki, false))
	url := srv.ClientURL()
	addr := url[strings.Index(url, "://")+3:]

	t.Run("verified", func(t *testing.T) {
		t.Parallel()
		nc := connect(t, natsbridge.ConnectConfig{URLs: []string{url}, CAFile: pki.CAFile})
		state, err := nc.TLSConnectionState()
		if err != nil || !state.HandshakeComplete || state.Version < tls.VersionTLS12 {
			t.Fatalf("TLS state %+v, %v", state, err)
		}
		if len(state.VerifiedChains) == 0 {
			t.Fatal("server certificate was not verified")
		}
		roundTrip(t, nc)
	})
	t.Run("localhost name", func(t *testing.T) {
		t.Parallel()
		_, port, _ := net.SplitHostPort(addr)
		nc := connect(t, natsbridge.ConnectConfig{URLs: []string{"tls://localhost:" + port}, CAFile: pki.CAFile})
		roundTrip(t, nc)
	})
	t.Run("wrong CA", func(t *testing.T) {
		t.Parallel()
		other := testnats.NewPKI(t)
		err := connectErr(t, natsbridge.ConnectConfig{URLs: []string{url}, CAFile: other.CAFile})
		var unknown x509.UnknownAuthorityError
		if !errors.Is(err, natsbridge.ErrConnect) || !errors.As(err, &unknown) {
			t.Fatalf("got %v, want ErrConnect with x509.UnknownAuthorityError", err)
		}
		if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "CAFile") {
			t.Errorf("error %q should name %s and hint at CAFile", err, addr)
		}
	})
	t.Run("wrong server name", func(t *testing.T) {
		t.Parallel()
		err := connectErr(t, natsbridge.ConnectConfig{URLs: []string{url}, CAFile: pki.CAFile, ServerName: "wrong.example"})
		var hostname x509.HostnameError
		if !errors.As(err, &hostname) || !strings.Contains(err.Error(), "wrong.example") {
			t.Fatalf("got %v, want x509.HostnameError naming wrong.example", err)
		}
	})
	t.Run("plaintext client", func(t *testing.T) {
		t.Parallel()
		// No TLS options: the client is upgraded to TLS by the server's demand and still
		// verifies the certificate, which the system roots do not trust.
		err := connectErr(t, natsbridge.ConnectConfig{URLs: []string{url}})
		if !errors.Is(err, natsbridge.ErrConnect) || !errors.Is(err, nats.ErrTLS) || !strings.Contains(err.Error(), addr) {
			t.Fatalf("got %v, want ErrConnect wrapping nats.ErrTLS and naming %s", err, addr)
		}
	})
	t.Run("TLS required but server plaintext", func(t *testing.T) {
		t.Parallel()
		plain := testnats.Start(t)
		err := connectErr(t, natsbridge.ConnectConfig{URLs: []string{plain.ClientURL()}, CAFile: pki.CAFile})
		if !errors.Is(err, nats.ErrSecureConnWanted) {
			t.Fatalf("got %v, want nats.ErrSecureConnWanted", err)
		}
	})
}

func TestConnectMutualTLS(t *testing.T) {
	t.Parallel()
	pki := testnats.NewPKI(t)
	url := testnats.Start(t, testnats.WithTLS(t, pki, true)).ClientURL()
	nc := connect(t, natsbridge.ConnectConfig{URLs: []string{url}, CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile})
	roundTrip(t, nc)

	err := connectErr(t, natsbridge.ConnectConfig{URLs: []string{url}, CAFile: pki.CAFile})
	if !errors.Is(err, natsbridge.ErrConnect) {
		t.Fatalf("without a client certificate: %v", err)
	}
	// The same through a caller-supplied *tls.Config.
	cert, err := tls.LoadX509KeyPair(pki.ClientCertFile, pki.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	nc2 := connect(t, natsbridge.ConnectConfig{URLs: []string{url}, TLSConfig: &tls.Config{
		RootCAs: pki.CAPool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
	}})
	roundTrip(t, nc2)
}

func TestConnectAuth(t *testing.T) {
	t.Parallel()
	const user, password, token = "game", "pw-Secret-123", "tok-Secret-456"
	upURL := testnats.Start(t, testnats.WithUserPassword(user, password)).ClientURL()
	tokURL := testnats.Start(t, testnats.WithToken(token)).ClientURL()
	hostPort := strings.TrimPrefix(upURL, "nats://")

	logs := &testlog.Buffer{}
	logger := logs.Logger()
	roundTrip(t, connect(t, natsbridge.ConnectConfig{URLs: []string{upURL}, User: user, Password: password, Logger: logger}))
	roundTrip(t, connect(t, natsbridge.ConnectConfig{URLs: []string{"nats://" + user + ":" + password + "@" + hostPort}, Logger: logger}))
	roundTrip(t, connect(t, natsbridge.ConnectConfig{URLs: []string{tokURL}, Token: token, Logger: logger}))
	roundTrip(t, connect(t, natsbridge.ConnectConfig{URLs: []string{strings.Replace(tokURL, "nats://", "nats://"+token+"@", 1)}, Logger: logger}))

	secrets := []string{password, token, "wrong-pw-789", "wrong-tok-000"}
	failures := map[string]natsbridge.ConnectConfig{
		"wrong password":     {URLs: []string{upURL}, User: user, Password: "wrong-pw-789", Logger: logger},
		"wrong password url": {URLs: []string{"nats://" + user + ":wrong-pw-789@" + hostPort}, Logger: logger},
		"no credentials":     {URLs: []string{upURL}, Logger: logger},
		"wrong token":        {URLs: []string{tokURL}, Token: "wrong-tok-000", Logger: logger},
		"wrong token url":    {URLs: []string{strings.Replace(tokURL, "nats://", "nats://wrong-tok-000@", 1)}, Logger: logger},
	}
	for name, cfg := range failures {
		err := connectErr(t, cfg)
		if !errors.Is(err, nats.ErrAuthorization) || !errors.Is(err, natsbridge.ErrConnect) {
			t.Errorf("%s: got %v, want ErrConnect wrapping nats.ErrAuthorization", name, err)
		}
		if !strings.Contains(err.Error(), "127.0.0.1:") {
			t.Errorf("%s: error %q does not name the server", name, err)
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: error shows a secret: %v", name, err)
			}
		}
	}
	out := logs.String()
	if strings.Count(out, `"event":"connect"`) != 4 {
		t.Errorf("want 4 connect log lines, got:\n%s", out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("log shows a secret %q:\n%s", s, out)
		}
	}
}

// TestConnectRespectsContext dials a listener that accepts but never speaks NATS:
// Connect must give up at ctx's deadline, not after ConnectTimeout.
func TestConnectRespectsContext(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	})
	defer wg.Wait()
	defer func() { _ = ln.Close() }()

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	nc, err := natsbridge.Connect(ctx, natsbridge.ConnectConfig{
		URLs: []string{"nats://" + ln.Addr().String()}, ConnectTimeout: 30 * time.Second,
	})
	if err == nil {
		nc.Close()
		t.Fatal("connected to a silent listener")
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, natsbridge.ErrConnect) {
		t.Fatalf("got %v, want ErrConnect wrapping context.DeadlineExceeded", err)
	}
	if waited := time.Since(start); waited > 15*time.Second {
		t.Fatalf("Connect waited %v, past ctx's deadline toward ConnectTimeout", waited)
	}

	done, cancelNow := context.WithCancel(t.Context())
	cancelNow()
	if _, err := natsbridge.Connect(done, natsbridge.ConnectConfig{URLs: []string{"nats://" + ln.Addr().String()}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: %v", err)
	}
}

func TestConnectReconnectsAfterServerRestart(t *testing.T) {
	t.Parallel()
	srv := testnats.StartRestartable(t)
	logs := &testlog.Buffer{}
	nc := connect(t, natsbridge.ConnectConfig{
		URLs:    []string{srv.URL()},
		Options: []nats.Option{nats.ReconnectWait(20 * time.Millisecond), nats.ReconnectJitter(time.Millisecond, time.Millisecond)},
		Logger:  logs.Logger(),
	})
	subject, err := natsbridge.Subject("events", "player_entered", "r1")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	publishAndExpect := func(text string) {
		t.Helper()
		env := natsbridge.NewEnvelope("player_entered", sayPayload{Text: text})
		if err := natsbridge.Publish(t.Context(), nc, subject, env); err != nil {
			t.Fatal(err)
		}
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		got, err := natsbridge.Decode[sayPayload](msg.Data, natsbridge.DecodeOptions{})
		if err != nil || got.ID != env.ID {
			t.Fatalf("%s: got %+v, %v", text, got, err)
		}
	}
	publishAndExpect("before")

	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for nc.Stats().Reconnects == 0 || !nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect after restart: status %v", nc.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	publishAndExpect("after") // the old subscription was re-established

	// nats.go runs the reconnect handler on its callback goroutine: the line may come
	// a moment after Stats counts the reconnect.
	for _, ev := range []string{`"event":"connect"`, `"event":"disconnect"`, `"event":"reconnect"`} {
		for !strings.Contains(logs.String(), ev) {
			if time.Now().After(deadline) {
				t.Fatalf("log lacks %s:\n%s", ev, logs.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestConnectAcrossCluster(t *testing.T) {
	t.Parallel()
	nodes := testnats.StartCluster(t, 3)
	a := connect(t, natsbridge.ConnectConfig{URLs: []string{nodes[0].ClientURL()}})
	c := connect(t, natsbridge.ConnectConfig{URLs: []string{nodes[2].ClientURL()}})
	subject, err := natsbridge.ChatSay("lobby")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	testnats.WaitForInterest(t, nodes[0], subject)
	env := natsbridge.NewEnvelope("chat.say", sayPayload{Text: "across"})
	if err := natsbridge.Publish(t.Context(), a, subject, env); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got, err := natsbridge.Decode[sayPayload](msg.Data, natsbridge.DecodeOptions{})
	if err != nil || got.ID != env.ID || got.Payload.Text != "across" {
		t.Fatalf("got %+v, %v", got, err)
	}
	if a.ConnectedServerName() == c.ConnectedServerName() {
		t.Fatalf("both clients on %s", a.ConnectedServerName())
	}
}

// ExampleConnect connects with verified TLS and a token; the caller owns and closes the
// connection.
func ExampleConnect() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := natsbridge.Connect(ctx, natsbridge.ConnectConfig{
		URLs:   []string{"tls://nats.example.internal:4222"},
		CAFile: "/etc/game/nats-ca.pem",
		Token:  os.Getenv("GAME_NATS_TOKEN"),
		Logger: zerolog.New(os.Stderr).With().Timestamp().Logger(),
	})
	if err != nil {
		// Redacted, e.g. "natsbridge: cannot connect to tls://nats.example.internal:4222: …".
		return
	}
	defer nc.Close()
}

// TestConnectLogsDisconnectLevels: a lost server is a warning with its error and the
// server's url; the disconnect that a deliberate Close causes is not (a debug line, next
// to the info-level close), so a clean shutdown logs no warning.
func TestConnectLogsDisconnectLevels(t *testing.T) {
	t.Parallel()
	srv := testnats.StartRestartable(t)
	logs := &testlog.Buffer{}
	nc := connect(t, natsbridge.ConnectConfig{
		URLs:    []string{srv.URL()},
		Options: []nats.Option{nats.ReconnectWait(20 * time.Millisecond), nats.ReconnectJitter(time.Millisecond, time.Millisecond)},
		Logger:  logs.Logger().Level(zerolog.DebugLevel),
	})
	waitEvent := func(event string, n int) []map[string]any {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var got []map[string]any
			for _, m := range logs.Lines(t) {
				if m["event"] == event {
					got = append(got, m)
				}
			}
			if len(got) >= n {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %d %q events in the log:\n%s", n, event, logs.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// A real disconnect: the server goes away.
	srv.Stop()
	lost := waitEvent("disconnect", 1)[0]
	if lost["level"] != "warn" || lost["error"] == "" || lost["error"] == nil || lost["url"] != srv.URL() {
		t.Errorf("lost connection logged as %v, want level warn with the error and url %s", lost, srv.URL())
	}
	srv.Restart()
	waitEvent("reconnect", 1)

	// A deliberate close: no warning.
	nc.Close()
	// nats.go reports the disconnect before the close. Closed on request, the
	// connection has no LastError: the close line has no error field (it had "").
	if e, ok := waitEvent("close", 1)[0]["error"]; ok {
		t.Errorf("close by request carries error %q", e)
	}
	closing := waitEvent("disconnect", 2)[1]
	if closing["level"] != "debug" || closing["closed"] != true || closing["url"] != srv.URL() {
		t.Errorf("disconnect by Close logged as %v, want level debug, closed, url %s", closing, srv.URL())
	}
	if e, ok := closing["error"]; ok {
		t.Errorf("disconnect by Close carries error %v", e)
	}
	warnings := 0
	for _, m := range logs.Lines(t) {
		if m["level"] == "warn" || m["level"] == "error" {
			warnings++
		}
	}
	if warnings != 1 {
		t.Errorf("%d warnings or errors logged, want only the lost connection's:\n%s", warnings, logs.String())
	}
}

// TestConnectConfigHidesCredentialsOfMalformedURLs: a password with an unescaped '#',
// '?', '/', space or bad '%' escape makes the URL unparseable; the error must still show
// neither part of the password (the userinfo of a bad URL was printed as is, and the
// parser's reason quoted a piece of it as the "port").
func TestConnectConfigHidesCredentialsOfMalformedURLs(t *testing.T) {
	t.Parallel()
	for _, sep := range []string{"#", "?", "/", " ", "%zz"} {
		for _, raw := range []string{
			"nats://user:Alpha1" + sep + "Secret9@127.0.0.1:4222",
			"user:Alpha1" + sep + "Secret9@127.0.0.1:4222",
			"tls://user:Alpha1" + sep + "Secret9@127.0.0.1:4222",
		} {
			cfg := natsbridge.ConnectConfig{URLs: []string{raw}}
			err := cfg.Validate()
			if !errors.Is(err, natsbridge.ErrInvalidConfig) {
				t.Errorf("%q: Validate() = %v, want ErrInvalidConfig", raw, err)
				continue
			}
			_, cerr := natsbridge.Connect(t.Context(), cfg)
			for _, e := range []error{err, cerr} {
				if msg := e.Error(); strings.Contains(msg, "Alpha1") || strings.Contains(msg, "Secret9") {
					t.Errorf("%q: error shows the password: %s", raw, msg)
				}
				if !strings.Contains(e.Error(), "127.0.0.1:4222") {
					t.Errorf("%q: error %q does not name the server", raw, e)
				}
			}
		}
	}
}

// TestConnectLostRightAwayLogsTheServer: a server lost right after Connect returned is
// named in the disconnect warning. nats.go runs the connect handler on its callback
// goroutine, and ConnectedUrl is empty once the connection is lost, so a handler that
// ran late left the warning without a url (TestConnectLogsDisconnectLevels flaked on it).
func TestConnectLostRightAwayLogsTheServer(t *testing.T) {
	t.Parallel()
	const rounds = 40
	for i := range rounds {
		srv := testnats.Start(t)
		logs := &testlog.Buffer{}
		nc := connect(t, natsbridge.ConnectConfig{URLs: []string{srv.ClientURL()}, Options: []nats.Option{nats.NoReconnect()}, Logger: logs.Logger()})
		srv.Shutdown()
		deadline := time.Now().Add(10 * time.Second)
		var lost map[string]any
		for lost == nil {
			for _, m := range logs.Lines(t) {
				if m["event"] == "disconnect" {
					lost = m
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no disconnect logged:\n%s", i, logs.String())
			}
			time.Sleep(time.Millisecond)
		}
		if lost["url"] != srv.ClientURL() {
			t.Fatalf("round %d: disconnect logged as %v, want url %s", i, lost, srv.ClientURL())
		}
		nc.Close()
	}
}

// TestConnectOptionsComposeWithNATS: Options are applied last (they can set what
// ConnectConfig does not), and the event handlers they set run after Connect's logging
// instead of replacing it.
func TestConnectOptionsComposeWithNATS(t *testing.T) {
	t.Parallel()
	url := testnats.Start(t).ClientURL()
	logs := &testlog.Buffer{}
	var mine atomic.Int32
	closed := make(chan struct{})
	nc := connect(t, natsbridge.ConnectConfig{
		URLs:   []string{url},
		Name:   "from-config",
		Logger: logs.Logger(),
		Options: []nats.Option{
			nats.Name("from-options"),
			nats.ReconnectBufSize(1 << 10),
			nats.ConnectHandler(func(*nats.Conn) { mine.Add(1) }),
			nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
		},
	})
	if nc.Opts.Name != "from-options" || nc.Opts.ReconnectBufSize != 1<<10 {
		t.Fatalf("options not applied last: name %q, reconnect buffer %d", nc.Opts.Name, nc.Opts.ReconnectBufSize)
	}
	deadline := time.Now().Add(5 * time.Second)
	for mine.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the caller's connect handler did not run")
		}
		time.Sleep(5 * time.Millisecond)
	}
	nc.Close()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the caller's closed handler did not run")
	}
	deadline = time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), `"event":"close"`) {
		if time.Now().After(deadline) {
			t.Fatalf("Connect's own closed handler did not log:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := (natsbridge.ConnectConfig{Options: []nats.Option{nil}}).Validate(); !errors.Is(err, natsbridge.ErrInvalidConfig) {
		t.Errorf("nil option: %v", err)
	}
}

// TestConnectWarnsAboutWeakSecurity: turning verification off is refused when a CA or
// server name says what to verify (they would be ignored) and warned about otherwise; a
// password sent without TLS is warned about; RequireTLS still refuses a plaintext server.
func TestConnectWarnsAboutWeakSecurity(t *testing.T) {
	t.Parallel()
	pki := testnats.NewPKI(t)
	insecure := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the insecure setting under test
	for name, cfg := range map[string]natsbridge.ConnectConfig{
		"with CAFile":     {TLSConfig: insecure, CAFile: pki.CAFile},
		"with ServerName": {TLSConfig: insecure, ServerName: "nats.example"},
	} {
		if err := cfg.Validate(); !errors.Is(err, natsbridge.ErrInvalidConfig) || !strings.Contains(err.Error(), "InsecureSkipVerify") {
			t.Errorf("%s: %v, want ErrInvalidConfig naming InsecureSkipVerify", name, err)
		}
	}

	tlsURL := testnats.Start(t, testnats.WithTLS(t, pki, false)).ClientURL()
	logs := &testlog.Buffer{}
	roundTrip(t, connect(t, natsbridge.ConnectConfig{URLs: []string{tlsURL}, TLSConfig: insecure, Logger: logs.Logger()}))
	if !strings.Contains(logs.String(), `"event":"insecure_tls"`) || !strings.Contains(logs.String(), `"level":"warn"`) {
		t.Errorf("no warning for InsecureSkipVerify:\n%s", logs.String())
	}

	const user, password = "game", "pw-Plain-321"
	plainURL := testnats.Start(t, testnats.WithUserPassword(user, password)).ClientURL()
	logs = &testlog.Buffer{}
	roundTrip(t, connect(t, natsbridge.ConnectConfig{URLs: []string{plainURL}, User: user, Password: password, Logger: logs.Logger()}))
	if !strings.Contains(logs.String(), `"event":"plaintext_credentials"`) || strings.Contains(logs.String(), password) {
		t.Errorf("want a plaintext-credentials warning without the password:\n%s", logs.String())
	}
	if err := connectErr(t, natsbridge.ConnectConfig{URLs: []string{plainURL}, User: user, Password: password, RequireTLS: true}); !errors.Is(err, nats.ErrSecureConnWanted) {
		t.Errorf("RequireTLS against a plaintext server: %v", err)
	}
}
