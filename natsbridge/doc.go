// Package natsbridge connects a game server to NATS without letting NATS block the
// game: a connect helper with TLS and authentication, a builder for the game's subject
// scheme, a typed JSON envelope codec, a [Bridge] that runs message handlers with bounded,
// per-key ordered concurrency, retries and dead letters. Keeping the room caches of
// several game-server processes coherent is the job of the subpackage roomsync, so that
// importing natsbridge links no database driver.
//
// # Connecting
//
// [Connect] turns a [ConnectConfig] (servers, TLS files or a *tls.Config, user/password,
// token, NKey seed or credentials file, reconnect policy, zerolog logger, and any extra
// nats.Option, applied last) into a *nats.Conn. Its defaults are nats.go's except
// MaxReconnects (forever, for the reason its field doc gives); event handlers set
// through Options run after Connect's logging ones. Options are validated before any dial (errors wrap ErrInvalidConfig);
// certificate verification and the server-name check are on unless the caller's
// TLSConfig turns verification off (then Connect logs a warning, and refuses a CAFile
// or ServerName that would be ignored); a password or token sent without TLS is warned
// about; TLS 1.2 is the floor; credentials never appear in an error or a log line. Connect honours its ctx
// (errors wrap ErrConnect and ctx's error). Connection events are logged as structured
// lines with an "event" field: connect, reconnect and close at info level; a lost
// connection (with its error and the server's url) and lame duck at warn level;
// asynchronous errors at error level. The disconnect that a deliberate Close causes is
// only a debug line, so a clean shutdown logs no warning.
//
// Ownership: the connection belongs to the caller, whoever opened it. Nothing in this
// package (nor roomsync) closes, drains or changes the handlers
// of a *nats.Conn; reconnects are nats.go's, and subscriptions resume after them. Shut
// down in reverse order: the Bridge (and roomsync's invalidator) first, the connection last.
//
// # Subjects
//
// Subjects follow {service}.{channel}.{scope}.{id}, e.g. "chat.say.room.<room>",
// "events.player_entered.<room>", "events.game_tick". Subject and the two named helpers
// the examples use (ChatSay, LucidityChange) reject any token that
// would change a subject's meaning — empty, '.', '*', '>', whitespace, control or
// invisible characters, invalid UTF-8 — and subjects over MaxSubjectLength bytes, with
// an error wrapping ErrInvalidSubject that names the token. Wildcards exist only through
// Pattern and Bridge.HandlePattern. LastToken gives the default ordering key (the room in
// "chat.say.room.<room>").
//
// # Envelopes
//
// Every message is an Envelope[T]: id, timestamp, type, sender, origin and a typed
// payload, as JSON. Publish encodes and publishes one, stamped with HeaderPublishedAt so
// a Bridge measures its latency from the publish; PublishWithMsgID also sets Nats-Msg-Id
// for JetStream de-duplication. Decode parses one, rejecting oversize input before
// parsing, unknown fields at any depth, trailing data and missing required fields with a
// *DecodeError (errors.Is(err, ErrDecode)) whose Reason says which: input longer than
// MaxBytes (ReasonOversize); syntax errors, wrong field types, trailing data
// (ReasonMalformed); fields not defined by Envelope or by a struct payload, at any depth
// (ReasonUnknownField); an absent, null or empty id, type or timestamp, or an absent or
// null payload (ReasonMissingField). Field names match as encoding/json matches them.
// Typed adapts a function of a decoded envelope to a Bridge Handler.
//
// # Bridge
//
// nats.go calls each subscription's callback on one goroutine, one message at a time;
// a handler that blocks there stalls every message of the subscription, and moving the
// work to goroutines loses ordering and bounds. A Bridge (New, then Handle or
// HandlePattern per subject, optionally in a Queue group, or HandleDurable per durable
// JetStream consumer) does that part once:
//
//   - Dispatch: the nats.go callback only appends the message to its key's FIFO (the
//     key is KeyFunc's, by default the subject's last token: the room) and wakes a
//     worker; it never waits. Each registration has a fixed pool of workers
//     (Config.Concurrency, or Limits per registration); messages of one key are handled one at a time in arrival order,
//     different keys in parallel, and a slow key holds one worker while the others serve
//     the other keys. Config.MaxInFlight bounds the handler calls of the whole Bridge.
//   - Bounds and overflow: a registration buffers at most QueueLen messages and
//     MaxQueuedPerKey per key. A message beyond either bound overflows:
//     Config.OverflowPolicy dead-letters it (OverflowDeadLetter, the default) or drops
//     it (OverflowDropNewest); either way it is counted (Stats.Overflowed, Dropped) —
//     memory never grows without bound and nothing vanishes silently. nats.go's own
//     pending limits are set too, and its drops are counted as SlowConsumer.
//   - Failures: each attempt gets a deadline (HandlerTimeout) in its ctx. An error
//     marked Retryable is retried with exponential backoff and jitter up to MaxAttempts
//     (the message keeps its place: later messages of its key wait behind it). Any other
//     error, the last failed attempt, a deadline overrun, a decode error in Typed and a
//     recovered panic send the message to the dead-letter subject
//     Config.DeadLetterPrefix + subject, with the original payload and headers plus the
//     Gp-Dl-* headers (reason, error, attempts, handler, first seen, origin); the handler
//     goes on with the next message.
//   - Dead letters: EnsureDeadLetterStream creates a JetStream stream on the dead-letter
//     subjects. Dead letters are published to it with acknowledgement, each with its own
//     Nats-Msg-Id so a retry is stored once; a dead letter counts (Stats.DeadLettered)
//     only after the stream acknowledged it. While JetStream is unreachable they wait in
//     a bounded buffer (Config.DeadLetterQueueLen, default 8,192) and are retried for up
//     to Config.DeadLetterTimeout (default 1 minute); one that finds the buffer full,
//     runs out of time, or is unacknowledged at Close is counted in
//     Stats.DeadLetterLost and logged, one error line per batch. Without a stream every
//     dead letter ends lost. Replay re-publishes them to their original subjects
//     (HeaderReplayOf says where each came from) and, with Delete, deletes one only after
//     its re-publication was acknowledged by a stream or confirmed delivered to a live
//     subscriber (the server did not answer "no responders").
//   - Shutdown: Drain(ctx) stops intake, lets the workers finish everything buffered,
//     waits until the remaining dead letters are acknowledged (or lost), and stops; if
//     ctx ends first it falls back to Close and says how many messages were abandoned.
//     Close stops now: handlers' contexts are cancelled, the buffer is discarded
//     (Stats.Abandoned), and it returns once every goroutine the Bridge started and
//     nats.go's last callback into it have returned. The first Close or Drain does the
//     work; every later one waits for it and returns the same error (the module's
//     lifecycle contract). Run(ctx) blocks in the caller's goroutine until ctx ends, then
//     drains within Config.DrainTimeout and returns the drain's outcome — the Bridge
//     never runs a loop of its own.
//   - Goroutines: New starts the dead-letter publisher; each registration starts its
//     workers lazily, up to Concurrency, one more whenever ready keys outnumber idle
//     workers; a worker takes the oldest ready key, handles one message, and puts the key
//     back at the end of the ready list if it has more (round robin between keys). Each
//     handler call also takes one of Config.MaxInFlight Bridge-wide slots; a message
//     waiting for a retry keeps its worker and key but gives its slot back. A durable
//     registration adds one goroutine (recovery and progress notices). All belong to the
//     Bridge and end before Close or Drain returns.
//
// # What is durable and what is at-most-once
//
// Handle and HandlePattern ride NATS core subscriptions: at most once. A message
// published while the Bridge's connection is down, or dropped by nats.go as a slow
// consumer, is never seen; one buffered when Close runs is abandoned (counted). Use them
// for what the next message supersedes (positions, chat, ticks).
//
// HandleDurable rides a durable JetStream pull consumer: at least once. Use it for
// trades, inventory, achievements.
//
//   - Acknowledgement: a message is acknowledged after its handler returned nil, and the
//     Bridge waits for the server's confirmation of the ack (retrying until the Bridge
//     closes) before it hands the key's next message to a handler. Until then the
//     message is the server's: a crash, a killed connection or a Close leaves it
//     unacknowledged and the server delivers it again. Duplicates are therefore only
//     messages whose ack was not confirmed; Msg.ID ("<stream>:<sequence>") is the same
//     on every delivery, for idempotent handlers, and Msg.Attempt > 1 marks a redelivery.
//   - Order: in order per key. A later message of a key is not handled before every
//     earlier one of that key has been acknowledged (ack confirmed) or dead-lettered —
//     within a Bridge and across Drain, Close, a crash or a killed connection, as long
//     as one Bridge at a time consumes the consumer. Exceptions, both logged: a message
//     whose dead letter was lost is nak'ed and comes back after its key's later ones;
//     a recovery that hits its limit (below) goes on without the deliveries still out.
//     Bridges sharing one consumer split its messages and keep no order between them.
//   - Restart: HandleDurable reads the consumer's ack-pending count. If deliveries of an
//     earlier instance are still unacknowledged, the registration recovers: it parks
//     every delivery (handling none) until the server's ack-pending count equals what it
//     has parked — every outstanding message is back — then queues them in stream order.
//     After a crash this waits for AckWait (the server redelivers expired messages only
//     then): the cost of the order. If some never come (another Bridge holds them), it
//     goes on after twice AckWait plus the longest backoff, with a warning.
//   - Retries: a Retryable error naks the message with the Bridge's backoff; its key's
//     later messages wait until it comes back (at most the delay plus AckWait, in case
//     another Bridge on the consumer got it). After Durable.MaxDeliver deliveries it is
//     dead-lettered, and terminated once the dead letter is stored (nak'ed again if it was
//     lost). Any other error, a panic or a timeout dead-letters it at once.
//   - Bounds: the consumer's MaxAckPending is the registration's buffer (QueueLen of
//     Config or HandlerLimits), so the server never hands over more than the Bridge buffers; there
//     is no per-key bound (it would reorder a key) and OverflowPolicy does not apply.
//     Every third of AckWait the Bridge sends a progress notice for each buffered
//     message, so one waiting behind its key is not delivered again and its delivery
//     count grows only with handler attempts. Pulling, flow control and heartbeats are
//     nats.go's jetstream package's; the Queue option is refused.
//   - Shutdown: Drain finishes and acknowledges the buffered messages. What it cannot
//     finish it gives back to the server, each key's in order, and says so: a message
//     that fails with a Retryable error once intake stopped is nak'ed at once with the
//     messages behind it on its key, a key waiting for a nak'ed message leaves its later
//     ones to come back right after it, and Drain returns an error wrapping ErrUnhandled
//     and the last Retryable handler error (a dependency closed before the Bridge shows
//     as its own error: see "Shutdown order" in the module's package doc). Close naks
//     the buffered messages, each key's in order, and the ones whose running attempt it
//     cancelled, so they come back at once.
//
// Dead letters are stored by a JetStream stream with acknowledgement (see the Bridge
// section); Stats.DeadLettered + Stats.DeadLetterLost accounts for every one.
//
// # Dead letters
//
// Replay re-publishes the dead letters of a stream to their original subjects, with
// their original payload and headers (the Gp-Dl-* headers removed, the original Nats-*
// headers restored, HeaderReplayOf added and HeaderPublishedAt, if present, set to the
// replay time), in stream order, on js's connection; it replays the messages present
// when it starts. Each re-publication is checked before its dead letter counts as
// replayed (and, with Delete, is deleted):
//
//   - acknowledged, when a stream captures the original subject (a durable handler's
//     stream): a JetStream publish whose acknowledgement says the message was stored
//     (not taken for a duplicate);
//   - confirmed, when no stream does: a core publish with a reply inbox followed by a
//     flush; the server answers "no responders" to a message it delivered to nobody, so
//     no such answer means at least one live subscriber received it. It does not mean
//     that subscriber's handler succeeded (if it fails again, the Bridge dead-letters it
//     again). The subscriber sees the inbox as the message's Reply.
//
// It costs one JetStream look-up per distinct subject and one round trip per dead letter
// (plus one per deletion).
//
// # Stats
//
// Bridge.Stats returns a plain snapshot: received, handled, failed, retried, panics,
// timeouts, decode errors, dead-lettered (stored), dead letters lost, overflowed,
// dropped, abandoned and slow-consumer counts, the in-flight, queued and dead-letter
// gauges, per-handler buffers and started workers, and p50/p99 latency — publish→handled
// for messages carrying HeaderPublishedAt (Publish sets it, SetPublishedAt stamps any
// *nats.Msg), receive→handled otherwise. Every received message ends as handled, failed,
// overflowed or abandoned, and every dead letter as dead-lettered or lost; once Close or
// Drain returned the counters are final.
//
// Config.MeterProvider exports the same counters and latency percentiles through the
// OpenTelemetry metric API, observed from Stats at each collection (nothing is recorded
// on a message's path), under the scope "github.com/gamepersist/gamepersist/natsbridge":
// counters gamepersist.natsbridge.received, .handled, .failed, .dead_lettered and
// .dead_letter_lost (Stats.Received, Handled, Failed, DeadLettered, DeadLetterLost), and
// gauges gamepersist.natsbridge.latency.p50 and .latency.p99 (ms, publish→handled over
// all handled messages since New).
//
// # Errors
//
// Errors are sentinels (ErrInvalidConfig, ErrInvalidSubject, ErrDecode, ErrEncode,
// ErrConnect, ErrClosed) and typed errors (*ConfigError, *DecodeError, *PanicError), always wrapped
// with %w and matchable with errors.Is and errors.As; nats.go's own errors
// (nats.ErrAuthorization, nats.ErrTLS, …) stay in the chain.
package natsbridge
