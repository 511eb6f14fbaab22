package roomstore_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

func TestRoomJSONRoundTrip(t *testing.T) {
	t.Parallel()
	want := roomstoretest.SampleRoom("json-1")
	want.Version = 7
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got roomstore.Room
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Equal(want) {
		t.Fatalf("round trip = %+v, want %+v", got, want)
	}
}

func TestExits(t *testing.T) {
	t.Parallel()
	src := map[string]string{"up": "u", "east": "e", "west": "w"}
	e := roomstore.NewExits(src)
	src["up"] = "changed"
	if to, ok := e.To("up"); !ok || to != "u" {
		t.Fatalf("To(up) = %q, %v", to, ok)
	}
	if _, ok := e.To("down"); ok {
		t.Fatal("To(down) found an exit")
	}
	var dirs []string
	for d := range e.All() {
		dirs = append(dirs, d)
	}
	if len(dirs) != 3 || dirs[0] != "east" || dirs[1] != "up" || dirs[2] != "west" {
		t.Fatalf("All() order = %v", dirs)
	}
	if e.Len() != 3 || !e.Equal(roomstore.NewExits(e.Map())) {
		t.Fatal("Map/Equal disagree")
	}
}

func TestAttributes(t *testing.T) {
	t.Parallel()
	a, err := roomstore.AttributesFromJSON([]byte(`{ "a" : 1 ,"b":[true] }`))
	if err != nil {
		t.Fatal(err)
	}
	if a.String() != `{"a":1,"b":[true]}` {
		t.Fatalf("compact = %s", a)
	}
	raw := a.JSON()
	raw[0] = 'X' // the caller's copy
	if a.String() != `{"a":1,"b":[true]}` {
		t.Fatal("JSON() exposed internal bytes")
	}
	if _, err := roomstore.AttributesFromJSON([]byte(`{broken`)); !errors.Is(err, roomstore.ErrInvalidRoom) {
		t.Fatalf("broken JSON error = %v", err)
	}
	if z, err := roomstore.AttributesFromJSON([]byte(`null`)); err != nil || !z.IsZero() {
		t.Fatalf("null = %v, %v", z, err)
	}
}
