package natsbridge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gamepersist/gamepersist/internal/testkit/testnats"
	"github.com/gamepersist/gamepersist/natsbridge"
)

// assertNatsConfigError fails unless err is a *natsbridge.ConfigError for field matching
// natsbridge.ErrInvalidConfig.
func assertNatsConfigError(t *testing.T, name string, err error, field string) {
	t.Helper()
	var ce *natsbridge.ConfigError
	if !errors.As(err, &ce) || ce.Field != field || !errors.Is(err, natsbridge.ErrInvalidConfig) {
		t.Errorf("%s: err = %v, want a *natsbridge.ConfigError for %s", name, err, field)
		return
	}
	if ce.Reason == "" {
		t.Errorf("%s: %+v has no Reason", name, ce)
	}
}

// TestRefusedFieldsAreConfigErrors: fields that returned a bare ErrInvalidConfig
// (DeadLetterPrefix "x", an unknown OverflowPolicy, ConnectConfig's refusals) are
// *ConfigErrors naming the field, the one shape of roomstore and flux too.
func TestRefusedFieldsAreConfigErrors(t *testing.T) {
	t.Parallel()
	nc := dialTest(t, testnats.Start(t).ClientURL())
	_, err := natsbridge.New(nc, natsbridge.Config{DeadLetterPrefix: "x"})
	assertNatsConfigError(t, "DeadLetterPrefix x", err, "Config.DeadLetterPrefix")
	_, err = natsbridge.New(nc, natsbridge.Config{OverflowPolicy: 99})
	assertNatsConfigError(t, "OverflowPolicy 99", err, "Config.OverflowPolicy")
	for field, cfg := range map[string]natsbridge.ConnectConfig{
		"ConnectConfig.User":           {User: "game"},
		"ConnectConfig.ConnectTimeout": {ConnectTimeout: -time.Second},
		"ConnectConfig.URLs":           {URLs: []string{"http://h:4222"}},
		"ConnectConfig.Options":        {Options: []nats.Option{nil}},
	} {
		assertNatsConfigError(t, field, cfg.Validate(), field)
	}
	// A refused secret is named, never shown.
	const secret = "hunter2-secret"
	err = natsbridge.ConnectConfig{Password: secret}.Validate()
	assertNatsConfigError(t, "Password without User", err, "ConnectConfig.Password")
	var ce *natsbridge.ConfigError
	if errors.As(err, &ce) && (strings.Contains(ce.Error(), secret) || strings.Contains(ce.Value, secret)) {
		t.Errorf("the refused password is shown: %v", ce)
	}
}

// TestNamesRefusedUpFront: stream and consumer names with NUL, invalid UTF-8 or more than
// 255 bytes, and queue names with NUL, are *ConfigErrors before any server round trip;
// they used to be refused by the server (names) or never (a queue name with NUL).
func TestNamesRefusedUpFront(t *testing.T) {
	t.Parallel()
	b, _ := startBridge(t, natsbridge.Config{})
	ctx := context.Background()
	noop := func(context.Context, natsbridge.Msg) error { return nil }
	long := strings.Repeat("n", 256)
	for _, bad := range []string{"a\x00b", "a\xffb", long, "", "a.b", "a b"} {
		err := b.HandleDurable(ctx, natsbridge.Durable{Stream: bad, Consumer: "c", Subject: "names.x"}, noop)
		assertNatsConfigError(t, fmt.Sprintf("stream %q", bad), err, "Durable.Stream")
		err = b.HandleDurable(ctx, natsbridge.Durable{Stream: "NAMES", Consumer: bad, Subject: "names.x"}, noop)
		assertNatsConfigError(t, fmt.Sprintf("consumer %q", bad), err, "Durable.Consumer")
	}
	for _, bad := range []string{"g\x00", "g\xff", "g h", "g*"} {
		err := b.Handle("names.q", noop, natsbridge.Queue(bad))
		assertNatsConfigError(t, fmt.Sprintf("queue %q", bad), err, "Queue")
	}
	if err := b.Handle("names.q", noop, natsbridge.Queue("workers")); err != nil {
		t.Errorf("a plain queue name refused: %v", err)
	}
}

// TestConnectConfigPrintsNoSecret: %v, %+v, %s and %#v of a ConnectConfig mask its
// Password, Token and URL credentials (they printed them).
func TestConnectConfigPrintsNoSecret(t *testing.T) {
	t.Parallel()
	const pw, tok, urlPW = "pa55-word", "t0ken-value", "url-pa55"
	cfg := natsbridge.ConnectConfig{
		URLs: []string{"nats://game:" + urlPW + "@n1:4222", "nats://n2:4222"},
		User: "game", Password: pw, Token: tok,
	}
	for _, verb := range []string{"%v", "%+v", "%s", "%#v"} {
		out := fmt.Sprintf(verb, cfg)
		for _, secret := range []string{pw, tok, urlPW} {
			if strings.Contains(out, secret) {
				t.Errorf("%s prints %q: %s", verb, secret, out)
			}
		}
		if !strings.Contains(out, "n2:4222") || !strings.Contains(out, "game") {
			t.Errorf("%s lost the non-secret fields: %s", verb, out)
		}
	}
	if cfg.Password != pw || cfg.URLs[0] != "nats://game:"+urlPW+"@n1:4222" {
		t.Error("printing changed the config")
	}
}

// TestShortSecretDoesNotGarbleConnectErrors: a one-letter password is masked where it
// stands, not in every word of Connect's error (it turned "connect" into "connxxxxxct").
func TestShortSecretDoesNotGarbleConnectErrors(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := natsbridge.Connect(ctx, natsbridge.ConnectConfig{
		URLs: []string{"nats://127.0.0.1:1"}, User: "u", Password: "e", ConnectTimeout: 500 * time.Millisecond,
	})
	if !errors.Is(err, natsbridge.ErrConnect) {
		t.Fatalf("Connect to port 1 = %v, want ErrConnect", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "cannot connect") || !strings.Contains(msg, "127.0.0.1:1") {
		t.Errorf("the error text is garbled: %q", msg)
	}
}
