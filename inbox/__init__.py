"""Agent workflow on top of the timeline: agents, teams, routing, metrics, leads."""
