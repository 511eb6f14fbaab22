package roomstore

// SetAfterCheckForTest makes c call f inside every fill, between the generation check of
// an id and the store of what was read for it. Set it before c is used.
func (c *Cached) SetAfterCheckForTest(f func(id string)) { c.afterCheck = f }
