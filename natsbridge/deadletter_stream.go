package natsbridge

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gamepersist/gamepersist/internal/configerr"
)

// DeadLetterStreamConfig configures EnsureDeadLetterStream.
type DeadLetterStreamConfig struct {
	// Name is the stream's name (required), e.g. "DEADLETTERS".
	Name string
	// Prefix is the Bridge's Config.DeadLetterPrefix; default "deadletter.".
	// The stream captures "<Prefix>>".
	Prefix string
	// MaxAge, MaxMsgs and MaxBytes bound what the stream keeps (zero: unlimited).
	MaxAge   time.Duration
	MaxMsgs  int64
	MaxBytes int64
	// Replicas is the stream's replica count (default 1).
	Replicas int
	// Memory selects memory storage instead of file storage.
	Memory bool
}

// EnsureDeadLetterStream creates, or updates to cfg, a JetStream stream capturing every
// dead-letter subject ("<Prefix>>"), so dead letters are kept and can be given to Replay.
// It costs one or two JetStream API round trips and returns the stream.
func EnsureDeadLetterStream(ctx context.Context, js jetstream.JetStream, cfg DeadLetterStreamConfig) (jetstream.Stream, error) {
	if js == nil {
		return nil, fmt.Errorf("%w: nil jetstream.JetStream", ErrInvalidConfig)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = defaultDeadLetterPrefix
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if err := checkJetStreamName("DeadLetterStreamConfig.Name", cfg.Name); err != nil {
		return nil, err
	}
	if err := ValidateSubject(cfg.Prefix + "x"); err != nil || !strings.HasSuffix(cfg.Prefix, ".") {
		return nil, configError("DeadLetterStreamConfig.Prefix", cfg.Prefix, "must be literal subject tokens ending in '.'")
	}
	if cfg.MaxAge < 0 || cfg.MaxMsgs < 0 || cfg.MaxBytes < 0 || cfg.Replicas < 0 {
		return nil, configError("DeadLetterStreamConfig", configerr.NoValue{}, "MaxAge, MaxMsgs, MaxBytes and Replicas must not be negative")
	}
	sc := jetstream.StreamConfig{
		Name:        cfg.Name,
		Description: "natsbridge dead letters",
		Subjects:    []string{cfg.Prefix + ">"},
		MaxAge:      cfg.MaxAge,
		MaxMsgs:     orUnlimited(cfg.MaxMsgs),
		MaxBytes:    orUnlimited(cfg.MaxBytes),
		Replicas:    cfg.Replicas,
		Storage:     jetstream.FileStorage,
		// A dead letter retried after a lost acknowledgement carries the same
		// Nats-Msg-Id: within this window the stream stores it once.
		Duplicates: deadLetterDuplicateWindow,
	}
	if cfg.Memory {
		sc.Storage = jetstream.MemoryStorage
	}
	s, err := js.CreateOrUpdateStream(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("natsbridge: ensure dead-letter stream %q: %w", cfg.Name, err)
	}
	return s, nil
}

func orUnlimited(v int64) int64 {
	if v == 0 {
		return -1
	}
	return v
}
