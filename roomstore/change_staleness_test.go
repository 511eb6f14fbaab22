package roomstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gamepersist/gamepersist/internal/testkit/testdb"
	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

// editLog records the SQL edits of the staleness test in notice order: edit k (one
// statement, so one notice on each listener) set the versions in edits[k]. Versions are
// recorded before the statement runs, so a listener can never have applied a notice the
// log does not hold yet.
type editLog struct {
	mu sync.RWMutex
	// byRoom[id] lists, in notice order, the notice index and the version each edit of
	// id set.
	byRoom map[string][]versionAt
	total  int
}

type versionAt struct {
	notice  int
	version int64
}

func (l *editLog) add(versions map[string]int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, v := range versions {
		l.byRoom[id] = append(l.byRoom[id], versionAt{notice: l.total, version: v})
	}
	l.total++
}

// required returns the version a read of id must see once the first applied notices
// were applied: the one the last of those edits of id set (0: no such edit).
func (l *editLog) required(id string, applied uint64) int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	edits := l.byRoom[id]
	i := sort.Search(len(edits), func(i int) bool { return uint64(edits[i].notice) >= applied })
	if i == 0 {
		return 0
	}
	return edits[i-1].version
}

// TestChangeListenerStalenessBound is the bound the package documents, measured: three
// caches (three game servers) over one database, 10,000 random edits made in plain SQL
// (one or two rooms per statement) while readers read every cache, and not one read that
// started after its cache's listener had applied an edit's notice returned a version
// older than that edit. Staleness is judged by version numbers, never by time: reads
// between a commit and its notice may be stale (counted and logged, not failed).
func TestChangeListenerStalenessBound(t *testing.T) {
	t.Parallel()
	const (
		rooms       = 300
		edits       = 10_000
		readersEach = 2
	)
	cs, _ := testdb.NewSchema(t)
	channel := uniqueName("gp_chan_")
	var nodes []*notifyNode
	for range 3 {
		nodes = append(nodes, newNotifyNode(t, cs, channel, roomstore.ChangeListenerConfig{}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	ids := make([]string, rooms)
	current := map[string]int64{}
	for i := range ids {
		ids[i] = "room-" + strconv.Itoa(i)
		if err := nodes[0].store.PutRoom(ctx, roomstoretest.SampleRoom(ids[i])); err != nil {
			t.Fatal(err)
		}
		current[ids[i]] = 1
	}
	// The seeding's notices: wait for them, then count from there.
	for _, n := range nodes {
		cachedWaitFor(t, "the seeding's notices", func() bool { return n.listener.Stats().Notices >= rooms })
	}
	base := make([]uint64, len(nodes))
	for i, n := range nodes {
		base[i] = n.listener.Stats().Notices
	}
	log := &editLog{byRoom: map[string][]versionAt{}}

	editor, err := pgx.ConnectConfig(ctx, nodes[0].pool.Config().ConnConfig.Copy())
	if err != nil {
		t.Fatal(err)
	}
	defer editor.Close(context.Background())

	var (
		done               atomic.Bool
		reads, withinBound atomic.Uint64
		staleInWindow      atomic.Uint64
		readErrs           atomic.Uint64
		staleMu            sync.Mutex
		stalePastBound     []string
		readers            sync.WaitGroup
		editsDone          atomic.Int64
	)
	for ni, n := range nodes {
		for r := range readersEach {
			rng := rand.New(rand.NewPCG(uint64(ni), uint64(r)))
			readers.Go(func() {
				for !done.Load() {
					// Keep the readers a few reads per edit ahead: the cores are shared
					// with the database and the editor.
					if int64(reads.Load()) > 4*editsDone.Load()+1000 {
						time.Sleep(100 * time.Microsecond)
						continue
					}
					id := ids[rng.IntN(len(ids))]
					applied := n.listener.Stats().Notices - base[ni]
					room, err := n.cache.GetRoom(ctx, id)
					if err != nil {
						readErrs.Add(1)
						continue
					}
					reads.Add(1)
					want := log.required(id, applied)
					switch {
					case room.Version < want:
						staleMu.Lock()
						stalePastBound = append(stalePastBound, fmt.Sprintf("node %d read %s at version %d after %d notices, want ≥ %d", ni, id, room.Version, applied, want))
						staleMu.Unlock()
					case want > 0:
						withinBound.Add(1)
						if room.Version < log.required(id, 1<<62) {
							staleInWindow.Add(1) // a newer edit's notice is in flight: allowed
						}
					}
				}
			})
		}
	}

	rng := rand.New(rand.NewPCG(20, 26))
	for k := range edits {
		batch := map[string]int64{}
		for range 1 + rng.IntN(2) {
			id := ids[rng.IntN(len(ids))]
			if _, ok := batch[id]; !ok {
				current[id]++
				batch[id] = current[id]
			}
		}
		log.add(batch)
		targets := make([]string, 0, len(batch))
		versions := make([]int64, 0, len(batch))
		for id, v := range batch {
			targets, versions = append(targets, id), append(versions, v)
		}
		if _, err := editor.Exec(ctx, `UPDATE rooms AS r SET description = 'edit ' || $3::text, version = v.version
FROM unnest($1::text[], $2::bigint[]) AS v(id, version) WHERE r.id = v.id`, targets, versions, strconv.Itoa(k)); err != nil {
			done.Store(true)
			readers.Wait()
			t.Fatalf("edit %d: %v", k, err)
		}
		editsDone.Add(1)
	}
	for i, n := range nodes {
		cachedWaitFor(t, fmt.Sprintf("node %d to apply every edit's notice", i), func() bool {
			return n.listener.Stats().Notices-base[i] >= edits
		})
	}
	done.Store(true)
	readers.Wait()

	// Every notice applied: every cache serves every room at its last version.
	for i, n := range nodes {
		for _, id := range ids {
			if v := readVersion(t, n.cache, id); v != current[id] {
				t.Errorf("node %d: %s at version %d after every notice, want %d", i, id, v, current[id])
			}
		}
		if s := n.listener.Stats(); s.Gaps != 0 || s.Malformed != 0 || s.Notices-base[i] != edits {
			t.Errorf("node %d listener %+v: want %d notices, no gap", i, s, edits)
		}
	}
	t.Logf("%d reads (%d errors), %d of rooms edited before the read; %d of those stale while a newer notice was in flight",
		reads.Load(), readErrs.Load(), withinBound.Load(), staleInWindow.Load())
	if len(stalePastBound) > 0 {
		t.Fatalf("%d reads stale past the bound, first ones: %v", len(stalePastBound), stalePastBound[:min(5, len(stalePastBound))])
	}
	if withinBound.Load() < edits {
		t.Fatalf("only %d reads checked against an applied edit: the test checked too little", withinBound.Load())
	}
}
