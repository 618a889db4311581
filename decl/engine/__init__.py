"""Orchestration: desired state, discovery, the executor, the lock and journal, the apply run."""
