"""HMS background worker: one package, one CLI (`python -m workers …`), one role per consumer group."""
