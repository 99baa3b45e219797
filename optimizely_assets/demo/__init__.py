"""Demo tooling, outside the runtime path: the schema-exact synthetic export."""
