"""Provider plugins, one per backend, found through the `decl.providers` entry points."""
