"""Provider catalogue (data) and the small, named quirks that go with it."""
