"""Background work on RQ: queues, job functions, the periodic schedule, monitoring."""
