// Package natsbridge connects a game server to NATS without letting NATS block the
// game: a connect helper with TLS and authentication, a builder for the game's subject
// scheme, a typed JSON envelope codec, and a Bridge that runs message handlers with
// bounded, per-key ordered concurrency, retries and a dead-letter subject.
//
// # Connecting
//
// Connect turns a ConnectConfig (servers, TLS files or a *tls.Config, user/password,
// token, NKey seed or credentials file, reconnect policy, zerolog logger) into a
// *nats.Conn. Options are validated before any dial (errors wrap ErrInvalidOption);
// certificate verification and hostname checks are always on and TLS 1.2 is the floor;
// credentials never appear in an error or a log line. Connect honours its ctx, and
// connection events (connect, disconnect, reconnect, close, lame duck, asynchronous
// errors) are logged as structured lines.
//
// Ownership: the connection Connect returns belongs to the caller. Nothing in this
// package — the Bridge included — closes a connection it did not open; close it after
// the Bridge.
//
// # Subjects
//
// Subjects follow {service}.{channel}.{scope}.{id}, e.g. "chat.say.room.<room>",
// "events.player_entered.<room>", "events.game_tick". Subject and the named helpers
// (ChatSay, PlayerEntered, PlayerLeft, LucidityChange, GameTick) reject any token that
// would change a subject's meaning — empty, '.', '*', '>', whitespace, control or
// invisible characters, invalid UTF-8 — and subjects over MaxSubjectLength bytes, with
// an error wrapping ErrInvalidSubject that names the token. Wildcards exist only through
// Pattern. LastToken gives the default ordering key (the room in "chat.say.room.<room>").
//
// # Envelopes
//
// Every message is an Envelope[T]: id, timestamp, type, sender, origin and a typed
// payload, as JSON. Publish and PublishWithMsgID (which sets Nats-Msg-Id for JetStream
// de-duplication) encode and publish one; Decode parses one, rejecting oversize input
// before parsing, unknown fields at any depth, trailing data and missing required fields
// with a *DecodeError (errors.Is(err, ErrDecode)) whose Reason says which.
//
// # Errors
//
// Errors are sentinels (ErrInvalidOption, ErrInvalidSubject, ErrDecode, ErrEncode,
// ErrConnect, ErrClosed) and typed errors (*DecodeError), always wrapped with %w and
// matchable with errors.Is and errors.As; nats.go's own errors (nats.ErrAuthorization,
// nats.ErrTLS, …) stay in the chain.
package natsbridge
