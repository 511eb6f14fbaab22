package roomstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gamepersist/gamepersist/roomstore"
)

// TestConfigErrorsNameTheField: every refused configuration is a *ConfigError naming its
// field, and matches ErrInvalidConfig — the same vocabulary as flux and natsbridge.
func TestConfigErrorsNameTheField(t *testing.T) {
	t.Parallel()
	cases := map[string]error{}
	_, cases["CacheConfig.TTL"] = roomstore.NewCached(roomstore.NewMemoryStore(), roomstore.CacheConfig{TTL: -time.Second})
	_, cases["CacheConfig.RefreshAhead"] = roomstore.NewCached(roomstore.NewMemoryStore(), roomstore.CacheConfig{RefreshAhead: 1.5})
	// Sizes past their documented maxima are refused before anything is allocated (1<<40
	// rooms used to crash NewCached out of memory).
	_, cases["CacheConfig.MaxRooms"] = roomstore.NewCached(roomstore.NewMemoryStore(), roomstore.CacheConfig{MaxRooms: 1 << 40})
	_, cases["CacheConfig.MaxNegative"] = roomstore.NewCached(roomstore.NewMemoryStore(), roomstore.CacheConfig{MaxNegative: 1 << 36})
	_, cases["CacheConfig.MaxRefreshes"] = roomstore.NewCached(roomstore.NewMemoryStore(), roomstore.CacheConfig{MaxRefreshes: roomstore.MaxCacheRefreshes + 1})
	pool := &pgxpool.Pool{} // never used: the config is refused first
	_, cases["PostgresConfig.Table"] = roomstore.NewPostgres(pool, roomstore.PostgresConfig{Table: "a.b.c"})
	_, cases["PostgresConfig.BatchChunk"] = roomstore.NewPostgres(pool, roomstore.PostgresConfig{BatchChunk: -1})
	_, cases["PostgresConfig.ApplicationName"] = roomstore.NewPostgres(pool, roomstore.PostgresConfig{ApplicationName: "a\x00"})
	for field, err := range cases {
		var ce *roomstore.ConfigError
		if !errors.As(err, &ce) || ce.Field != field || !errors.Is(err, roomstore.ErrInvalidConfig) {
			t.Errorf("%s: got %v, want a *ConfigError for it wrapping ErrInvalidConfig", field, err)
			continue
		}
		if ce.Value == "" || ce.Reason == "" {
			t.Errorf("%s: ConfigError %+v lacks its Value or Reason", field, ce)
		}
	}
}
