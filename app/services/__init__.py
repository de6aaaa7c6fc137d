"""Domain logic: no Flask imports; Redis, the database and gateways are passed in."""
