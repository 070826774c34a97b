"""Target descriptions (data, one YAML file per target); read by xnorgen.targets."""
