"""The pages a person reads: the services directory's helpers, the map viewer and its static files."""
