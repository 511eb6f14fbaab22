package roomstore

import (
	"context"
	"errors"
	"fmt"
)

// PutRoom implements RoomStore: it writes through to the inner store, then invalidates
// the id and calls AfterWrite.
func (c *Cached) PutRoom(ctx context.Context, room Room) error {
	_, err := c.put(ctx, room, false)
	return err
}

// PutRoomVersion implements VersionedPutter. With an inner store that does not implement
// it, the write goes through inner.PutRoom and the version is read back with a second
// call to inner.GetRoom (which may then report a later write of the same room).
func (c *Cached) PutRoomVersion(ctx context.Context, room Room) (int64, error) {
	return c.put(ctx, room, true)
}

func (c *Cached) put(ctx context.Context, room Room, needVersion bool) (int64, error) {
	if c.life.closed() {
		return 0, ErrClosed
	}
	var (
		version int64
		err     error
	)
	if c.vput != nil {
		version, err = c.vput.PutRoomVersion(ctx, room)
	} else {
		err = c.inner.PutRoom(ctx, room)
	}
	// Invalidate even after an error: the write may have been applied (a lost reply).
	c.Invalidate(room.ID)
	if err != nil {
		if mayHaveApplied(err) && c.cfg.AfterWrite != nil {
			c.cfg.AfterWrite(RoomChange{ID: room.ID}) // version unknown
		}
		return 0, err
	}
	if c.vput == nil && needVersion {
		stored, gerr := c.inner.GetRoom(ctx, room.ID)
		if gerr == nil {
			version = stored.Version
		} else {
			// The write happened: report it (version unknown), then the failed read.
			err = fmt.Errorf("roomstore: room %q written, reading its version back: %w", room.ID, gerr)
		}
	}
	if c.cfg.AfterWrite != nil {
		c.cfg.AfterWrite(RoomChange{ID: room.ID, Version: version})
	}
	return version, err
}

// DeleteRoom implements RoomStore: it deletes through the inner store, then invalidates
// the id and calls AfterWrite.
func (c *Cached) DeleteRoom(ctx context.Context, id string) error {
	if c.life.closed() {
		return ErrClosed
	}
	err := c.inner.DeleteRoom(ctx, id)
	c.Invalidate(id)
	if err != nil {
		if mayHaveApplied(err) && c.cfg.AfterWrite != nil {
			c.cfg.AfterWrite(RoomChange{ID: id}) // outcome unknown: other nodes reload it
		}
		return err
	}
	if c.cfg.AfterWrite != nil {
		c.cfg.AfterWrite(RoomChange{ID: id, Deleted: true})
	}
	return nil
}

// mayHaveApplied reports whether a failed write may still have been applied by the inner
// store (a lost reply, a timeout after sending) rather than refused before any change.
func mayHaveApplied(err error) bool {
	for _, refused := range []error{ErrInvalidID, ErrInvalidRoom, ErrClosed, ErrReadOnly, ErrNotFound} {
		if errors.Is(err, refused) {
			return false
		}
	}
	return true
}
