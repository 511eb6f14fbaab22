package main

import (
	"fmt"
	"io"
	"time"
)

// Summary is what a simulation did, printed as one line at the end.
type Summary struct {
	Backend        string
	Players, Rooms int
	// Ticks counts ticks run, TickErrors those with an error, SkippedTicks the intervals
	// missed because a tick overran.
	Ticks, TickErrors, SkippedTicks int64
	// ChangesApplied counts lucidity changes written; EventsPublished the lucidity_change
	// events sent; PendingPlayers the players whose writes the final flush could not
	// write (0).
	ChangesApplied, EventsPublished int64
	PendingPlayers                  int
	// ChatSent counts lines the clients said, ChatHandled those the handler took (lines
	// from other processes on a shared NATS included), ChatLost those that failed, were
	// dropped or abandoned, DeadLetters the messages that became dead letters (stored in
	// the dead-letter stream or, without one, counted lost).
	ChatSent, ChatHandled, ChatLost, DeadLetters uint64
	// CacheHitRatio is the room cache's over the whole run.
	CacheHitRatio    float64
	TickP50, TickP99 time.Duration
	GameTime         time.Time
	Elapsed          time.Duration
}

// summary collects the counters; call it after shutdown (Stats work after Close).
func (s *sim) summary() Summary {
	sum := Summary{Backend: "none", Players: s.cfg.Players, Rooms: s.cfg.Rooms, Ticks: s.ticks,
		TickErrors: s.tickErrors, SkippedTicks: s.skipped, EventsPublished: s.events,
		GameTime: s.gameNow, Elapsed: time.Since(s.started)}
	if s.store != nil {
		sum.Backend = s.store.name
	}
	if s.runner != nil {
		rs := s.runner.Stats()
		sum.ChangesApplied, sum.PendingPlayers = rs.ChangesApplied, rs.PendingPlayers
		sum.TickP50, sum.TickP99 = rs.TickP50, rs.TickP99
	}
	if s.clients != nil {
		sum.ChatSent = s.clients.sent
	}
	if s.bridge != nil {
		bs := s.bridge.Stats()
		sum.ChatHandled, sum.DeadLetters = bs.Handled, bs.DeadLettered+bs.DeadLetterLost
		sum.ChatLost = bs.Failed + bs.Dropped + bs.Abandoned
	}
	if s.rooms != nil {
		sum.CacheHitRatio = s.rooms.Stats().HitRatio
	}
	return sum
}

// err reports what in the summary is a failure: a tick error, a change left unwritten, or
// a chat line lost or dead-lettered.
func (sum Summary) err() error {
	switch {
	case sum.TickErrors > 0:
		return fmt.Errorf("mudsim: %d of %d ticks had errors (see the log)", sum.TickErrors, sum.Ticks)
	case sum.PendingPlayers > 0:
		return fmt.Errorf("mudsim: the writes of %d players left unwritten", sum.PendingPlayers)
	case sum.DeadLetters > 0 || sum.ChatLost > 0:
		return fmt.Errorf("mudsim: %d chat lines lost, %d dead-lettered", sum.ChatLost, sum.DeadLetters)
	}
	return nil
}

// print writes the summary as one line of key=value pairs.
func (sum Summary) print(w io.Writer) error {
	_, err := fmt.Fprintf(w, "mudsim summary: backend=%s players=%d rooms=%d ticks=%d tick_errors=%d skipped_ticks=%d "+
		"changes_applied=%d events_published=%d pending_players=%d chat_sent=%d chat_handled=%d "+
		"chat_lost=%d dead_letters=%d cache_hit_ratio=%.3f tick_p50=%s tick_p99=%s game_time=%s elapsed=%s\n",
		sum.Backend, sum.Players, sum.Rooms, sum.Ticks, sum.TickErrors, sum.SkippedTicks,
		sum.ChangesApplied, sum.EventsPublished, sum.PendingPlayers, sum.ChatSent, sum.ChatHandled,
		sum.ChatLost, sum.DeadLetters, sum.CacheHitRatio, sum.TickP50.Round(time.Microsecond), sum.TickP99.Round(time.Microsecond), sum.GameTime.Format(time.DateTime),
		sum.Elapsed.Round(time.Millisecond))
	return err
}
