"""The planner: desired graph + observed AWS → Plan (pure). See planner.plan and changes.Plan."""
