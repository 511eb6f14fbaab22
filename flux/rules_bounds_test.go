package flux_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

// justAbove returns the next float64 beyond v, away from zero.
func justAbove(v float64) float64 { return math.Nextafter(v, math.Copysign(math.Inf(1), v)) }

// TestValidateRefusesUnboundedRules: one case per value that validated before but
// misbehaved in Evaluate (a finite rate so large that flux overflows, lucidity bounds whose
// span overflows, thresholds no lucidity can reach). Each is refused by Validate and
// NewEvaluator with a *RulesError wrapping ErrInvalidRules that names the field and the
// limit.
func TestValidateRefusesUnboundedRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		mut   func(*flux.Rules)
		field string
		limit string // in the message
	}{
		{"huge environment value", func(r *flux.Rules) { r.Environments["x"] = flux.Always(1e308) },
			`Environments["x"].All`, "MaxRate"},
		{"huge negative room override at night", func(r *flux.Rules) { r.RoomOverrides["r"] = flux.DayNight(0, -1e308) },
			`RoomOverrides["r"].Night`, "MaxRate"},
		{"sub-zone override just beyond MaxRate", func(r *flux.Rules) {
			r.SubZoneOverrides["s"] = flux.Profile{Day: flux.RateOf(justAbove(flux.MaxRate))}
		}, `SubZoneOverrides["s"].Day`, "MaxRate"},
		{"zone override just beyond −MaxRate", func(r *flux.Rules) { r.ZoneOverrides["z"] = flux.Always(justAbove(-flux.MaxRate)) },
			`ZoneOverrides["z"].All`, "MaxRate"},
		{"huge value in an unset rate", func(r *flux.Rules) { r.Environments["x"] = flux.Profile{Night: flux.Rate{LCD: 1e300}} },
			`Environments["x"].Night`, "MaxRate"},
		{"huge default profile", func(r *flux.Rules) { r.DefaultProfile = flux.DayNight(-1e12, 0) },
			"DefaultProfile.Day", "MaxRate"},
		{"NaN default profile", func(r *flux.Rules) { r.DefaultProfile.All = flux.RateOf(math.NaN()) },
			"DefaultProfile.All", "finite"},
		{"huge world rate", func(r *flux.Rules) { r.WorldOverrides["shadow|*|*"] = 1e308 },
			`WorldOverrides["shadow|*|*"]`, "MaxRate"},
		{"world rate just beyond MaxRate", func(r *flux.Rules) { r.WorldOverrides["shadow|mire|bog"] = justAbove(flux.MaxRate) },
			`WorldOverrides["shadow|mire|bog"]`, "MaxRate"},
		{"huge world rate cap", func(r *flux.Rules) { r.WorldRateCap = 1e308 },
			"WorldRateCap", "MaxRate"},
		{"huge companion bonus", func(r *flux.Rules) { r.CompanionBonus = 1e308 },
			"CompanionBonus", "MaxRate"},
		{"huge companion bonus cap", func(r *flux.Rules) { r.CompanionBonusCap = justAbove(flux.MaxRate) },
			"CompanionBonusCap", "MaxRate"},
		{"huge negative impaired companion flux", func(r *flux.Rules) { r.ImpairedCompanionFlux = -1e308 },
			"ImpairedCompanionFlux", "MaxRate"},
		{"huge positive impaired companion flux", func(r *flux.Rules) { r.ImpairedCompanionFlux = 2e6 },
			"ImpairedCompanionFlux", "MaxRate"},
		{"MinInt and MaxInt bounds", func(r *flux.Rules) { r.MinLucidity, r.MaxLucidity = math.MinInt, math.MaxInt },
			"MinLucidity", "MaxLucidityBound"},
		{"MaxInt upper bound", func(r *flux.Rules) { r.MaxLucidity = math.MaxInt },
			"MaxLucidity", "MaxLucidityBound"},
		{"lower bound one beyond", func(r *flux.Rules) { r.MinLucidity = -flux.MaxLucidityBound - 1 },
			"MinLucidity", "MaxLucidityBound"},
		{"upper bound one beyond", func(r *flux.Rules) { r.MaxLucidity = flux.MaxLucidityBound + 1 },
			"MaxLucidity", "MaxLucidityBound"},
		{"empty lucidity range", func(r *flux.Rules) { r.MinLucidity = r.MaxLucidity },
			"MinLucidity", "MaxLucidity"},
		{"lucid threshold above MaxLucidity+1", func(r *flux.Rules) { r.Tiers.LucidMin = 102 },
			"Tiers.LucidMin", "MaxLucidity+1"},
		{"lucid threshold MaxInt", func(r *flux.Rules) { r.Tiers.LucidMin = math.MaxInt },
			"Tiers.LucidMin", "MaxLucidity+1"},
		{"deranged threshold below MinLucidity", func(r *flux.Rules) { r.Tiers.DerangedMin = -101 },
			"Tiers.DerangedMin", "MinLucidity"},
		{"deranged threshold MinInt", func(r *flux.Rules) { r.Tiers.DerangedMin = math.MinInt },
			"Tiers.DerangedMin", "MinLucidity"},
		{"thresholds out of order", func(r *flux.Rules) { r.Tiers.FracturedMin = r.Tiers.UneasyMin },
			"Tiers.FracturedMin", "Tiers.UneasyMin"},
		{"thresholds beyond a narrowed range", func(r *flux.Rules) { r.MinLucidity, r.MaxLucidity = 0, 50 },
			"Tiers.LucidMin", "MaxLucidity+1"},
	}
	for _, c := range cases {
		r := flux.DefaultRules()
		c.mut(&r)
		err := r.Validate()
		var re *flux.RulesError
		switch {
		case !errors.Is(err, flux.ErrInvalidRules):
			t.Errorf("%s: Validate() = %v, want ErrInvalidRules", c.name, err)
			continue
		case !errors.As(err, &re):
			t.Errorf("%s: %v is not a *RulesError", c.name, err)
			continue
		case re.Field != c.field:
			t.Errorf("%s: Field %q, want %q (%v)", c.name, re.Field, c.field, err)
		case !strings.Contains(err.Error(), c.limit) || !strings.Contains(err.Error(), c.field):
			t.Errorf("%s: message %q does not name the field %s and the limit %s", c.name, err, c.field, c.limit)
		}
		if ev, err := flux.NewEvaluator(r); ev != nil || !errors.Is(err, flux.ErrInvalidRules) {
			t.Errorf("%s: NewEvaluator = %v, %v; want nil, ErrInvalidRules", c.name, ev, err)
		}
	}
}

// extremeRules returns the default rules stretched to every limit Validate accepts.
func extremeRules() flux.Rules {
	r := flux.DefaultRules()
	r.MinLucidity, r.MaxLucidity = -flux.MaxLucidityBound, flux.MaxLucidityBound
	r.Tiers = flux.TierThresholds{LucidMin: r.MaxLucidity + 1, UneasyMin: 40, FracturedMin: 20, DerangedMin: r.MinLucidity}
	r.Environments["abyss"] = flux.Always(-flux.MaxRate)
	r.Environments["heaven"] = flux.DayNight(flux.MaxRate, flux.MaxRate)
	r.DefaultProfile = flux.Profile{Day: flux.RateOf(-flux.MaxRate), All: flux.RateOf(flux.MaxRate)}
	r.WorldRateCap = flux.MaxRate
	r.WorldOverrides["void|*|*"] = flux.MaxRate
	r.CompanionBonus, r.CompanionBonusCap, r.ImpairedCompanionFlux = flux.MaxRate, flux.MaxRate, -flux.MaxRate
	return r
}

// TestValidateAcceptsLimits: every value exactly at its limit is accepted (DefaultRules
// too), and MaxFlux stays finite there: 3·MaxRate.
func TestValidateAcceptsLimits(t *testing.T) {
	t.Parallel()
	if err := flux.DefaultRules().Validate(); err != nil {
		t.Fatalf("DefaultRules().Validate() = %v", err)
	}
	r := extremeRules()
	if err := r.Validate(); err != nil {
		t.Fatalf("rules at every limit: Validate() = %v", err)
	}
	if got := r.MaxFlux(); got != 3*flux.MaxRate {
		t.Errorf("MaxFlux() at the limits = %v, want %v", got, 3*flux.MaxRate)
	}
	r.ImpairedCompanionFlux = flux.MaxRate // either sign
	if err := r.Validate(); err != nil {
		t.Errorf("ImpairedCompanionFlux = +MaxRate: Validate() = %v", err)
	}
	// The threshold ends inside an ordinary range.
	r = flux.DefaultRules()
	r.Tiers = flux.TierThresholds{LucidMin: 101, UneasyMin: 0, FracturedMin: -50, DerangedMin: -100}
	if err := r.Validate(); err != nil {
		t.Errorf("thresholds at MaxLucidity+1 and MinLucidity: Validate() = %v", err)
	}
}

// TestEvaluateAtTheLimits: the two cases, now at the largest accepted values. A flux
// of −3 moves lucidity 50 → 47 with the widest lucidity range (it moved 50 → 51 with
// MinInt/MaxInt bounds); a rate of −MaxRate gives a finite flux and residual and moves
// lucidity by exactly MaxRate; at the bounds lucidity stays put instead of wrapping.
func TestEvaluateAtTheLimits(t *testing.T) {
	t.Parallel()
	r := extremeRules()
	r.Environments["storm3"] = flux.Always(-3)
	ev := newEvaluator(t, r)
	lo, hi := r.MinLucidity, r.MaxLucidity
	cases := []struct {
		env       string
		from, to  int
		wantFlux  float64
		unchanged bool
	}{
		{"storm3", 50, 47, -3, false},
		{"storm3", lo + 1, lo, -3, false},
		{"storm3", lo, lo, -3, true},
		{"abyss", 0, -flux.MaxRate, -flux.MaxRate, false},
		{"abyss", lo + 10, lo, -flux.MaxRate, false},
		{"abyss", lo, lo, -flux.MaxRate, true},
		{"heaven", hi - 10, hi, flux.MaxRate, false},
		{"heaven", hi, hi, flux.MaxRate, true},
		{"heaven", lo, lo + flux.MaxRate, flux.MaxRate, false},
	}
	for _, c := range cases {
		ledger := flux.Ledger{}
		p := activePlayer("p", "r", c.from, noon)
		res := ev.Evaluate([]flux.Player{p}, roomsOf(envRoom("r", c.env)), noon, ledger)
		if got := ledger["p"].Residual; got != 0 {
			t.Errorf("%s from %d: residual %v, want 0", c.env, c.from, got)
		}
		ch, ok := changeFor(res, "p")
		if c.unchanged {
			if ok {
				t.Errorf("%s from %d: changed to %d, want no change at the bound", c.env, c.from, ch.NewLucidity)
			}
			continue
		}
		if !ok || ch.NewLucidity != c.to || ch.Flux != c.wantFlux {
			t.Errorf("%s from %d: change %+v (found %v), want lucidity %d and flux %v", c.env, c.from, ch, ok, c.to, c.wantFlux)
		}
	}
}

// TestEvaluateFiniteUnderAcceptedRules is a property test over random rules that Validate
// accepts, biased to the limits (rates of ±MaxRate, lucidity bounds of ±MaxLucidityBound,
// thresholds at the range ends, huge adaptation factors) and players at the lucidity
// bounds with companions of every tier. Over several ticks from an empty ledger, every
// change has a finite flux within MaxFlux, a lucidity within the bounds that moves in the
// direction of the step the residuals imply (and by exactly that step, clamped), tiers
// that match, and every residual stays finite within (−1, 1).
func TestEvaluateFiniteUnderAcceptedRules(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(8, 4))
	rate := func(nonNegative bool) float64 {
		var v float64
		switch rng.IntN(7) {
		case 0:
			v = flux.MaxRate
		case 1:
			v = rng.Float64() * flux.MaxRate
		case 2:
			v = math.SmallestNonzeroFloat64
		case 3:
			v = rng.Float64() * 3
		case 4:
			v = math.Nextafter(flux.MaxRate, 0)
		case 5:
			v = 0.1 * float64(rng.IntN(20))
		default:
			v = 0
		}
		if !nonNegative && rng.IntN(2) == 0 {
			v = -v
		}
		return v
	}
	profile := func() flux.Profile {
		var p flux.Profile
		for _, x := range []*flux.Rate{&p.Day, &p.Night, &p.All} {
			if rng.IntN(3) > 0 {
				*x = flux.RateOf(rate(false))
			}
		}
		return p
	}
	bound := func() int {
		switch rng.IntN(4) {
		case 0:
			return flux.MaxLucidityBound
		case 1:
			return 100
		case 2:
			return rng.IntN(flux.MaxLucidityBound + 1)
		default:
			return rng.IntN(5)
		}
	}
	envs := []string{"e0", "e1", "e2", "e3", "unlisted"}
	const rulesSets, ticks, nPlayers = 400, 5, 40

	for set := range rulesSets {
		r := flux.DefaultRules()
		r.MinLucidity, r.MaxLucidity = -bound(), bound()
		if r.MaxLucidity-r.MinLucidity < 3 { // room for four distinct thresholds
			r.MaxLucidity = r.MinLucidity + 3
		}
		r.Tiers = randomThresholds(rng, r.MinLucidity, r.MaxLucidity+1)
		for _, e := range envs[:4] {
			r.Environments[e] = profile()
		}
		r.ZoneOverrides["z1"] = profile()
		r.DefaultProfile = profile()
		r.WorldRateCap = rate(true)
		r.WorldOverrides["void|*|*"] = rate(true)
		r.CompanionBonus, r.CompanionBonusCap, r.ImpairedCompanionFlux = rate(true), rate(true), rate(false)
		r.AdaptationStep = 1 + rng.IntN(5)
		r.AdaptationMaxSteps = []int{0, 2, math.MaxInt}[rng.IntN(3)]
		r.AdaptationPerStep = []float64{0, 0.25, 1e300, math.MaxFloat64}[rng.IntN(4)]
		r.AdaptationFloor = []float64{0, 0.5, 1}[rng.IntN(3)]
		r.CarryEpsilon = []float64{0, 1e-6, 0.49}[rng.IntN(3)]
		if err := r.Validate(); err != nil {
			t.Fatalf("set %d: generated rules refused: %v", set, err)
		}
		maxFlux := r.MaxFlux()
		if !(maxFlux <= 3*flux.MaxRate) { // also false for NaN
			t.Fatalf("set %d: MaxFlux %v beyond 3·MaxRate", set, maxFlux)
		}
		ev := newEvaluator(t, r)

		rooms := map[string]flux.RoomInfo{}
		for i := range 6 {
			room := flux.RoomInfo{ID: fmt.Sprint("r", i), Plane: "material", Zone: fmt.Sprint("z", i%3), Environment: envs[i%len(envs)]}
			if i == 5 {
				room.Plane = "void"
			}
			rooms[room.ID] = room
		}
		players := make([]flux.Player, nPlayers)
		for i := range players {
			var l int
			switch rng.IntN(5) {
			case 0:
				l = r.MinLucidity
			case 1:
				l = r.MaxLucidity
			case 2:
				l = r.MinLucidity + rng.IntN(2)
			case 3:
				l = r.MaxLucidity - rng.IntN(2)
			default:
				l = r.MinLucidity + rng.IntN(r.MaxLucidity-r.MinLucidity+1)
			}
			players[i] = activePlayer(fmt.Sprint("p", i), fmt.Sprint("r", rng.IntN(6)), l, noon)
		}

		ledger := flux.Ledger{}
		for tick := range ticks {
			at := noon.Add(time.Duration(tick) * 7 * time.Hour) // day and night
			for i := range players {
				players[i].LastActive = at
			}
			before := ledger.Clone()
			res := ev.Evaluate(players, rooms, at, ledger)
			for _, ch := range res.Changes {
				where := fmt.Sprintf("set %d tick %d player %s", set, tick, ch.PlayerID)
				for _, v := range []float64{ch.Base, ch.Companion, ch.Adaptation, ch.Flux} {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						t.Fatalf("%s: non-finite part in %+v", where, ch)
					}
				}
				if math.Abs(ch.Flux) > maxFlux {
					t.Fatalf("%s: |flux| %v beyond MaxFlux %v", where, ch.Flux, maxFlux)
				}
				if ch.NewLucidity < r.MinLucidity || ch.NewLucidity > r.MaxLucidity {
					t.Fatalf("%s: lucidity %d outside [%d, %d]", where, ch.NewLucidity, r.MinLucidity, r.MaxLucidity)
				}
				if ch.OldTier != r.Tier(ch.OldLucidity) || ch.NewTier != r.Tier(ch.NewLucidity) {
					t.Fatalf("%s: tiers do not match lucidity: %+v", where, ch)
				}
				// The step the evaluation took: what entered the carry minus what stayed.
				step := math.Round(before[ch.PlayerID].Residual + ch.Flux - ledger[ch.PlayerID].Residual)
				if step == 0 || math.Signbit(step) != math.Signbit(ch.Flux) {
					t.Fatalf("%s: step %v against flux %v", where, step, ch.Flux)
				}
				moved := ch.NewLucidity - ch.OldLucidity
				if (moved > 0) != (step > 0) {
					t.Fatalf("%s: lucidity moved %d against the step %v", where, moved, step)
				}
				want := int(max(float64(r.MinLucidity), min(float64(r.MaxLucidity), float64(ch.OldLucidity)+step)))
				if ch.NewLucidity != want {
					t.Fatalf("%s: lucidity %d → %d, want %d (step %v)", where, ch.OldLucidity, ch.NewLucidity, want, step)
				}
			}
			for id, c := range ledger {
				if math.IsNaN(c.Residual) || c.Residual <= -1 || c.Residual >= 1 {
					t.Fatalf("set %d tick %d: residual of %s is %v, want finite within (−1, 1)", set, tick, id, c.Residual)
				}
			}
			applyChanges(players, res)
		}
	}
}

// randomThresholds returns strictly decreasing thresholds within [lo, hi] (hi−lo ≥ 3),
// often at the ends.
func randomThresholds(rng *rand.Rand, lo, hi int) flux.TierThresholds {
	var v []int
	for len(v) < 4 {
		v = v[:0]
		if rng.IntN(2) == 0 {
			v = append(v, hi)
		}
		if rng.IntN(2) == 0 {
			v = append(v, lo)
		}
		for len(v) < 4 {
			v = append(v, lo+rng.IntN(hi-lo+1))
		}
		slices.Sort(v)
		v = slices.Compact(v)
	}
	return flux.TierThresholds{LucidMin: v[3], UneasyMin: v[2], FracturedMin: v[1], DerangedMin: v[0]}
}
