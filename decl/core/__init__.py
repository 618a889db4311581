"""The pure core: addresses, resources, plans, traits, the graph and the planner."""
