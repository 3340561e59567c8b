"""The audit log: who launched, cancelled, edited, archived, deleted, restored and shared what, when, from where."""
