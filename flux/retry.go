package flux

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATEs of the failures Retryable accepts: the statement was rolled back as a whole.
const (
	sqlstateDeadlock      = "40P01" // deadlock_detected
	sqlstateSerialization = "40001" // serialization_failure
	sqlstateLockTimeout   = "55P03" // lock_not_available
)

// Retryable reports whether err is a PostgreSQL failure after which the same statement can
// simply be sent again because nothing of it was applied: a deadlock, a serialization
// failure or a lock timeout. PostgresPlayers retries these itself within the caller's
// deadline; a game can use Retryable for its own writes to the same rows.
func Retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case sqlstateDeadlock, sqlstateSerialization, sqlstateLockTimeout:
		return true
	}
	return false
}

// retryConflicts calls fn until it returns nil or an error that is not Retryable, waiting
// a little longer each time (1 ms doubling to 50 ms), and never past ctx's end: it then
// returns fn's last error. It counts each retry in retries.
func retryConflicts(ctx context.Context, retries *atomic.Int64, fn func() error) error {
	wait := time.Millisecond
	for {
		err := fn()
		if err == nil || !Retryable(err) {
			return err
		}
		retries.Add(1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}
