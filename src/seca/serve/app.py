"""The HTTP API of ``seca serve`` (FastAPI) and its web page; docs/serve.md documents every endpoint.

    GET  /health  /classes  /history        the model as it is served
    POST /predict                            images -> labels and scores (``seca predict``)
    POST /embed                              images -> their features, the model's or the frozen CLIP's (``seca embed``)
    POST /learn                              a new task as uploaded images -> a job id, at once
    GET  /jobs  /jobs/{id}   DELETE /jobs/{id}   a job's state and progress; cancel it
    POST /evaluate                           labelled images -> the report of ``seca evaluate --confusion``
    GET  /                                   the web page (plain HTML and JavaScript, nothing from the internet)

Every refusal is a 4xx answer ``{"error": "one sentence"}`` that changed nothing; an unexpected failure is a
500 with the same shape and no traceback (the server's log has it).
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, File, Form, Header, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from ..api import UNDECIDED_MARGIN
from ..config import EVAL_ORDERS, HYBRID_MAX
from ..data.images import class_key
from ..errors import SecaError
from ..eval.history import history_matrix
from ..eval.metrics import chance
from ..version import __version__
from . import check_token
from .jobs import Conflict, Job, ModelServer, NotFound
from .uploads import LABELS_BYTES, Limits, Upload, UploadError, Workspace, scrub, too_many_files

log = logging.getLogger("seca.serve")

STATIC = Path(str(resources.files("seca") / "serve" / "static"))


class TooLarge(SecaError):
    """A request body over the limit."""


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is refused with 413, from its Content-Length
    before anything is read, or as soon as its streamed bytes pass the limit (a chunked body has no length): the
    app stops reading there, and whatever it would answer to the body cut short, the client gets the 413."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await _error(413, self._message())(scope, receive, send)
        seen, exceeded = 0, False

        async def counted() -> dict:
            nonlocal seen, exceeded
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                exceeded = True
                raise TooLarge(self._message())
            return message

        async def unless_exceeded(message: dict) -> None:
            if not exceeded:  # the app's answer to a body cut short (the form parser's 400) gives way to the 413
                await send(message)

        try:
            await self.app(scope, counted, unless_exceeded)
        except TooLarge:
            pass
        if exceeded:
            await _error(413, self._message())(scope, receive, send)

    def _message(self) -> str:
        return (
            f"the request is larger than {self.limit / 2**20:.0f} MiB; send fewer or smaller images at a time "
            "(the limit is --max-request-mb)"
        )


def _error(status: int, message: str) -> JSONResponse:
    """The one shape of every refusal: ``{"error": "one sentence"}``, with no path of the server's in it."""
    return JSONResponse({"error": " ".join(scrub(message).split())}, status_code=status)  # one line, always


def _limited_route(limits: Limits) -> type[APIRoute]:
    """Routes whose form parser takes as many files as ``--max-files`` allows (its own default is 1,000), and says
    so in the project's sentence when a request holds more."""

    class LimitedRequest(Request):
        async def form(self, **_: object):
            try:
                return await super().form(
                    max_files=limits.files, max_fields=2 * limits.files + 16, max_part_size=LABELS_BYTES
                )
            except HTTPException as e:  # the parser's own refusals: too many files or fields, a field too large
                if "Too many" in str(e.detail):
                    raise UploadError(too_many_files(limits)) from None
                raise

    class LimitedRoute(APIRoute):
        def get_route_handler(self):
            handler = super().get_route_handler()

            async def limited(request: Request):
                return await handler(LimitedRequest(request.scope, request.receive))

            return limited

    return LimitedRoute


# The refusals that are the project's own errors, and the status each answers with (the most specific first).
REFUSALS: tuple[tuple[type[Exception], int], ...] = (
    (Conflict, 409),
    (NotFound, 404),
    (TooLarge, 413),
    (SecaError, 400),
)


def create_app(server: ModelServer, token: str | None = None, limits: Limits = Limits()) -> FastAPI:
    """The ASGI app serving ``server``'s model. With ``token``, every request that changes the model needs
    ``Authorization: Bearer <token>``."""
    app = FastAPI(
        title="seca serve",
        version=__version__,
        description="A continual-learning CLIP classifier that keeps learning while it serves: predict, "
        "learn new classes as jobs, evaluate. docs/serve.md has the details.",
    )
    app.state.server, app.state.limits = server, limits
    app.router.route_class = _limited_route(limits)
    _answer_errors(app)
    _model_routes(app, server, token)
    _image_routes(app, server, limits)
    _learn_routes(app, server, limits, _authorisation(token))

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, limit=limits.request_bytes)
    return app


def _answer_errors(app: FastAPI) -> None:
    """Every error as one sentence of JSON: the project's refusals (:data:`REFUSALS`), HTTP errors, invalid fields,
    and anything unexpected as a 500 whose details go to the log only."""
    for error, status in REFUSALS:
        app.add_exception_handler(error, _refusal(status))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        cause = e.__cause__  # FastAPI wraps what reading the body raised: our own refusal answers as itself
        if isinstance(cause, SecaError):
            return _error(next(status for error, status in REFUSALS if isinstance(cause, error)), str(cause))
        return _error(e.status_code, str(e.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "the request"
        return _error(422, f"field '{where}': {first.get('msg', 'invalid value').rstrip('.').lower()}")

    @app.exception_handler(Exception)
    async def failed(request: Request, e: Exception):
        log.exception("request %s %s failed", request.method, request.url.path)
        return _error(500, f"internal error ({type(e).__name__}); the server's log has the details")


def _refusal(status: int):
    async def answer(request: Request, e: Exception) -> JSONResponse:
        return _error(status, str(e))

    return answer


def _authorisation(token: str | None):
    """The dependency of the requests that change the model: with ``token``, they need ``Authorization: Bearer``."""

    expected = None if token is None else check_token(token).encode("ascii")

    def authorised(authorization: Annotated[str | None, Header()] = None) -> None:
        if expected is None:
            return
        # the header's bytes as they came (the server reads headers as Latin-1), compared in constant time
        given = (authorization or "").encode("latin-1", errors="replace")
        if not given.startswith(b"Bearer ") or not hmac.compare_digest(given[len(b"Bearer ") :].strip(), expected):
            raise HTTPException(
                401, "this request changes the model: send the server's token as 'Authorization: Bearer TOKEN'"
            )

    return authorised


def _model_routes(app: FastAPI, server: ModelServer, token: str | None) -> None:
    """The model as served: /health, /classes, /history."""

    @app.get("/health", summary="Whether the server is up, and what it serves")
    def health():
        model, running = server.model, server.running()
        return {
            "status": "ok",
            "version": __version__,
            "method": model.method,
            "backbone": model.config.backbone.model,
            "classes": len(model.classes),
            "tasks": len(model.learner.tasks),
            "epochs": model.config.train.epochs,
            "model_version": model.version,
            "chance": chance(len(model.classes)),
            "kept_tests": {"images": len(model.kept), "classes": len(model.kept.classes)},
            "exemplars": model.exemplars,  # training images the model keeps references to (None: none)
            "queued": len(server.queued()),
            "running": running.id if running else None,
            "token_required": token is not None,
        }

    @app.get("/classes", summary="The classes the model knows, by task")
    def classes():
        model = server.model
        return {"classes": model.classes, "tasks": [list(model.classes[t.start : t.stop]) for t in model.learner.tasks]}

    @app.get("/history", summary="The model's learn history, one entry per task, and its accuracy matrix")
    def history():
        model = server.model
        return {"history": model.history, "matrix": history_matrix(model.history, len(model.learner.tasks))}


def _image_routes(app: FastAPI, server: ModelServer, limits: Limits) -> None:
    """Images in, answers out: /predict, /embed and /evaluate."""

    @app.post("/predict", summary="The most likely classes of each uploaded image")
    def predict(
        images: Annotated[list[UploadFile], File(description="image files")],
        top_k: Annotated[int, Form(ge=1, description="classes to list per image")] = 1,
    ):
        model = server.model  # this request's model, whatever a learn job swaps in meanwhile
        with Workspace(limits) as space:
            files = _saved(space, "predict", _uploads(images), model)
            predictions = model.predict([str(p) for p in files], top_k=top_k)
        return {
            "model_version": model.version,
            "undecided_margin": UNDECIDED_MARGIN,
            "predictions": [
                {
                    "file": upload.filename,
                    "label": p.label,
                    "score": p.score,
                    "margin": p.margin,
                    "undecided": p.undecided,
                    "top_k": [{"label": n, "score": s} for n, s in p.top_k],
                }
                for upload, p in zip(images, predictions)
            ],
        }

    @app.post("/embed", summary="The image features of each uploaded image: the model's own, or its frozen CLIP's")
    def embed(
        images: Annotated[list[UploadFile], File(description="image files")],
        frozen: Annotated[bool, Form(description="the frozen CLIP's features instead of the model's own")] = False,
    ):
        model = server.model
        with Workspace(limits) as space:
            files = _saved(space, "embed", _uploads(images), model)
            features = model.embed([str(p) for p in files], frozen=frozen)
        return {
            "model_version": model.version,
            "dim": features.shape[1],
            "features": "frozen" if frozen else "learner",
            "embeddings": [
                {"file": upload.filename, "embedding": row} for upload, row in zip(images, features.tolist())
            ],
        }

    @app.post("/evaluate", summary="Accuracy on labelled images, per class and per task, with the confusion")
    def evaluate(
        images: Annotated[list[UploadFile] | None, File(description="image files")] = None,
        labels: Annotated[list[str] | None, Form(description="the class of each image, in order")] = None,
        archive: Annotated[UploadFile | None, File(alias="zip", description="a zip of <class>/<image> entries")] = None,
        batch_size: Annotated[int, Form(ge=1)] = 64,
        order: Annotated[str | None, Form(description=" or ".join(EVAL_ORDERS))] = None,
        hybrid_max: Annotated[str | None, Form(description=" or ".join(HYBRID_MAX))] = None,
        top: Annotated[int, Form(ge=1, description="most confused pairs to list")] = 10,
    ):
        from ..eval.confusion import most_confused

        model = server.model
        with Workspace(limits) as space:
            given = _labelled(space, "evaluate", LabelledUpload(images, labels, archive), model)
            report = model.evaluate(given, batch_size=batch_size, confusion=True, order=order, hybrid_max=hybrid_max)
        c = report["confusion"]
        c["most_confused"] = most_confused(c["counts"], c["rows"], c["columns"], top)
        report["data"] = "upload"
        return report


def _learn_routes(app: FastAPI, server: ModelServer, limits: Limits, authorised) -> None:
    """New tasks as jobs: /learn, /jobs, /jobs/{id}."""

    @app.post(
        "/learn",
        status_code=202,
        dependencies=[Depends(authorised)],
        summary="Learn a new task from uploaded images; answers a job id at once",
    )
    def learn(
        images: Annotated[list[UploadFile] | None, File(description="training images")] = None,
        labels: Annotated[list[str] | None, Form(description="the class of each image, in order")] = None,
        archive: Annotated[UploadFile | None, File(alias="zip", description="a zip of <class>/<image> entries")] = None,
        eval_images: Annotated[list[UploadFile] | None, File(description="optional test images")] = None,
        eval_labels: Annotated[list[str] | None, Form(description="the class of each test image")] = None,
        eval_zip: Annotated[UploadFile | None, File(description="a zip of <class>/<image> test images")] = None,
        epochs: Annotated[int | None, Form(ge=1, description="default: the model's train.epochs")] = None,
        keep_eval: Annotated[bool, Form(description="keep the test images with the model (standing test set)")] = True,
    ):
        model = server.model
        space = Workspace(limits)
        try:
            train = _labelled(space, "train", LabelledUpload(images, labels, archive), model)
            evaluation = None
            if eval_images or eval_zip is not None:
                test = LabelledUpload(eval_images, eval_labels, eval_zip, ("eval_images", "eval_labels", "eval_zip"))
                evaluation = _labelled(space, "eval", test, model)
                if not {class_key(n) for n in evaluation} & {class_key(n) for n in model.classes + list(train)}:
                    raise UploadError("the test images hold none of the classes the model will know after this task")
            config = model.config.train
            images_count = sum(len(files) for files in train.values())
            job = Job(
                list(train),
                images_count,
                epochs or config.epochs,
                config.batch_size,
                space,
                train,
                evaluation,
                keep_eval=keep_eval,
                loss_words=model.loss_words,
            )
            server.submit(job)
        except BaseException:
            space.close()
            raise
        return {"job": job.id, "state": job.state, "classes": job.classes, "url": f"/jobs/{job.id}"}

    @app.get("/jobs", summary="Every job the server remembers, oldest first")
    def jobs():
        return {"jobs": [job.view() for job in server.jobs.values()]}

    @app.get("/jobs/{job_id}", summary="A job's state, progress and, when done, its history entry")
    def job(job_id: str):
        return server.job(job_id).view()

    @app.delete(
        "/jobs/{job_id}",
        dependencies=[Depends(authorised)],
        summary="Cancel a job: it changes nothing (queued: it never runs; running: it stops)",
    )
    def cancel(job_id: str):
        return server.cancel(job_id).view()


def _uploads(files: list[UploadFile] | None) -> list[Upload]:
    return [Upload(f.filename or f"image-{k}", f.file) for k, f in enumerate(files or [])]


def _saved(space: Workspace, folder: str, uploads: list[Upload], model) -> list[Path]:
    """Images to classify, written to ``space`` in their order and checked as images."""
    if not uploads:
        raise UploadError("the request holds no images; send them as 'images' files")
    root = space.add(folder, uploads, None, "images")
    files = sorted(root.iterdir())  # numbered in the order sent
    space.check_images(files, model.config.data.max_pixels)
    return files


@dataclass(frozen=True)
class LabelledUpload:
    """Images with a label each and/or a zip of ``<class>/<image>`` entries, and the form fields they came in."""

    images: list[UploadFile] | None
    labels: list[str] | None
    archive: UploadFile | None
    fields: tuple[str, str, str] = ("images", "labels", "zip")


def _labelled(space: Workspace, part: str, upload: LabelledUpload, model) -> dict[str, list[Path]]:
    """The images of ``upload`` by class, written into ``space`` (``part``) and checked: labels, classes, images."""
    images_field, labels_field, zip_field = upload.fields
    uploads = _uploads(upload.images)
    if not uploads and upload.archive is None:
        raise UploadError(
            f"the request holds no images; send '{images_field}' files with a '{labels_field}' each, or a "
            f"'{zip_field}' of <class>/<image> entries"
        )
    if uploads:
        if not upload.labels:
            raise UploadError(f"'{images_field}' needs a '{labels_field}' field per image, naming its class")
        space.add(part, uploads, upload.labels, images_field)
    if upload.archive is not None:
        space.add_zip(part, Upload(upload.archive.filename or zip_field, upload.archive.file), zip_field)
    given = space.labelled(part)
    space.check_images([f for files in given.values() for f in files], model.config.data.max_pixels)
    return given
