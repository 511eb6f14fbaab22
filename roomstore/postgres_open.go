package roomstore

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	pgxzerolog "github.com/jackc/pgx-zerolog"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/tracelog"

	"github.com/gamepersist/gamepersist/internal/redact"
)

// OpenPostgres opens a pool on connString (a postgres:// URL or keyword/value string), pings
// it within ctx and returns a store that owns the pool and closes it in Close. The pool's
// connections carry cfg.ApplicationName and, unless cfg.TraceLogLevel is
// tracelog.LogLevelNone, a pgx tracelog writing to cfg.Logger.
//
// It costs one connection set-up (TCP, TLS if configured, authentication) within ctx. If
// the database does not answer before ctx ends, the error names the host and port, never
// the password, wraps the pgx error (and ctx's error when ctx ended), and nothing is left
// running. A connection string that does not parse returns an error wrapping
// ErrInvalidConfig that says what is wrong ("invalid port", "sslmode is invalid", …)
// without quoting the string or any password in it.
func OpenPostgres(ctx context.Context, connString string, cfg PostgresConfig) (*Postgres, error) {
	explicitName := cfg.ApplicationName != ""
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	poolCfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgx's parse error redacts passwords on a best-effort basis only and keeps the
		// raw string in a field: keep only what it says is wrong, masked.
		return nil, fmt.Errorf("%w: connection string does not parse: %s", ErrInvalidConfig, parseProblem(err, connString))
	}
	password := poolCfg.ConnConfig.Password
	where := endpoint(poolCfg)

	if explicitName || poolCfg.ConnConfig.RuntimeParams["application_name"] == "" {
		poolCfg.ConnConfig.RuntimeParams["application_name"] = cfg.ApplicationName
	}
	if cfg.TraceLogLevel != tracelog.LogLevelNone {
		poolCfg.ConnConfig.Tracer = &tracelog.TraceLog{
			Logger:   pgxzerolog.NewLogger(cfg.Logger),
			LogLevel: cfg.TraceLogLevel,
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, redact.Error(fmt.Errorf("roomstore: open postgres at %s: %w", where, err), password)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		if cerr := ctx.Err(); cerr != nil {
			err = fmt.Errorf("%w: %w", cerr, err)
		}
		return nil, redact.Error(fmt.Errorf("roomstore: connect to postgres at %s: %w", where, err), password)
	}
	s, err := newPostgres(pool, true, cfg)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.log.Debug().Str("endpoint", where).Msg("roomstore: postgres store opened")
	return s, nil
}

// parseProblem is what pgx says is wrong with connString, without the string itself (pgx
// quotes it first, "cannot parse `…`: problem") and with every password masked.
func parseProblem(err error, connString string) string {
	text := err.Error()
	const quoted = "cannot parse `"
	if strings.HasPrefix(text, quoted) {
		if i := strings.Index(text, "`: "); i >= 0 {
			text = text[i+len("`: "):]
		}
	}
	return redact.Text(text, connString)
}

// endpoint names the host(s) and port(s) of a pool config, without credentials.
func endpoint(c *pgxpool.Config) string {
	cc := c.ConnConfig
	hosts := []string{net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port)))}
	for _, fb := range cc.Fallbacks {
		hp := net.JoinHostPort(fb.Host, strconv.Itoa(int(fb.Port)))
		if hp != hosts[0] {
			hosts = append(hosts, hp)
		}
	}
	return strings.Join(hosts, ",")
}
