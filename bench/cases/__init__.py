"""The bench's cases: venvs, containers, plan scaling, start-up."""
