"""The recognition server: protected channels in, enrolment and decisions out (FastAPI + uvicorn).

- :mod:`~partialface.server.deployment`: the model as deployed (id, client record, embedding);
- :mod:`~partialface.server.service`: enrol, verify, identify, compare, without HTTP;
- :mod:`~partialface.server.app`: the HTTP routes, :mod:`~partialface.server.auth` (API keys, scopes),
  :mod:`~partialface.server.body` (size limits, media type), :mod:`~partialface.server.problems`
  (RFC 9457 errors);
- :mod:`~partialface.server.thresholds` and :mod:`~partialface.server.calibration`: decision thresholds;
- :mod:`~partialface.server.cli`: ``partialface serve``, ``keys`` and ``calibrate``.

Needs the ``server`` extra (``pip install 'partialface[server]'``). Nothing is imported here so that the
command line can load the argument definitions without FastAPI.
"""
