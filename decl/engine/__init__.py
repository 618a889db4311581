"""The engine: desired/observed resources, the pure planner, the plan and its executor."""
