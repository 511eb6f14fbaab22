package main

import (
	"context"
	"fmt"
	"time"
)

// faultKind names one kind of fault the schedule injects.
type faultKind string

// The faults, each through the embedded fault proxies or the NATS cluster.
const (
	// faultDBCut: one server's database connections are closed and refused (proxy down).
	faultDBCut faultKind = "db_cut"
	// faultDBSlow: 30 ms added to every chunk both ways on one server's database link.
	faultDBSlow faultKind = "db_slow"
	// faultDBReset: every statement of one server reset mid-flight (TCP RST).
	faultDBReset faultKind = "db_reset"
	// faultReplyLost: replies dropped from just before a server's Step; its write
	// reaches the database and runs, then the connection is cut: a reply lost after
	// commit.
	faultReplyLost faultKind = "reply_lost"
	// faultNATSNode: one NATS node (with its JetStream replicas) killed, then restarted.
	faultNATSNode faultKind = "nats_node_kill"
	// faultServerKill: one game server killed right after its Step (its connections cut,
	// no Close, its Runner abandoned with whatever it held), restarted later.
	faultServerKill faultKind = "server_kill"
)

// allFaults lists the kinds in the order the report prints them.
var allFaults = []faultKind{faultDBCut, faultDBSlow, faultDBReset, faultReplyLost, faultNATSNode, faultServerKill}

// fault is one scheduled fault: what, on which server (or NATS node), from which game
// minute, for how many.
type fault struct {
	Kind    faultKind
	Target  int
	Start   int
	Minutes int
}

// faultAt draws the fault that starts at minute k (the schedule calls it only when no
// fault is running): kinds in turn with a seeded shuffle, a seeded target and length.
func (s *schedule) faultAt(k int) (fault, bool) {
	rng := s.rngFor(k, 4)
	kinds := allFaults
	if s.servers == 1 {
		kinds = kinds[:len(kinds)-1] // a lone server killed stops the game: nothing to check
	}
	f := fault{Kind: kinds[rng.IntN(len(kinds))], Start: k}
	switch f.Kind {
	case faultNATSNode:
		f.Target = rng.IntN(natsNodes)
		f.Minutes = 3 + rng.IntN(3)
	case faultReplyLost:
		f.Target = rng.IntN(s.servers)
		f.Minutes = 1
	default:
		f.Target = rng.IntN(s.servers)
		f.Minutes = 2 + rng.IntN(3)
	}
	return f, true
}

// beginFault starts f if it acts before the minute's steps (reply_lost and server_kill
// act after them, see afterSteps).
func (r *soak) beginFault(ctx context.Context, f fault) error {
	r.faultCounts[f.Kind]++
	r.log.Info().Str("fault", string(f.Kind)).Int("target", f.Target).Int("minute", f.Start).Int("minutes", f.Minutes).Msg("fault begins")
	switch f.Kind {
	case faultDBCut:
		if s := r.server(f.Target); s != nil {
			s.dbProxy.Disable()
		}
	case faultDBSlow:
		if s := r.server(f.Target); s != nil {
			if err := s.dbProxy.Latency(30 * time.Millisecond); err != nil {
				return fmt.Errorf("soak: latency: %w", err)
			}
		}
	case faultDBReset:
		if s := r.server(f.Target); s != nil {
			if err := s.dbProxy.ResetPeer(0); err != nil {
				return fmt.Errorf("soak: reset: %w", err)
			}
		}
	case faultNATSNode:
		r.e.nats.kill(f.Target)
	}
	r.running = append(r.running, f)
	return nil
}

// afterSteps runs the faults that strike right after the steps of the minute: a lost
// reply while the server's write is in flight, or the server's death.
func (r *soak) afterSteps(ctx context.Context, minute int) error {
	r.checkReplyLost()
	for _, f := range r.running {
		if f.Start != minute || (f.Kind != faultReplyLost && f.Kind != faultServerKill) {
			continue
		}
		s := r.server(f.Target)
		if s == nil {
			continue
		}
		switch f.Kind {
		case faultReplyLost:
			// Replies are dropped since just before the Step (beforeSteps): its write
			// reached PostgreSQL and ran, its reply is gone.
			time.Sleep(100 * time.Millisecond)
			if err := s.dbProxy.CloseConnections(); err != nil {
				return fmt.Errorf("soak: cut: %w", err)
			}
			s.dbProxy.RemoveToxics()
			r.replyLost = append(r.replyLost, replyLostProbe{server: s, before: r.replyLostBefore})
		case faultServerKill:
			if err := s.kill(ctx, r.e.admin); err != nil {
				return err
			}
			r.setServer(f.Target, nil)
			r.abandoned = append(r.abandoned, s)
			r.log.Info().Str("server", s.name).Int("minute", minute).Msg("game server killed")
		}
	}
	return nil
}

// beforeSteps strikes what must be in place when the minute's steps run: replies of the
// reply_lost target dropped from now on (after the barrier, which needs them).
func (r *soak) beforeSteps(minute int) error {
	for _, f := range r.running {
		if f.Start != minute || f.Kind != faultReplyLost {
			continue
		}
		if s := r.server(f.Target); s != nil {
			r.replyLostBefore = s.runner.Stats().BackgroundWriteFailures
			if err := s.dbProxy.DropReplies(); err != nil {
				return fmt.Errorf("soak: drop replies: %w", err)
			}
		}
	}
	return nil
}

// checkReplyLost settles the lost-reply probes of earlier minutes (the barrier since has
// run the worker): a probe whose server saw a failed background write is a hit.
func (r *soak) checkReplyLost() {
	for _, p := range r.replyLost {
		if p.server.runner.Stats().BackgroundWriteFailures > p.before {
			r.replyLostHits++
		}
	}
	r.replyLost = r.replyLost[:0]
}

// replyLostProbe checks afterwards that a lost reply did fail a background write.
type replyLostProbe struct {
	server *gameServer
	before int64
}

// endFaults ends the faults whose time is up at minute k (all of them when force).
func (r *soak) endFaults(ctx context.Context, k int, force bool) error {
	kept := r.running[:0]
	for _, f := range r.running {
		if !force && k < f.Start+f.Minutes {
			kept = append(kept, f)
			continue
		}
		if err := r.endFault(ctx, f, k); err != nil {
			return err
		}
	}
	r.running = kept
	return nil
}

// endFault ends one fault at minute k: the proxy back, the toxics gone, the NATS node
// restarted, or the killed server started again as a new incarnation.
func (r *soak) endFault(ctx context.Context, f fault, k int) error {
	switch f.Kind {
	case faultDBCut:
		if s := r.server(f.Target); s != nil {
			if err := s.dbProxy.Enable(); err != nil {
				return fmt.Errorf("soak: enable: %w", err)
			}
		}
	case faultDBSlow, faultDBReset:
		if s := r.server(f.Target); s != nil {
			s.dbProxy.RemoveToxics()
		}
	case faultNATSNode:
		if err := r.e.nats.restart(f.Target); err != nil {
			return err
		}
	case faultServerKill:
		if r.server(f.Target) == nil {
			r.gens[f.Target]++
			s, err := startServer(ctx, r.e, f.Target, r.gens[f.Target], minuteTime(k))
			if err != nil {
				return err
			}
			r.setServer(f.Target, s)
			r.log.Info().Str("server", s.name).Int("minute", k).Msg("game server restarted")
			r.reap(f.Target)
		}
	}
	r.log.Info().Str("fault", string(f.Kind)).Int("target", f.Target).Int("minute", k).Msg("fault ends")
	return nil
}

// endDBFaultsEarly ends the running database faults at minute k, before their time: used
// when no server could pass the barrier, so that game time can go on.
func (r *soak) endDBFaultsEarly(ctx context.Context, k int) error {
	kept := r.running[:0]
	for _, f := range r.running {
		switch f.Kind {
		case faultDBCut, faultDBSlow, faultDBReset:
			r.faultsCutShort++
			if err := r.endFault(ctx, f, k); err != nil {
				return err
			}
		default:
			kept = append(kept, f)
		}
	}
	r.running = kept
	return nil
}

// reap closes what the killed incarnations of server i left behind (pool first, so
// nothing of theirs reaches the database), as the operating system reclaims a dead
// process once its replacement runs, and keeps their Bridges' final counters.
func (r *soak) reap(i int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kept := r.abandoned[:0]
	for _, s := range r.abandoned {
		if s.idx != i {
			kept = append(kept, s)
			continue
		}
		r.reaped = append(r.reaped, s.runner.Stats())
		_ = s.close(ctx, false) // a crashed server's leftovers: errors are expected
		r.bridgeTotals(s)
	}
	r.abandoned = kept
}
