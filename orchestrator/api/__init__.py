"""The HTTP front door (``ceiling serve``): FastAPI routes over the same operations as the CLI
(orchestrator/operations), bearer-token auth, a request-size cap, Prometheus metrics, and the queue
runner that runs submitted sweeps on Ray. ``create_app(settings)`` builds the application."""

from orchestrator.api.app import create_app
from orchestrator.api.settings import ServiceSettings

__all__ = ["ServiceSettings", "create_app"]
