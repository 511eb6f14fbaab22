package main

import (
	"context"
	"errors"
	"io"
)

// run runs the simulation until ctx ends or cfg.Duration passes, shuts everything down and
// prints the summary to stdout. It returns every error met on the way (joined), including
// the summary's (a tick error, a change left unwritten, a chat line not handled).
func run(ctx context.Context, cfg Config, stdout io.Writer) error {
	sum, err := simulate(ctx, cfg)
	if sum.Ticks > 0 {
		err = errors.Join(err, sum.print(stdout))
	}
	return err
}

// simulate is run without the printing: open, loop, shutdown, summary.
func simulate(ctx context.Context, cfg Config) (_ Summary, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return Summary{}, err
	}
	if cfg.MetricsAddr != "" {
		m, err := startMetrics(cfg.MetricsAddr, cfg.Logger)
		if err != nil {
			return Summary{}, err
		}
		defer func() { err = errors.Join(err, m.close()) }() // after shutdown: the final values stay scrapable until then
		cfg.meterProvider = m.provider
	}
	s, err := open(ctx, cfg)
	if err != nil {
		return Summary{}, err
	}
	s.log.Info().Str("backend", s.store.name).Int("players", cfg.Players).Int("rooms", cfg.Rooms).
		Float64("tick_ms", ms(cfg.Tick)).Str("game_step", cfg.GameStep.String()).Msg("mudsim started")
	s.loop(ctx)
	s.log.Info().Int64("ticks", s.ticks).Msg("mudsim stopping")
	err = s.shutdown()
	sum := s.summary()
	return sum, errors.Join(err, sum.err())
}
