"""Operations: the worker's own timers, its heartbeat, and what operators look at."""
