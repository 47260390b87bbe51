"""The HTTP API and web page of facenet-serve: `create_app(service, gallery, settings)`, a FastAPI app.

Photos come as multipart uploads (field `image`; /verify: `image1` and `image2`) or as base64 in
a JSON body with the same field names. Every answer is JSON; every refusal is a 4xx with one line
`{"error": "..."}`. Model work goes through two DynamicBatchers in a pipeline (started and stopped
with the app's lifespan): photos of concurrent requests share one detector call, and the faces of
a detected batch share one model call, which runs while the detector takes the next batch.

Access: with an API key, /enroll and DELETE /people/... need it in X-API-Key (401 without, 403
with a wrong one), and with protect_reads every endpoint but the page, its files and /health does.
Without a key the changing endpoints are refused unless open_enrollment is set.
"""
import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import io
import json
import logging
import time
from dataclasses import dataclass
from importlib import resources

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from facenet_tf2 import __version__
from facenet_tf2.errors import ApiError, ImageReadError, UserError
from facenet_tf2.images import decode_image
from facenet_tf2.serving.batcher import BatcherStopped, DynamicBatcher
from facenet_tf2.serving.metrics import Metrics

ACCESS_LOG = logging.getLogger('facenet_tf2.serving.access')
LOG = logging.getLogger('facenet_tf2.serving')
API_KEY_HEADER = 'X-API-Key'


@dataclass
class Settings:
    api_key: str = None
    protect_reads: bool = False
    open_enrollment: bool = False
    max_upload_bytes: int = 10 << 20  # a whole request body
    max_pixels: int = 25_000_000  # decoded pixels per photo
    max_images: int = 20  # photos per /enroll request
    max_batch: int = 32
    batch_window: float = 0.005
    top_k: int = 5

    def __post_init__(self):
        if self.protect_reads and not self.api_key:
            raise UserError('--protect_reads needs an API key: give --api_key KEY or set FACENET_SERVE_API_KEY')


def error_response(status, message):
    return JSONResponse({'error': ' '.join(str(message).split())}, status_code=status)


def _route_kind(request):
    """'write' for the gallery-changing endpoints, 'open' for the page, its files and /health, else 'read'."""
    path, method = request.url.path, request.method
    if (method == 'POST' and path == '/enroll') or (method == 'DELETE' and path.startswith('/people/')):
        return 'write'
    if path in ('/', '/health', '/favicon.ico') or path.startswith('/static/'):
        return 'open'
    return 'read'


def _access_problem(request, settings):
    """(status, message) refusing the request, or None to let it through."""
    kind = _route_kind(request)
    if kind == 'open' or (kind == 'read' and not settings.protect_reads):
        return None
    if not settings.api_key:
        if kind == 'write' and not settings.open_enrollment:
            return 403, ('changing the gallery is disabled: start the server with --api_key KEY (then send it in '
                         'X-API-Key) or with --open_enrollment')
        return None
    given = request.headers.get(API_KEY_HEADER)
    if not given:
        return 401, f'this endpoint needs an API key: send it in the {API_KEY_HEADER} header'
    if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
        return 403, f'wrong API key in {API_KEY_HEADER}'
    return None


def check_name(name):
    """A person's name as sent: 1 to 200 printable characters, without slashes (it goes in URLs)."""
    name = (name or '').strip()
    if not name:
        raise UserError("empty name; send the person's name in the field 'name'")
    if len(name) > 200 or '/' in name or not name.isprintable():
        raise UserError('invalid name: at most 200 printable characters, no "/"')
    return name


# --- request bodies ---------------------------------------------------------------------------------------

async def read_body(request, limit):
    declared = request.headers.get('content-length')
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ApiError(413, f'request of {int(declared):,} bytes, at most {limit:,} are accepted')
        except ValueError:
            raise ApiError(400, 'invalid Content-Length header') from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # chunked uploads declare no length: count what arrives
            raise ApiError(413, f'request larger than {limit:,} bytes; send smaller images')
        chunks.append(chunk)
    return b''.join(chunks)


async def parse_fields(request, settings, files, texts=(), multiple=()):
    """{field: [(name, bytes)]} for the image fields `files` and {field: str} for `texts`, from a
    multipart form or a JSON body (images base64-encoded; a field of `multiple` may be a list).
    Unknown, missing and repeated fields are 400s."""
    body = await read_body(request, settings.max_upload_bytes)
    content_type = request.headers.get('content-type', '').split(';')[0].strip().lower()
    images, values = {}, {}
    if content_type in ('multipart/form-data', 'application/x-www-form-urlencoded'):
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return {'type': 'http.disconnect'}
            sent = True
            return {'type': 'http.request', 'body': body, 'more_body': False}
        try:
            form = await Request(request.scope, replay).form(max_files=settings.max_images + 2, max_fields=20)
        except Exception as e:  # starlette's MultiPartException and the parser's own errors
            raise ApiError(400, f'malformed multipart form ({e})') from None
        for field, value in form.multi_items():
            if field in files:
                if isinstance(value, str):
                    raise ApiError(400, f"field '{field}' must be a file upload")
                images.setdefault(field, []).append((value.filename or field, await value.read()))
            elif field in texts:
                if field in values:
                    raise ApiError(400, f"field '{field}' given twice")
                values[field] = value if isinstance(value, str) else (await value.read()).decode('utf-8', 'replace')
            else:
                raise ApiError(400, f"unexpected field '{field}'; expected {_field_list(files, texts)}")
    elif content_type == 'application/json':
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f'invalid JSON body ({e})') from None
        if not isinstance(document, dict):
            raise ApiError(400, f'the JSON body must be an object with {_field_list(files, texts)}')
        for field, value in document.items():
            if field in files:
                encoded = value if isinstance(value, list) and field in multiple else [value]
                images[field] = [(f'{field}[{i}]' if len(encoded) > 1 else field, _b64(field, item))
                                 for i, item in enumerate(encoded)]
            elif field in texts:
                if not isinstance(value, str):
                    raise ApiError(400, f"field '{field}' must be a string")
                values[field] = value
            else:
                raise ApiError(400, f"unexpected field '{field}'; expected {_field_list(files, texts)}")
    else:
        raise ApiError(415, f"send multipart/form-data or application/json, not '{content_type or 'no content type'}'")
    for field in files:
        if field not in images:
            raise ApiError(400, f"missing field '{field}' (an image file)")
        if len(images[field]) > 1 and field not in multiple:
            raise ApiError(400, f"field '{field}' given {len(images[field])} times; send one image")
        if len(images[field]) > settings.max_images:
            raise ApiError(400, f'{len(images[field])} images, at most {settings.max_images} per request')
    for field in texts:
        if field not in values:
            raise ApiError(400, f"missing field '{field}'")
    return images, values


def _field_list(files, texts):
    return ', '.join(f"'{field}'" for field in (*files, *texts))


def _b64(field, value):
    if not isinstance(value, str):
        raise ApiError(400, f"field '{field}' must be a base64 string")
    if value.startswith('data:') and ',' in value:  # a data URL, as browsers make them
        value = value.split(',', 1)[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"field '{field}' is not valid base64") from None


# --- answers ----------------------------------------------------------------------------------------------

def face_record(face, embedding=None, crop=False):
    record = {'box': [round(float(v), 2) for v in face.box], 'crop_box': [int(v) for v in face.crop_box],
              'probability': round(face.probability, 6),
              'landmarks': [[round(float(x), 2), round(float(y), 2)] for x, y in face.landmarks]}
    if embedding is not None:
        record['embedding'] = [float(v) for v in embedding]
    if crop:
        buffer = io.BytesIO()
        Image.fromarray(face.crop).save(buffer, format='PNG')
        record['crop'] = 'data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode()
    return record


def _wants_crops(request):
    return request.query_params.get('crops', '').lower() in ('1', 'true', 'yes')


# --- the app ----------------------------------------------------------------------------------------------

def create_app(service, gallery, settings=None):
    """The FastAPI app serving `service` (a FaceService) and `gallery` (a GalleryStore)."""
    settings = settings or Settings()
    metrics = Metrics()
    state = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        # The detector thread hands each batch's faces straight to the embedder thread, so one model
        # call takes a whole detected batch (its items arrive within microseconds: a 1 ms window).
        state['embedder'] = DynamicBatcher(service.embed, settings.max_batch, 0.001, name='facenet-embedder')
        state['detector'] = DynamicBatcher(
            lambda images: [state['embedder'].submit(faces) for faces in service.detect(images)],
            settings.max_batch, settings.batch_window, on_batch=metrics.batch, name='facenet-detector')
        LOG.info('serving %s, gallery %s (%d people)', service.model_name, gallery.path, gallery.size()[0])
        try:
            yield
        finally:
            # uvicorn has let the in-flight requests finish; what they queued is finished too.
            await anyio.to_thread.run_sync(state['detector'].stop)
            await anyio.to_thread.run_sync(state['embedder'].stop)
            gallery.flush()
            LOG.info('stopped; gallery %s flushed', gallery.path)

    app = FastAPI(title='facenet-tf2 face recognition', version=__version__, lifespan=lifespan,
                  description='Detect, embed, verify and identify faces (MTCNN + FaceNet).')
    app.state.settings, app.state.metrics, app.state.service, app.state.gallery = settings, metrics, service, gallery

    @app.middleware('http')
    async def access(request, call_next):
        started = time.perf_counter()
        problem = _access_problem(request, settings)
        if problem is not None:
            response = error_response(*problem)
        else:
            try:
                response = await call_next(request)
            except Exception:  # a bug: logged with its traceback, answered as a 500 that names no internals
                LOG.exception('error serving %s %s', request.method, request.url.path)
                response = error_response(500, 'internal error; see the server log')
        seconds = time.perf_counter() - started
        route = request.scope.get('route')
        endpoint = getattr(route, 'path', None) or ('static' if request.url.path.startswith('/static/') else 'other')
        metrics.request(endpoint, response.status_code, seconds)
        ACCESS_LOG.info(json.dumps({'time': round(time.time(), 3), 'client': request.client.host if request.client
                                    else None, 'method': request.method, 'path': request.url.path,
                                    'status': response.status_code, 'ms': round(1000 * seconds, 1)}))
        return response

    @app.exception_handler(ApiError)
    async def api_error(_request, error):
        return error_response(error.status, error.message)

    @app.exception_handler(ImageReadError)
    async def image_error(_request, error):
        return error_response(400, str(error))

    @app.exception_handler(UserError)
    async def user_error(_request, error):
        return error_response(400, str(error))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request, error):
        return error_response(error.status_code, error.detail)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request, error):
        first = error.errors()[0] if error.errors() else {}
        return error_response(400, f"invalid request: {first.get('msg', 'bad input')} at "
                                   f"{'.'.join(str(part) for part in first.get('loc', ()))}")

    async def analyse(images):
        """Faces with embeddings for each (name, bytes): decoded off the event loop, then batched."""
        decoded = []
        for name, data in images:
            decoded.append(await anyio.to_thread.run_sync(decode_image, data, name, settings.max_pixels))
        try:
            detected = [state['detector'].submit(image) for image in decoded]
            embedded = [await asyncio.wrap_future(future) for future in detected]  # the embedder's futures
        except BatcherStopped:
            raise ApiError(503, 'the server is shutting down; try again on another replica') from None
        results = [await asyncio.wrap_future(future) for future in embedded]
        metrics.faces_found(sum(len(faces) for faces in results))
        return decoded, results

    def openapi_body(files, texts=(), multiple=()):
        properties = {field: ({'type': 'array', 'items': {'type': 'string', 'format': 'binary'}} if field in multiple
                              else {'type': 'string', 'format': 'binary'}) for field in files}
        properties.update({field: {'type': 'string'} for field in texts})
        as_json = {field: {'type': 'string', 'description': 'base64 image'} for field in files}
        as_json.update({field: {'type': 'string'} for field in texts})
        required = [*files, *texts]
        return {'requestBody': {'required': True, 'content': {
            'multipart/form-data': {'schema': {'type': 'object', 'properties': properties, 'required': required}},
            'application/json': {'schema': {'type': 'object', 'properties': as_json, 'required': required}}}}}

    @app.post('/embed', openapi_extra=openapi_body(['image']), summary='Every face in a photo, with its embedding')
    async def embed(request: Request):
        images, _ = await parse_fields(request, settings, ['image'])
        decoded, (faces,) = await analyse(images['image'])
        return {'image': {'width': decoded[0].shape[1], 'height': decoded[0].shape[0]},
                'faces': [face_record(face, embedding, _wants_crops(request)) for face, embedding in faces]}

    @app.post('/verify', openapi_extra=openapi_body(['image1', 'image2']),
              summary="Are two photos of the same person? (the first face of each)")
    async def verify(request: Request):
        images, _ = await parse_fields(request, settings, ['image1', 'image2'])
        _, results = await analyse(images['image1'] + images['image2'])
        for field, faces in zip(('image1', 'image2'), results):
            if not faces:
                raise ApiError(422, f'no face found in {field} ({images[field][0][0]}); send a photo showing a face')
        (face1, embedding1), (face2, embedding2) = results[0][0], results[1][0]
        distance = float(np.linalg.norm(embedding1 - embedding2))
        crops = _wants_crops(request)
        return {'distance': distance, 'threshold': service.threshold, 'same_person': distance <= service.threshold,
                'faces': [face_record(face1, crop=crops), face_record(face2, crop=crops)]}

    @app.post('/identify', openapi_extra=openapi_body(['image']),
              summary='The nearest gallery people of every face in a photo')
    async def identify(request: Request):
        try:
            top_k = int(request.query_params.get('top_k', settings.top_k))
        except ValueError:
            raise ApiError(400, 'top_k must be an integer') from None
        if not 1 <= top_k <= 100:
            raise ApiError(400, 'top_k must be between 1 and 100')
        images, _ = await parse_fields(request, settings, ['image'])
        _, (faces,) = await analyse(images['image'])
        results = gallery.search(np.array([embedding for _, embedding in faces]), top_k, service.threshold) \
            if faces else []
        crops = _wants_crops(request)
        answer = []
        for (face, _), result in zip(faces, results):
            record = face_record(face, crop=crops)
            record['matches'] = [{'name': match.name, 'distance': match.distance}
                                 for match in (result.matches if result else ())]
            record['identity'] = result.identity if result else None
            answer.append(record)
        return {'threshold': service.threshold, 'faces': answer}

    @app.post('/enroll', openapi_extra=openapi_body(['image'], ['name'], multiple=['image']),
              summary="Add a person's photos to the gallery (the first face of each)")
    async def enroll(request: Request):
        images, values = await parse_fields(request, settings, ['image'], ['name'], multiple=['image'])
        name = check_name(values['name'])
        _, results = await analyse(images['image'])
        for (filename, _), faces in zip(images['image'], results):
            if not faces:  # nothing is enrolled: the caller fixes the photo and sends the request again
                raise ApiError(422, f'no face found in {filename}; send photos showing a face')
        # The key names the image by content, so sending the same photo twice enrols it once.
        keys = [f'upload:{name}/{hashlib.sha256(data).hexdigest()[:32]}' for _, data in images['image']]
        try:
            added = await anyio.to_thread.run_sync(gallery.add, name, keys,
                                                   np.array([faces[0][1] for faces in results]))
        except PermissionError as e:
            raise ApiError(403, str(e)) from None
        people, rows = gallery.size()
        return {'name': name, 'added': added, 'images': len(keys), 'gallery_people': people, 'gallery_images': rows}

    @app.delete('/people/{name}', summary='Remove a person and all their images from the gallery')
    async def delete_person(name: str):
        try:
            removed = await anyio.to_thread.run_sync(gallery.remove, name)
        except KeyError:
            raise ApiError(404, f'{name!r} is not in the gallery') from None
        except PermissionError as e:
            raise ApiError(403, str(e)) from None
        return {'name': name, 'removed': removed}

    @app.get('/people', summary='The enrolled people and their number of images')
    async def people():
        return {'people': gallery.people()}

    @app.get('/health', summary='Liveness: 200 while the server takes requests')
    async def health():
        return {'status': 'ok'}

    @app.get('/info', summary='Model, embedding size, gallery size, threshold, version')
    async def info():
        people_count, rows = gallery.size()
        return {'model': service.model_name, 'embedding_size': service.model.embedding_size,
                'image_size': service.image_size, 'standardization': service.standardization,
                'threshold': service.threshold, 'gallery': {'path': gallery.path, 'people': people_count,
                                                             'images': rows, 'read_only': gallery.read_only},
                'max_batch': settings.max_batch, 'version': __version__,
                'enrollment': 'api key' if settings.api_key else 'open' if settings.open_enrollment else 'closed'}

    @app.get('/metrics', response_class=PlainTextResponse, summary='Prometheus metrics')
    async def prometheus():
        people_count, rows = gallery.size()
        return metrics.text({'facenet_gallery_people': ('People in the gallery.', people_count),
                             'facenet_gallery_images': ('Images in the gallery.', rows)})

    static = resources.files('facenet_tf2.serving') / 'static'

    @app.get('/', response_class=HTMLResponse, include_in_schema=False)
    async def page():
        return (static / 'index.html').read_text(encoding='utf-8')

    app.mount('/static', StaticFiles(directory=str(static)), name='static')
    return app
