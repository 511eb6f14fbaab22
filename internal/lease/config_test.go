package lease_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/internal/lease"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := lease.Config{}.WithDefaults()
	if c.Shards != lease.DefaultShards || c.TTL != lease.DefaultTTL || c.RenewEvery != lease.DefaultTTL/3 ||
		c.CloseTimeout != lease.DefaultCloseTimeout {
		t.Fatalf("defaults: %+v", c)
	}
	if c := (lease.Config{TTL: 900 * time.Millisecond}).WithDefaults(); c.RenewEvery != 300*time.Millisecond {
		t.Fatalf("RenewEvery default = %s, want TTL/3", c.RenewEvery)
	}
	// New draws a distinct member id per Manager.
	pool := &pgxpool.Pool{} // never used: New does no I/O
	a, err := lease.New(pool, lease.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := lease.New(pool, lease.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if a.MemberID() == "" || a.MemberID() == b.MemberID() {
		t.Fatalf("drawn member ids %q and %q", a.MemberID(), b.MemberID())
	}
	if err := a.Close(); err != nil { // never started: nothing to release
		t.Fatal(err)
	}
}

func TestConfigRejectsInvalidFields(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		field string
		cfg   lease.Config
	}{
		{"Config.MemberID", lease.Config{MemberID: strings.Repeat("m", lease.MaxMemberIDLength+1)}},
		{"Config.MemberID", lease.Config{MemberID: "a\x00b"}},
		{"Config.MemberID", lease.Config{MemberID: "\xff"}},
		{"Config.Schema", lease.Config{Schema: strings.Repeat("s", 64)}},
		{"Config.Schema", lease.Config{Schema: "a\x00b"}},
		{"Config.Shards", lease.Config{Shards: -1}},
		{"Config.Shards", lease.Config{Shards: lease.MaxShards + 1}},
		{"Config.TTL", lease.Config{TTL: time.Millisecond}},
		{"Config.TTL", lease.Config{TTL: 2 * lease.MaxTTL}},
		{"Config.RenewEvery", lease.Config{TTL: time.Second, RenewEvery: 600 * time.Millisecond}},
		{"Config.RenewEvery", lease.Config{RenewEvery: -time.Second}},
		{"Config.CloseTimeout", lease.Config{CloseTimeout: -time.Second}},
	} {
		_, err := lease.New(&pgxpool.Pool{}, tc.cfg)
		var ce *lease.ConfigError
		if !errors.Is(err, lease.ErrInvalidConfig) || !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%+v: got %v, want a ConfigError on %s", tc.cfg, err, tc.field)
		}
	}
	if _, err := lease.New(nil, lease.Config{}); !errors.Is(err, lease.ErrInvalidConfig) {
		t.Errorf("nil db: got %v", err)
	}
}
