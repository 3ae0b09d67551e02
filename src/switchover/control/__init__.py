"""Services that act on rollouts: the controller loop, plans, notifications."""
