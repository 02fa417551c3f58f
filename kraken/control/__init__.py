"""Server-side control: orchestration (every state change), scheduler, watchdog, planner."""
