"""The ``embedding_evolution`` TensorBoard plugin: routes over :class:`EvolutionData`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from importlib import resources
from typing import Any

from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from ..errors import ConfigError, SnapshotNotFoundError
from ._data import BadRequest, EvolutionData

__all__ = ["PLUGIN_NAME", "EvolutionPlugin"]

logger = logging.getLogger(__name__)

#: The plugin's name: its routes live under ``/data/plugin/embedding_evolution/``.
PLUGIN_NAME = "embedding_evolution"

_Handler = Callable[[wrappers.Request], wrappers.Response]
_Route = Callable[..., Any]  # a WSGI application


class EvolutionPlugin(base_plugin.TBPlugin):  # type: ignore[misc]
    """Embedding Evolution: every step of a tag as one animated picture.

    TensorBoard finds it through the ``tensorboard_plugins`` entry point, so
    ``tensorboard --logdir runs`` shows the dashboard with no flag. Routes (all GET):

    * ``index.js`` — the bundled page (an ES module TensorBoard renders in an iframe).
    * ``runs`` — ``{run: {tag: {"steps": [...], "rows": N, "columns": [...]}}}``.
    * ``layout?run=&tag=&step=`` — little-endian float32, rows x 2: the step's 2-D aligned
      coordinates (its 2-D saved state; an aligned PCA made on demand if it has none).
    * ``metadata?run=&tag=&step=`` — ``{"header": [...], "columns": [[...], ...]}``.
    * ``neighbors?run=&tag=&step=&row=&k=`` — the row's nearest rows now and a step before.

    A bad ``run``/``tag``/``step`` is HTTP 400 with a message.

    Example:
        >>> from tensorboard.plugins import base_plugin
        >>> plugin = EvolutionPlugin(base_plugin.TBContext(logdir="/nonexistent"))
        >>> plugin.is_active(), plugin.frontend_metadata().es_module_path
        (False, '/index.js')
    """

    plugin_name = PLUGIN_NAME

    def __init__(self, context: Any) -> None:
        logdir = getattr(context, "logdir", None)
        self.data = EvolutionData(logdir) if logdir else None

    def get_plugin_apps(self) -> dict[str, _Route]:
        handlers: dict[str, _Handler] = {
            "/index.js": self._serve_index,
            "/runs": self._serve_runs,
            "/layout": self._serve_layout,
            "/metadata": self._serve_metadata,
            "/neighbors": self._serve_neighbors,
        }
        return {route: wrappers.Request.application(handler) for route, handler in handlers.items()}

    def is_active(self) -> bool:
        return bool(self.data is not None and self.data.run_dirs())

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        return base_plugin.FrontendMetadata(
            es_module_path="/index.js", tab_name="Embedding Evolution", disable_reload=True
        )

    # -- routes ------------------------------------------------------------------------------

    def _serve_index(self, request: wrappers.Request) -> wrappers.Response:
        script = resources.files(__package__).joinpath("static/index.js").read_bytes()
        return _respond(request, script, "application/javascript")

    def _serve_runs(self, request: wrappers.Request) -> wrappers.Response:
        return self._answer(request, lambda data: _json(data.runs()))

    def _serve_layout(self, request: wrappers.Request) -> wrappers.Response:
        def layout(data: EvolutionData) -> tuple[bytes, str]:
            run, tag, step = _where(request)
            coordinates = data.layout(run, tag, step)
            return coordinates.astype("<f4", copy=False).tobytes(), "application/octet-stream"

        return self._answer(request, layout)

    def _serve_metadata(self, request: wrappers.Request) -> wrappers.Response:
        return self._answer(request, lambda data: _json(data.metadata(*_where(request))))

    def _serve_neighbors(self, request: wrappers.Request) -> wrappers.Response:
        def neighbors(data: EvolutionData) -> tuple[bytes, str]:
            run, tag, step = _where(request)
            row = _integer(request, "row")
            k = _integer(request, "k", 10)
            return _json(data.neighbors(run, tag, step, row, k))

        return self._answer(request, neighbors)

    def _answer(
        self, request: wrappers.Request, make: Callable[[EvolutionData], tuple[bytes, str]]
    ) -> wrappers.Response:
        if self.data is None:
            return _respond(request, b"TensorBoard has no --logdir", "text/plain", 400)
        try:
            body, content_type = make(self.data)
        except BadRequest as error:
            return _respond(request, str(error).encode("utf-8"), "text/plain", 400)
        except (ConfigError, SnapshotNotFoundError) as error:
            logger.warning("embedding_evolution: %s", error)
            return _respond(request, str(error).encode("utf-8"), "text/plain", 400)
        return _respond(request, body, content_type)


def _respond(
    request: wrappers.Request, body: bytes, content_type: str, code: int = 200
) -> wrappers.Response:
    response: wrappers.Response = http_util.Respond(request, body, content_type, code=code)
    return response


def _json(value: Any) -> tuple[bytes, str]:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8"), "application/json"


def _where(request: wrappers.Request) -> tuple[str, str, int]:
    run = request.args.get("run")
    tag = request.args.get("tag")
    if run is None or tag is None:
        raise BadRequest("run and tag are required (and step).")
    return run, tag, _integer(request, "step")


def _integer(request: wrappers.Request, name: str, default: int | None = None) -> int:
    text = request.args.get(name)
    if text is None:
        if default is None:
            raise BadRequest(f"{name} is required.")
        return default
    try:
        return int(text)
    except ValueError:
        raise BadRequest(f"{name} must be an integer; got {text!r}.") from None
