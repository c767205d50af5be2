"""`make bench`: handler latency in process, and per-flavor package size and cold start."""
