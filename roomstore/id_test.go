package roomstore_test

import (
	"errors"
	"testing"

	"github.com/gamepersist/gamepersist/roomstore"
	"github.com/gamepersist/gamepersist/roomstore/roomstoretest"
)

func TestValidateID(t *testing.T) {
	t.Parallel()
	for name, id := range roomstoretest.InvalidIDs() {
		if err := roomstore.ValidateID(id); !errors.Is(err, roomstore.ErrInvalidID) {
			t.Errorf("%s: ValidateID(%q) = %v, want ErrInvalidID", name, id, err)
		}
	}
	for _, id := range roomstoretest.AwkwardIDs() {
		if err := roomstore.ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v, want nil", id, err)
		}
	}
}

func FuzzValidateID(f *testing.F) {
	for _, id := range roomstoretest.AwkwardIDs() {
		f.Add(id)
	}
	for _, id := range roomstoretest.InvalidIDs() {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := roomstore.ValidateID(id)
		if err != nil && !errors.Is(err, roomstore.ErrInvalidID) {
			t.Fatalf("ValidateID returned an unmatched error: %v", err)
		}
		if err == nil && (id == "" || len(id) > roomstore.MaxIDLength) {
			t.Fatalf("ValidateID accepted %q", id)
		}
	})
}
