"""The web playground: a FastAPI app (``app.create_app``) thin over the library, its job
runner (``jobs``), guards (``security``) and a static front end (``static/``).

Needs the ``web`` extra (fastapi, uvicorn, python-multipart); start it with
``transferlab serve``. See docs/WEB.md.
"""
