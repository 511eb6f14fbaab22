package roomstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/internal/testkit/faultproxy"
	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

const secretPassword = "s3cr3t-Pa55word"

// withPassword returns cs with secretPassword (the test server trusts local users and
// never asks for it), pointed at addr.
func withPassword(t *testing.T, cs, addr string) string {
	t.Helper()
	u, err := url.Parse(faultproxy.RewriteURL(cs, addr))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), secretPassword)
	return u.String()
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// proxiedSchema returns a fresh schema's connection string routed through a new fault
// proxy, and the proxy.
func proxiedSchema(t *testing.T) (string, *faultproxy.Proxy) {
	t.Helper()
	cs, _ := testdb.NewSchema(t)
	p := faultproxy.Start(t, mustHost(t, cs))
	return faultproxy.RewriteURL(cs, p.Addr()), p
}

// proxiedStore returns a migrated store opened (OpenPostgres, closed at the end of t) on a
// fresh schema through a new fault proxy, and the proxy.
func proxiedStore(t *testing.T) (*roomstore.Postgres, *faultproxy.Proxy) {
	t.Helper()
	cs, proxy := proxiedSchema(t)
	ctx := testCtx(t)
	s, err := roomstore.OpenPostgres(ctx, cs, roomstore.PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s, proxy
}

func TestOpenPostgresUnreachable(t *testing.T) {
	t.Parallel()
	base := testdb.URL(t)
	down := faultproxy.Start(t, mustHost(t, base))
	down.Disable()
	blackhole := faultproxy.Start(t, mustHost(t, base))
	if err := blackhole.DropReplies(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		addr         string
		wantDeadline bool
	}{
		"closed port":        {addr: closedPort(t)},
		"disabled proxy":     {addr: down.Addr()},
		"server never talks": {addr: blackhole.Addr(), wantDeadline: true},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			const deadline = 2 * time.Second
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			s, err := roomstore.OpenPostgres(ctx, withPassword(t, base, c.addr), roomstore.PostgresConfig{})
			took := time.Since(start)
			if err == nil {
				_ = s.Close()
				t.Fatal("OpenPostgres succeeded")
			}
			// A bound, not a measurement: the call must not outlive the caller's deadline
			// (with slack for a loaded machine).
			if took > deadline+time.Second {
				t.Fatalf("OpenPostgres returned after %v, deadline %v", took, deadline)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.addr) {
				t.Fatalf("error does not name %s: %v", c.addr, msg)
			}
			for _, shown := range []string{msg, fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
				if strings.Contains(shown, secretPassword) {
					t.Fatalf("error shows the password (in its text or a field): %s", shown)
				}
			}
			if c.wantDeadline && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("error = %v, want errors.Is DeadlineExceeded", err)
			}
		})
	}
}

// TestNewPostgresUnreachableAtFirstUse: a caller's pool on a database that is down makes
// the first call fail within its deadline, naming host and port and not the password.
func TestNewPostgresUnreachableAtFirstUse(t *testing.T) {
	t.Parallel()
	base := testdb.URL(t)
	down := faultproxy.Start(t, mustHost(t, base))
	down.Disable()
	pool, err := pgxpool.New(context.Background(), withPassword(t, base, down.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// A table that exists nowhere: this pool uses the default search_path.
	s, err := roomstore.NewPostgres(pool, roomstore.PostgresConfig{Table: uniqueName("absent_")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = s.GetRooms(ctx, []string{"a"})
	if err == nil {
		t.Fatal("GetRooms on a database that is down succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, down.Addr()) || strings.Contains(msg, secretPassword) {
		t.Fatalf("error = %q: want host:port %s and no password", msg, down.Addr())
	}
	if err := down.Enable(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRooms(ctx, []string{"a"}); err == nil || !strings.Contains(err.Error(), "42P01") {
		// No table was migrated: reaching the server shows as "relation does not exist".
		t.Fatalf("GetRooms once the database is up = %v, want the server's 42P01", err)
	}
}

func mustHost(t *testing.T, cs string) string {
	t.Helper()
	u, err := url.Parse(cs)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestPostgresDatabaseStoppedMidRun(t *testing.T) {
	t.Parallel()
	s, proxy := proxiedStore(t)
	ctx := testCtx(t)
	if err := s.PutRoom(ctx, roomstoretest.SampleRoom("kept")); err != nil {
		t.Fatal(err)
	}

	proxy.Disable()
	for _, call := range []struct {
		name string
		do   func(context.Context) error
	}{
		{"GetRoom", func(ctx context.Context) error { _, err := s.GetRoom(ctx, "kept"); return err }},
		{"GetRooms", func(ctx context.Context) error { _, err := s.GetRooms(ctx, []string{"kept"}); return err }},
		{"PutRoom", func(ctx context.Context) error { return s.PutRoom(ctx, roomstoretest.SampleRoom("new")) }},
		{"DeleteRoom", func(ctx context.Context) error { return s.DeleteRoom(ctx, "kept") }},
	} {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := call.do(cctx)
		cancel()
		if err == nil {
			t.Fatalf("%s with the database down succeeded", call.name)
		}
		if errors.Is(err, roomstore.ErrNotFound) || errors.Is(err, roomstore.ErrClosed) {
			t.Fatalf("%s with the database down = %v, want a connection error", call.name, err)
		}
		if !strings.HasPrefix(err.Error(), "roomstore: ") {
			t.Fatalf("%s error is not wrapped with context: %v", call.name, err)
		}
	}

	if err := proxy.Enable(); err != nil {
		t.Fatal(err)
	}
	// The same store recovers: its pool replaces the connections the outage broke.
	r, err := s.GetRoom(ctx, "kept")
	if err != nil {
		t.Fatalf("GetRoom after the database came back: %v", err)
	}
	if r.Version != 1 {
		t.Fatalf("room after recovery = %+v", r)
	}
	if v, err := s.PutRoomVersion(ctx, roomstoretest.SampleRoom("kept")); err != nil || v != 2 {
		t.Fatalf("PutRoomVersion after recovery = %d, %v", v, err)
	}
}

func TestPostgresStatementResetMidFlight(t *testing.T) {
	t.Parallel()
	s, proxy := proxiedStore(t)
	ctx := testCtx(t)
	if err := proxy.ResetPeer(0); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := s.GetRooms(cctx, []string{"a", "b"})
	cancel()
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetRooms on a reset connection = %v, want a prompt connection error", err)
	}
	proxy.RemoveToxics()
	if _, err := s.GetRooms(ctx, []string{"a", "b"}); err != nil {
		t.Fatalf("GetRooms after the reset: %v", err)
	}
}

func TestPostgresCanceledMidStatement(t *testing.T) {
	t.Parallel()
	s, proxy := proxiedStore(t)
	ctx := testCtx(t)
	if err := proxy.DropReplies(); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := s.GetRoom(cctx, "a")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetRoom whose reply never comes = %v, want DeadlineExceeded", err)
	}
	if err := proxy.CloseConnections(); err != nil {
		t.Fatal(err)
	}
	proxy.RemoveToxics()
	if _, err := s.GetRoom(ctx, "a"); !errors.Is(err, roomstore.ErrNotFound) {
		t.Fatalf("GetRoom after replies came back = %v, want ErrNotFound", err)
	}
}

// TestOpenPostgresCyclesLeaveNothing opens, uses and closes a store 100 times: no server
// connection with its application name is left (and goleak in TestMain finds no
// goroutine).
func TestOpenPostgresCyclesLeaveNothing(t *testing.T) {
	t.Parallel()
	cs, _ := testdb.NewSchema(t)
	ctx := testCtx(t)
	app := uniqueName("gp-cycle-")
	cfg := roomstore.PostgresConfig{ApplicationName: app}
	for i := range 100 {
		s, err := roomstore.OpenPostgres(ctx, cs, cfg)
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if i == 0 {
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutRoom(ctx, roomstoretest.SampleRoom("cycled")); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if _, err := s.GetRooms(ctx, []string{"cycled", "other"}); err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("cycle %d: Close: %v", i, err)
		}
	}
	conn, err := pgx.Connect(ctx, testdb.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Backends exit right after the client's Terminate; give the server a moment to
	// remove them from pg_stat_activity.
	var left int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 || time.Now().After(deadline) {
			break
		}
	}
	if left != 0 {
		t.Fatalf("%d server connections of %s left after 100 cycles", left, app)
	}
	// The check is meaningful: an open store does show up.
	s, err := roomstore.OpenPostgres(ctx, cs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var open int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&open); err != nil || open < 1 {
		t.Fatalf("an open store's connections are not visible by application_name: %d, %v", open, err)
	}
}
