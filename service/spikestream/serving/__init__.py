"""The serving layer: what the service offers beside its msgpack frames."""
