package faultproxy_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/gamepersist/gamepersist/internal/testkit/faultproxy"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, faultproxy.KnownLeaks()...)
}

// proxied returns a test database URL routed through a new proxy.
func proxied(t *testing.T) (*faultproxy.Proxy, string) {
	t.Helper()
	return proxiedURL(t, testdb.URL(t))
}

// proxiedURL returns cs routed through a new proxy to cs's host.
func proxiedURL(t *testing.T, cs string) (*faultproxy.Proxy, string) {
	t.Helper()
	u, err := url.Parse(cs)
	if err != nil {
		t.Fatal(err)
	}
	p := faultproxy.Start(t, u.Host)
	return p, faultproxy.RewriteURL(cs, p.Addr())
}

// wantPromptFailure fails t unless err is an error seen before the deadline: not nil and
// not context.DeadlineExceeded. what names the call in the failure.
func wantPromptFailure(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded", what)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%s waited for the deadline instead of failing promptly: %v", what, err)
	}
}

// connectAndPing opens a new connection through cs and pings it, failing t if either
// fails; when names the moment in the failure.
func connectAndPing(ctx context.Context, t *testing.T, cs, when string) {
	t.Helper()
	conn, err := connect(ctx, t, cs)
	if err != nil {
		t.Fatalf("connect %s: %v", when, err)
	}
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("ping %s: %v", when, err)
	}
}

func connect(ctx context.Context, t *testing.T, cs string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, cs)
	if err == nil {
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
	}
	return conn, err
}

func TestDisableRefusesAndEnableRestores(t *testing.T) {
	t.Parallel()
	p, cs := proxied(t)
	ctx := context.Background()

	conn, err := connect(ctx, t, cs)
	if err != nil {
		t.Fatalf("connect through proxy: %v", err)
	}
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}

	p.Disable()
	// The open connection was cut.
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = conn.Ping(pctx)
	cancel()
	wantPromptFailure(t, err, "ping on a connection cut by Disable")
	// New connections are refused, quickly (not by the deadline).
	if _, err := connect(ctx, t, cs); err == nil {
		t.Fatal("connect through a disabled proxy succeeded")
	} else if !strings.Contains(err.Error(), "refused") {
		t.Fatalf("connect error = %v, want connection refused", err)
	}

	if err := p.Enable(); err != nil {
		t.Fatalf("Enable: %v", err)
	}
	conn2, err := connect(ctx, t, cs)
	if err != nil {
		t.Fatalf("connect after Enable: %v", err)
	}
	var one int
	if err := conn2.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 after Enable = %d, %v", one, err)
	}
	if err := p.Enable(); err != nil {
		t.Fatalf("second Enable: %v", err)
	}
}

func TestDropRepliesLosesTheReplyOfACommittedStatement(t *testing.T) {
	t.Parallel()
	direct, _ := testdb.NewSchema(t)
	p, cs := proxiedURL(t, direct)
	ctx := context.Background()

	if err := testdb.Exec(ctx, direct, "CREATE TABLE marks (id int primary key)"); err != nil {
		t.Fatal(err)
	}
	conn, err := connect(ctx, t, cs)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.DropReplies(); err != nil {
		t.Fatalf("DropReplies: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "INSERT INTO marks VALUES (1)")
		done <- err
	}()
	// Wait until the server committed the insert, seen on a direct connection.
	dconn, err := connect(ctx, t, direct)
	if err != nil {
		t.Fatal(err)
	}
	committed := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var n int
		if err := dconn.QueryRow(ctx, "SELECT count(*) FROM marks").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			committed = true
			break
		}
	}
	if !committed {
		t.Fatal("the insert never reached the server")
	}
	select {
	case err := <-done:
		t.Fatalf("the client got a reply (%v) although replies are dropped", err)
	default:
	}
	if err := p.CloseConnections(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("insert whose reply was lost returned nil")
	}
	p.RemoveToxics()
	connectAndPing(ctx, t, cs, "after RemoveToxics")
}

func TestResetPeerFailsTheNextStatement(t *testing.T) {
	t.Parallel()
	p, cs := proxied(t)
	ctx := context.Background()
	conn, err := connect(ctx, t, cs)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ResetPeer(0); err != nil {
		t.Fatalf("ResetPeer: %v", err)
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var one int
	err = conn.QueryRow(qctx, "SELECT 1").Scan(&one)
	wantPromptFailure(t, err, "statement on a reset connection")
	if _, err := connect(ctx, t, cs); err == nil {
		t.Fatal("new connection succeeded while ResetPeer is active")
	}
	p.RemoveToxics()
	connectAndPing(ctx, t, cs, "after RemoveToxics")
}

func TestLatencyDelaysRoundTrips(t *testing.T) {
	t.Parallel()
	p, cs := proxied(t)
	ctx := context.Background()
	conn, err := connect(ctx, t, cs)
	if err != nil {
		t.Fatal(err)
	}
	const d = 50 * time.Millisecond
	if err := p.Latency(d); err != nil {
		t.Fatal(err)
	}
	if err := p.Latency(d); err != nil { // replacing is allowed
		t.Fatal(err)
	}
	start := time.Now()
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// A lower bound, not a timing benchmark: the reply cannot come back sooner than the
	// two injected delays.
	if took := time.Since(start); took < 2*d {
		t.Fatalf("round trip took %v with %v latency each way", took, d)
	}
	p.RemoveToxics()
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestStopIsIdempotentAndRefuses(t *testing.T) {
	t.Parallel()
	p, cs := proxied(t)
	ctx := context.Background()
	if _, err := connect(ctx, t, cs); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	p.Stop()
	if _, err := connect(ctx, t, cs); err == nil {
		t.Fatal("connect after Stop succeeded")
	}
}

func TestRewriteURL(t *testing.T) {
	t.Parallel()
	got := faultproxy.RewriteURL("postgres://u:secret@db.example:5432/game?sslmode=disable&search_path=s", "127.0.0.1:6000")
	want := "postgres://u:secret@127.0.0.1:6000/game?sslmode=disable&search_path=s"
	if got != want {
		t.Fatalf("RewriteURL = %q, want %q", got, want)
	}
	kv := faultproxy.RewriteURL("host=db port=5432 user=u", "127.0.0.1:6000")
	if kv != "host=db port=5432 user=u host=127.0.0.1 port=6000" {
		t.Fatalf("RewriteURL keyword/value = %q", kv)
	}
	cfg, err := pgx.ParseConfig(kv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "127.0.0.1" || cfg.Port != 6000 {
		t.Fatalf("parsed rewritten DSN points at %s:%d", cfg.Host, cfg.Port)
	}
}
