package main

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/gamepersist/gamepersist/flux"
	"github.com/gamepersist/gamepersist/internal/workload/worldgen"
	"github.com/gamepersist/gamepersist/roomstore"
)

// gameStart is the game time of minute 0: night first (the flux differs by day and
// night), day from 06:00.
var gameStart = time.Date(2026, 6, 1, 4, 0, 0, 0, time.UTC)

// newWorld generates the world of a run with cfg: Servers × PlayersPerServer players,
// one room per five players (at least 20). The live run and the replay build it alike.
func newWorld(cfg Config) *worldgen.World {
	players := cfg.Servers * cfg.PlayersPerServer
	return worldgen.New(worldgen.Config{Rooms: max(players/5, 20), Players: players, Seed: cfg.Seed, Now: minuteTime(0)})
}

// minuteTime is the game time of minute k: one flux tick per game minute.
func minuteTime(k int) time.Time { return gameStart.Add(time.Duration(k) * time.Minute) }

// Behaviour of the simulated players, per game minute.
const (
	pLogout       = 0.004 // an online player logs out (stops acting; inactive 5 min later)
	pLogin        = 0.03  // an offline player logs in
	pMove         = 0.08  // an online player walks through an exit
	pAct          = 0.25  // an online player acts where it stands
	pChangeServer = 0.003 // an online player is handed to another game server
	pRoomRewrite  = 0.4   // the world editor rewrites a room this minute
	tradesPerSrv  = 2     // durable trade events per server per minute
	pPoison       = 0.05  // a trade the handler refuses: dead-lettered
	firstFault    = 4     // the first fault starts at this game minute
)

// trade is one durable game event: published once (by id) through a server's
// connection, handled exactly once by id, or dead-lettered when Poison.
type trade struct {
	ID     string
	Player string
	Poison bool
	Server int
}

// minuteInputs is everything the schedule does in one game minute, before the flux
// steps of that minute: presence writes (moves, actions, log-ins, server changes), the
// world editor's room rewrites, the durable events, the chat, and the faults that start.
type minuteInputs struct {
	Minute   int
	Now      time.Time
	Presence []flux.Presence
	Rooms    []roomstore.Room
	Trades   []trade
	Chat     []chatLine
	Faults   []fault
}

// simPlayer is the schedule's view of one player.
type simPlayer struct {
	id     string
	room   string
	online bool
	host   int
}

// schedule generates the seeded inputs minute by minute. The same seed, sizes and world
// give the same inputs for every minute, whatever happens while the run applies them:
// nothing here reads a clock or the system under test.
type schedule struct {
	seed     uint64
	servers  int
	noFaults bool
	rooms    []roomstore.Room
	byID     map[string]int
	envs     []string
	players  []simPlayer
	next     int // the next minute next() returns
	faultEnd int // the minute the last scheduled fault is over
}

// newSchedule starts the schedule of world: every player online at minute 0, hosted by
// server i mod servers.
func newSchedule(seed uint64, servers int, world *worldgen.World, noFaults bool) *schedule {
	s := &schedule{seed: seed, servers: servers, noFaults: noFaults, byID: map[string]int{}, faultEnd: firstFault}
	s.rooms = slices.Clone(world.Rooms)
	seen := map[string]bool{}
	for i, r := range s.rooms {
		s.byID[r.ID] = i
		if !seen[r.Environment] {
			seen[r.Environment] = true
			s.envs = append(s.envs, r.Environment)
		}
	}
	slices.Sort(s.envs)
	for i, p := range world.Players {
		s.players = append(s.players, simPlayer{id: p.ID, room: p.RoomID, online: true, host: i % servers})
	}
	return s
}

// scopeOf names game server i as a presence scope.
func scopeOf(i int) string { return "server-" + strconv.Itoa(i) }

// rngFor is the generator of one minute's draws for one purpose: keyed by seed, minute
// and purpose, not by how many draws came before, so each stream is reproducible alone.
func (s *schedule) rngFor(minute int, purpose uint64) *rand.Rand {
	a := splitmix(s.seed ^ splitmix(purpose))
	b := splitmix(a ^ splitmix(uint64(minute)+1))
	return rand.New(rand.NewPCG(a, b)) //nolint:gosec // a seeded, reproducible schedule, not a secret
}

// splitmix is SplitMix64's finaliser: neighbouring inputs give unrelated outputs, so the
// streams of neighbouring minutes and purposes do not start alike.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// nextMinute returns the inputs of the next game minute (0, 1, 2 … in order).
func (s *schedule) nextMinute() minuteInputs {
	k := s.next
	s.next++
	now := minuteTime(k)
	in := minuteInputs{Minute: k, Now: now}

	rng := s.rngFor(k, 1)
	for i := range s.players {
		p := &s.players[i]
		x := rng.Float64()
		acted := false
		switch {
		case !p.online:
			if x < pLogin {
				p.online, acted = true, true
				p.host = rng.IntN(s.servers)
			}
		case x < pLogout:
			p.online = false
		case x < pLogout+pMove:
			r := s.rooms[s.byID[p.room]]
			if n := r.Exits.Len(); n > 0 {
				j := rng.IntN(n)
				for _, to := range r.Exits.All() {
					if j == 0 {
						p.room = to
						break
					}
					j--
				}
			}
			acted = true
		case x < pLogout+pMove+pAct:
			acted = true
		}
		if p.online && s.servers > 1 && rng.Float64() < pChangeServer {
			p.host = (p.host + 1 + rng.IntN(s.servers-1)) % s.servers
			acted = true
		}
		if acted {
			in.Presence = append(in.Presence, flux.Presence{PlayerID: p.id, RoomID: p.room, LastActive: now, Scope: scopeOf(p.host)})
		}
	}

	rr := s.rngFor(k, 2)
	if rr.Float64() < pRoomRewrite {
		i := rr.IntN(len(s.rooms))
		r := s.rooms[i]
		env := s.envs[rr.IntN(len(s.envs))]
		if env == r.Environment && len(s.envs) > 1 {
			env = s.envs[(slices.Index(s.envs, env)+1)%len(s.envs)]
		}
		r.Environment = env
		r.Description = "rewritten by the world editor at minute " + strconv.Itoa(k)
		s.rooms[i] = r
		in.Rooms = append(in.Rooms, r)
	}

	tr := s.rngFor(k, 3)
	for srv := range s.servers {
		for j := range tradesPerSrv {
			p := s.players[tr.IntN(len(s.players))]
			in.Trades = append(in.Trades, trade{
				ID:     "t" + strconv.Itoa(k) + "-" + strconv.Itoa(srv) + "-" + strconv.Itoa(j),
				Player: p.id, Poison: tr.Float64() < pPoison, Server: srv,
			})
		}
	}

	cr := s.rngFor(k, 6)
	for srv := range s.servers {
		for range chatPerServer {
			p := s.players[cr.IntN(len(s.players))]
			in.Chat = append(in.Chat, chatLine{Room: p.room, Player: p.id, Server: srv})
		}
	}

	if !s.noFaults && k >= s.faultEnd {
		if f, ok := s.faultAt(k); ok {
			in.Faults = append(in.Faults, f)
			s.faultEnd = k + f.Minutes + 3 + s.rngFor(k, 5).IntN(4) // a quiet gap after each fault
		}
	}
	return in
}
