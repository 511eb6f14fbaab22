package flux_test

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/gamepersist/gamepersist/flux"
)

func TestTierBoundaries(t *testing.T) {
	t.Parallel()
	r := flux.DefaultRules()
	cases := []struct {
		lucidity int
		want     flux.Tier
	}{
		{100, flux.TierLucid}, {70, flux.TierLucid},
		{69, flux.TierUneasy}, {40, flux.TierUneasy},
		{39, flux.TierFractured}, {20, flux.TierFractured},
		{19, flux.TierDeranged}, {1, flux.TierDeranged},
		{0, flux.TierCatatonic}, {-100, flux.TierCatatonic},
	}
	for _, c := range cases {
		if got := r.Tier(c.lucidity); got != c.want {
			t.Errorf("Tier(%d) = %q, want %q", c.lucidity, got, c.want)
		}
	}
	for _, tier := range flux.Tiers() {
		if !tier.Valid() {
			t.Errorf("%q is not Valid", tier)
		}
	}
	if flux.Tier("Lucid").Valid() || flux.Tier("").Valid() {
		t.Error("an unknown tier name is Valid")
	}
}

func TestPeriodBoundaries(t *testing.T) {
	t.Parallel()
	r := flux.DefaultRules()
	graveyard := envRoom("g", "graveyard")
	at := func(h, m int) time.Time { return time.Date(2026, 3, 14, h, m, 0, 0, time.UTC) }
	cases := []struct {
		t    time.Time
		want flux.Period
		base float64
	}{
		{at(5, 59), flux.Night, -0.8},
		{at(6, 0), flux.Day, -0.4},
		{at(17, 59), flux.Day, -0.4},
		{at(18, 0), flux.Night, -0.8},
		{at(0, 0), flux.Night, -0.8},
	}
	for _, c := range cases {
		if got := r.Period(c.t); got != c.want {
			t.Errorf("Period(%s) = %s, want %s", c.t.Format("15:04"), got, c.want)
		}
		if got := r.BaseFlux(graveyard, c.t); got != c.base {
			t.Errorf("graveyard BaseFlux at %s = %v, want %v", c.t.Format("15:04"), got, c.base)
		}
	}
	// The hour is read in the time's own location: 12:00 UTC is 02:00 at UTC−10.
	if got := r.Period(at(12, 0).In(time.FixedZone("UTC-10", -10*3600))); got != flux.Night {
		t.Errorf("Period of 02:00 local = %s, want night", got)
	}
	// A day that wraps past midnight.
	r.DayStartHour, r.DayEndHour = 20, 3
	for h, want := range map[int]flux.Period{19: flux.Night, 20: flux.Day, 23: flux.Day, 3: flux.Day, 4: flux.Night} {
		if got := r.Period(at(h, 0)); got != want {
			t.Errorf("wrapped day: Period(%02d:00) = %s, want %s", h, got, want)
		}
	}
}

func TestDefaultRulesEnvironmentTable(t *testing.T) {
	t.Parallel()
	r := flux.DefaultRules()
	table := map[string][2]float64{
		"sanctuary": {0.6, 0.3}, "sun_sanctuary": {0.6, 0.3}, "temple": {0.6, 0.3}, "safehouse": {0.6, 0.3},
		"street_paved": {0.2, 0}, "camp": {0.2, 0.2}, "graveyard": {-0.4, -0.8}, "haunted": {-0.4, -0.8},
		"eldritch": {-1.2, -1.5}, "storm": {-0.3, -0.3}, "forsaken": {-0.5, -0.2},
		"indoors": {0, 0}, "outdoors": {0, 0}, "anything_else": {0, 0}, "": {0, 0},
	}
	for env, want := range table {
		room := envRoom("r", env)
		if d, n := r.BaseFlux(room, noon), r.BaseFlux(room, night); d != want[0] || n != want[1] {
			t.Errorf("%q: day %v night %v, want %v %v", env, d, n, want[0], want[1])
		}
	}
	sanitarium := flux.RoomInfo{ID: "r", Plane: "material", Zone: "asylum", SubZone: "sanitarium", Environment: "sanctuary"}
	if d, n := r.BaseFlux(sanitarium, noon), r.BaseFlux(sanitarium, night); d != -0.5 || n != -0.5 {
		t.Errorf("sanitarium sub-zone: day %v night %v, want −0.5 both", d, n)
	}
	if err := r.Validate(); err != nil {
		t.Errorf("DefaultRules().Validate() = %v", err)
	}
	if got := r.MaxFlux(); !near(got, 1.5+0.3+0.2) {
		t.Errorf("MaxFlux() = %v, want 2.0", got)
	}
}

func TestProfilePrecedence(t *testing.T) {
	t.Parallel()
	r := flux.DefaultRules()
	r.RoomOverrides["r1"] = flux.Always(-0.11)
	r.SubZoneOverrides["crypt"] = flux.Always(-0.22)
	r.ZoneOverrides["old_town"] = flux.Always(-0.33)
	r.Environments["cellar"] = flux.Always(-0.44)
	r.DefaultProfile = flux.Always(-0.55)
	full := flux.RoomInfo{ID: "r1", Plane: "p", Zone: "old_town", SubZone: "crypt", Environment: "cellar"}
	steps := []struct {
		name string
		drop func(*flux.RoomInfo)
		want float64
	}{
		{"room override", func(*flux.RoomInfo) {}, -0.11},
		{"sub-zone override", func(ri *flux.RoomInfo) { ri.ID = "r2" }, -0.22},
		{"zone override", func(ri *flux.RoomInfo) { ri.SubZone = "" }, -0.33},
		{"environment", func(ri *flux.RoomInfo) { ri.Zone = "new_town" }, -0.44},
		{"default profile", func(ri *flux.RoomInfo) { ri.Environment = "unknown" }, -0.55},
	}
	room := full
	for _, s := range steps {
		s.drop(&room)
		if got := r.BaseFlux(room, noon); got != s.want {
			t.Errorf("%s: BaseFlux = %v, want %v", s.name, got, s.want)
		}
	}

	// Within a profile: the period's value, else all, else 0.
	cases := []struct {
		p          flux.Profile
		day, night float64
	}{
		{flux.Profile{Day: flux.RateOf(1), Night: flux.RateOf(2), All: flux.RateOf(3)}, 1, 2},
		{flux.Profile{Day: flux.RateOf(1), All: flux.RateOf(3)}, 1, 3},
		{flux.Profile{Night: flux.RateOf(2), All: flux.RateOf(3)}, 3, 2},
		{flux.Profile{Day: flux.RateOf(1)}, 1, 0},
		{flux.Profile{Night: flux.RateOf(0), All: flux.RateOf(3)}, 3, 0},
		{flux.Profile{}, 0, 0},
	}
	for i, c := range cases {
		if d, n := c.p.Value(flux.Day), c.p.Value(flux.Night); d != c.day || n != c.night {
			t.Errorf("profile %d: day %v night %v, want %v %v", i, d, n, c.day, c.night)
		}
	}
}

func TestWorldOverridePrecedenceAndCap(t *testing.T) {
	t.Parallel()
	r := flux.DefaultRules()
	r.RoomOverrides["r1"] = flux.Always(0.9) // a world override beats every profile
	r.WorldOverrides["shadow|*|*"] = 3
	r.WorldOverrides["shadow|mire|*"] = 2
	r.WorldOverrides["shadow|mire|bog"] = 1
	r.WorldOverrides["void|*|*"] = 25 // capped at 10
	ev := newEvaluator(t, r)
	cases := []struct {
		room flux.RoomInfo
		want float64
	}{
		{flux.RoomInfo{ID: "r1", Plane: "shadow", Zone: "mire", SubZone: "bog", Environment: "sanctuary"}, -1},
		{flux.RoomInfo{ID: "r1", Plane: "Shadow", Zone: "MIRE", SubZone: "Bog"}, -1}, // matched lower-cased
		{flux.RoomInfo{ID: "r1", Plane: "shadow", Zone: "mire", SubZone: "fen"}, -2},
		{flux.RoomInfo{ID: "r1", Plane: "shadow", Zone: "mire"}, -2},
		{flux.RoomInfo{ID: "r1", Plane: "shadow", Zone: "peaks", SubZone: "bog"}, -3},
		{flux.RoomInfo{ID: "r1", Plane: "void", Zone: "x", SubZone: "y"}, -10},
		{flux.RoomInfo{ID: "r1", Plane: "material", Zone: "mire", SubZone: "bog"}, 0.9},
		{flux.RoomInfo{ID: "r9", Plane: "ÖDLAND", Zone: "mire", Environment: "camp"}, 0.2},
	}
	for _, c := range cases {
		if got := r.BaseFlux(c.room, noon); got != c.want {
			t.Errorf("BaseFlux(%+v) = %v, want %v", c.room, got, c.want)
		}
		// The evaluator (which builds keys in a reused buffer) agrees.
		ledger := flux.Ledger{}
		res := ev.Evaluate([]flux.Player{activePlayer("p", c.room.ID, 0, noon)},
			map[string]flux.RoomInfo{c.room.ID: c.room}, noon, ledger)
		got := ledger["p"].Residual
		if ch, ok := changeFor(res, "p"); ok {
			got = ch.Base
		}
		if !near(got, c.want) {
			t.Errorf("Evaluate in %+v: base %v, want %v", c.room, got, c.want)
		}
	}
	r.WorldOverrides["ödland|*|*"] = 4
	if got := r.BaseFlux(flux.RoomInfo{Plane: "ÖDLAND"}, noon); got != -4 {
		t.Errorf("non-ASCII plane lower-cased: BaseFlux = %v, want −4", got)
	}
	if got := r.MaxFlux(); !near(got, 10+0.3+0.2) {
		t.Errorf("MaxFlux() = %v, want 10.5 (capped world rate)", got)
	}
}

func TestValidateRejectsBrokenRules(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		breakIt func(*flux.Rules)
		field   string // RulesError.Field
	}{
		"lucidity bounds":        {func(r *flux.Rules) { r.MinLucidity = 100 }, "MinLucidity"},
		"tier order":             {func(r *flux.Rules) { r.Tiers.UneasyMin = 70 }, "Tiers.UneasyMin"},
		"negative active window": {func(r *flux.Rules) { r.ActiveWindow = -time.Second }, "ActiveWindow"},
		"negative new window":    {func(r *flux.Rules) { r.NewCharacterWindow = -time.Second }, "NewCharacterWindow"},
		"day start hour":         {func(r *flux.Rules) { r.DayStartHour = -1 }, "DayStartHour"},
		"day hour":               {func(r *flux.Rules) { r.DayEndHour = 24 }, "DayEndHour"},
		"NaN environment":        {func(r *flux.Rules) { r.Environments["x"] = flux.Always(math.NaN()) }, `Environments["x"].All`},
		"Inf room override":      {func(r *flux.Rules) { r.RoomOverrides["x"] = flux.DayNight(math.Inf(1), 0) }, `RoomOverrides["x"].Day`},
		"NaN default":            {func(r *flux.Rules) { r.DefaultProfile.Night = flux.RateOf(math.NaN()) }, "DefaultProfile.Night"},
		"world key parts":        {func(r *flux.Rules) { r.WorldOverrides["a|b"] = 1 }, `WorldOverrides["a|b"]`},
		"world key case":         {func(r *flux.Rules) { r.WorldOverrides["A|b|c"] = 1 }, `WorldOverrides["A|b|c"]`},
		"world key wildcard":     {func(r *flux.Rules) { r.WorldOverrides["a|*|c"] = 1 }, `WorldOverrides["a|*|c"]`},
		"world key star plane":   {func(r *flux.Rules) { r.WorldOverrides["*|*|*"] = 1 }, `WorldOverrides["*|*|*"]`},
		"negative world rate":    {func(r *flux.Rules) { r.WorldOverrides["a|b|c"] = -1 }, `WorldOverrides["a|b|c"]`},
		"negative cap":           {func(r *flux.Rules) { r.WorldRateCap = -1 }, "WorldRateCap"},
		"negative bonus":         {func(r *flux.Rules) { r.CompanionBonus = -0.1 }, "CompanionBonus"},
		"negative bonus cap":     {func(r *flux.Rules) { r.CompanionBonusCap = -0.1 }, "CompanionBonusCap"},
		"NaN penalty":            {func(r *flux.Rules) { r.ImpairedCompanionFlux = math.NaN() }, "ImpairedCompanionFlux"},
		"adaptation step":        {func(r *flux.Rules) { r.AdaptationStep = 0 }, "AdaptationStep"},
		"adaptation max steps":   {func(r *flux.Rules) { r.AdaptationMaxSteps = -1 }, "AdaptationMaxSteps"},
		"adaptation per step":    {func(r *flux.Rules) { r.AdaptationPerStep = math.Inf(1) }, "AdaptationPerStep"},
		"adaptation floor":       {func(r *flux.Rules) { r.AdaptationFloor = 1.5 }, "AdaptationFloor"},
		"epsilon":                {func(r *flux.Rules) { r.CarryEpsilon = 0.5 }, "CarryEpsilon"},
	}
	for name, c := range cases {
		r := flux.DefaultRules()
		c.breakIt(&r)
		err := r.Validate()
		if !errors.Is(err, flux.ErrInvalidRules) {
			t.Errorf("%s: Validate() = %v, want ErrInvalidRules", name, err)
		}
		var re *flux.RulesError
		if !errors.As(err, &re) || re.Field != c.field {
			t.Errorf("%s: Validate() = %v, want a *RulesError for %s", name, err, c.field)
		}
		if ev, err := flux.NewEvaluator(r); ev != nil || !errors.Is(err, flux.ErrInvalidRules) {
			t.Errorf("%s: NewEvaluator = %v, %v; want nil, ErrInvalidRules", name, ev, err)
		}
	}
}

func TestNewEvaluatorCopiesRules(t *testing.T) {
	t.Parallel()
	r := flux.DefaultRules()
	ev := newEvaluator(t, r)
	r.Environments["graveyard"] = flux.Always(0.9) // changed after construction
	rooms := roomsOf(envRoom("g", "graveyard"))
	ledger := flux.Ledger{}
	ev.Evaluate([]flux.Player{activePlayer("p", "g", 80, night)}, rooms, night, ledger)
	if got := ledger["p"].Residual; !near(got, -0.8) {
		t.Errorf("flux %v after the caller changed its rules, want the original −0.8", got)
	}
	got := ev.Rules()
	got.Environments["graveyard"] = flux.Always(0.7)
	if p := ev.Rules().Environments["graveyard"]; p != flux.DayNight(-0.4, -0.8) {
		t.Errorf("Rules() shares its maps with the evaluator: %+v", p)
	}
}

// The evaluator remembers each room's base flux between ticks; a room whose environment
// or place changes gets the new value at once, and the period is still read every tick.
func TestEvaluateNoticesChangedRoom(t *testing.T) {
	t.Parallel()
	ev := newEvaluator(t, worldRules())
	p := []flux.Player{activePlayer("p", "r", 50, night)}
	steps := []struct {
		room flux.RoomInfo
		at   time.Time
		want float64
	}{
		{envRoom("r", "graveyard"), night, -0.8},
		{envRoom("r", "graveyard"), noon, -0.4},
		{envRoom("r", "sanctuary"), noon, 0.6},
		{flux.RoomInfo{ID: "r", Plane: "material", Zone: "town", SubZone: "sanitarium", Environment: "sanctuary"}, noon, -0.5},
		{flux.RoomInfo{ID: "r", Plane: "shadow", Zone: "town", Environment: "sanctuary"}, noon, -0.7},
	}
	for i, s := range steps {
		ledger := flux.Ledger{}
		p[0].LastActive = s.at
		ev.Evaluate(p, map[string]flux.RoomInfo{"r": s.room}, s.at, ledger)
		if got := ledger["p"].Residual; !near(got, s.want) {
			t.Errorf("step %d (%+v at %s): flux %v, want %v", i, s.room, s.at.Format("15:04"), got, s.want)
		}
	}
}
