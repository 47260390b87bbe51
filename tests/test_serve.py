"""facenet-serve: every endpoint on real faces, access rules, bad input, batching, concurrent gallery
changes, graceful shutdown, and the web page in headless Chromium.

The model (the original's frozen 20170512-110547 graph from the shared folder) and MTCNN load once
for the module; each test makes its own app (cheap) over them with its own gallery file.
"""
import base64
import concurrent.futures
import io
import shutil
import struct
import threading
import time
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

pytest.importorskip('fastapi', reason="facenet-serve needs the serve extra: pip install -e '.[serve]'")
httpx = pytest.importorskip('httpx', reason="facenet-serve's tests need httpx: pip install -e '.[serve]'")
with warnings.catch_warnings():  # starlette's notice that its TestClient will move to httpx2
    warnings.simplefilter('ignore')
    from fastapi.testclient import TestClient  # noqa: E402  # pylint: disable=wrong-import-position

from conftest import REPO_ROOT  # noqa: E402
from facenet_tf2.commands import serve as serve_command  # noqa: E402
from facenet_tf2.errors import UserError  # noqa: E402
from facenet_tf2.faces import embed_crops, find_faces  # noqa: E402
from facenet_tf2.gallery import Gallery  # noqa: E402
from facenet_tf2.images import decode_image, read_image  # noqa: E402
from facenet_tf2.serving import FaceService, GalleryStore, Settings, create_app  # noqa: E402
from facenet_tf2.serving.live import LiveServer  # noqa: E402

pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')
SAMPLES = REPO_ROOT / 'data' / 'images'
KEY = 'test-key-0123456789'


@pytest.fixture(scope='module')
def service(frozen_model_pb):
    return FaceService.load(str(frozen_model_pb))


@pytest.fixture
def make_client(service, tmp_path):
    """make_client(**settings) -> a TestClient over a fresh app and gallery (its lifespan runs)."""
    clients = []

    def make(gallery_file='gallery.npz', **settings):
        store = GalleryStore(tmp_path / gallery_file, service.identity())
        client = TestClient(create_app(service, store, Settings(**settings)), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        client.store = store
        return client
    yield make
    for client in clients:
        client.__exit__(None, None, None)


def sample(name):
    return (SAMPLES / name).read_bytes()


def lfw(lfw_dir, name, number):
    """The number-th photo (from 1) of a person in the shared LFW folder (it holds a subset of each person's)."""
    return sorted((lfw_dir / name).glob('*.jpg'))[number - 1].read_bytes()


def upload(field, data, filename='photo.jpg'):
    return {field: (filename, data, 'image/jpeg')}


def no_face_photo():
    """A real photo with no face: the top-left 90x90 background corner of an LFW sample."""
    image = read_image(SAMPLES / 'Colin_Powell_0040.jpg')[:90, :90]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format='PNG')
    return buffer.getvalue()


def library_embeddings(service, *photos):
    """What the library gives called directly: the first face of each photo, embedded."""
    images = [np.asarray(Image.open(io.BytesIO(photo)).convert('RGB')) for photo in photos]
    crops = [faces[0][0] for faces in find_faces(images, service.networks, 44, 160)]
    return embed_crops(service.model, np.stack(crops), service.standardization)


def assert_one_line_error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {'error'} and body['error'] and '\n' not in body['error'], body
    assert '\n' not in response.text
    return body['error']


def test_embed_gives_every_face_with_the_librarys_embedding(make_client, service):
    client = make_client()
    photo = sample('Anthony_Hopkins_0001.jpg')
    answer = client.post('/embed', files=upload('image', photo)).json()
    assert answer['image'] == {'width': 250, 'height': 250}
    (face,) = answer['faces']
    assert face['probability'] > 0.99
    x1, y1, x2, y2 = face['box']
    assert 0 <= x1 < x2 <= 250 and 0 <= y1 < y2 <= 250
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face['landmarks'])  # eyes, nose, mouth in the box
    left_eye, right_eye = face['landmarks'][:2]
    assert left_eye[0] < right_eye[0]
    embedding = np.array(face['embedding'])
    assert embedding.shape == (128,) and abs(np.linalg.norm(embedding) - 1) < 1e-4
    np.testing.assert_allclose(embedding, library_embeddings(service, photo)[0], atol=1e-5)
    # The same photo as base64 in a JSON body, crops asked for.
    as_json = client.post('/embed?crops=true', json={'image': base64.b64encode(photo).decode()}).json()
    np.testing.assert_allclose(as_json['faces'][0]['embedding'], embedding, atol=1e-6)
    crop = Image.open(io.BytesIO(base64.b64decode(as_json['faces'][0]['crop'].split(',', 1)[1])))
    assert crop.size == (160, 160)


def test_verify_decides_at_the_threshold(make_client, service):
    client = make_client()
    hopkins1, hopkins2, jolie = (sample(name) for name in ('Anthony_Hopkins_0001.jpg', 'Anthony_Hopkins_0002.jpg',
                                                            'Angelina_Jolie_0001.jpg'))
    same = client.post('/verify', files={**upload('image1', hopkins1), **upload('image2', hopkins2)}).json()
    different = client.post('/verify', json={'image1': base64.b64encode(hopkins1).decode(),
                                             'image2': base64.b64encode(jolie).decode()}).json()
    expected = library_embeddings(service, hopkins1, hopkins2, jolie)
    assert same['distance'] == pytest.approx(np.linalg.norm(expected[0] - expected[1]), abs=1e-4)
    assert different['distance'] == pytest.approx(np.linalg.norm(expected[0] - expected[2]), abs=1e-4)
    assert same['threshold'] == different['threshold'] == 1.1
    assert same['distance'] < 1.0 and same['same_person'] is True
    assert different['distance'] > 1.2 and different['same_person'] is False
    assert len(same['faces']) == 2 and all(face['probability'] > 0.99 for face in same['faces'])


def test_a_photo_without_a_face(make_client):
    client = make_client()
    blank = no_face_photo()
    error = assert_one_line_error(client.post('/verify', files={**upload('image1', sample('Anthony_Hopkins_0001.jpg')),
                                                               **upload('image2', blank, 'wall.png')}), 422)
    assert 'image2' in error and 'wall.png' in error
    assert client.post('/embed', files=upload('image', blank)).json()['faces'] == []
    assert client.post('/identify', files=upload('image', blank)).json()['faces'] == []


def test_enroll_identify_delete_persisted_in_identify_py_format(make_client, lfw_dir):
    client = make_client(open_enrollment=True)
    people = ['Colin_Powell', 'Tony_Blair', 'Gerhard_Schroeder']
    for name in people:
        files = [('image', (f'{i}.jpg', lfw(lfw_dir, name, i), 'image/jpeg')) for i in (1, 2)]
        answer = client.post('/enroll', data={'name': name}, files=files).json()
        assert answer['added'] == 2 and answer['images'] == 2
    # The same photo again adds nothing: the gallery keys images by content.
    again = client.post('/enroll', data={'name': 'Colin_Powell'}, files=upload('image', lfw(lfw_dir, 'Colin_Powell', 1)))
    assert again.json()['added'] == 0
    assert client.get('/people').json() == {'people': {name: 2 for name in people}}
    # Base64 in JSON, a list of photos; the same photo as before under the same name adds nothing.
    as_json = client.post('/enroll', json={'name': 'Tony_Blair', 'image': [base64.b64encode(lfw(lfw_dir, 'Tony_Blair', i)).decode()
                                                                          for i in (1, 4)]}).json()
    assert as_json['added'] == 1 and as_json['images'] == 2
    assert client.delete('/people/Tony_Blair').json()['removed'] == 3
    client.post('/enroll', data={'name': 'Tony_Blair'}, files=[('image', (f'{i}.jpg', lfw(lfw_dir, 'Tony_Blair', i))) for i in (1, 2)])
    for name in people:
        (face,) = client.post('/identify', files=upload('image', lfw(lfw_dir, name, 3))).json()['faces']
        assert face['identity'] == name and face['matches'][0]['name'] == name
        assert face['matches'][0]['distance'] < 1.1 < face['matches'][1]['distance']
        assert [match['distance'] for match in face['matches']] == sorted(match['distance'] for match in face['matches'])
    (stranger,) = client.post('/identify?top_k=2', files=upload('image', sample('Angelina_Jolie_0001.jpg'))).json()['faces']
    assert stranger['identity'] is None and len(stranger['matches']) == 2 and stranger['matches'][0]['distance'] > 1.1
    # What was answered as done is on disk, readable as an identify.py index.
    on_disk = Gallery.load(client.store.path)
    assert sorted(on_disk.identities) == sorted(people) and len(on_disk) == 6
    assert client.delete('/people/Tony_Blair').json() == {'name': 'Tony_Blair', 'removed': 2}
    assert sorted(Gallery.load(client.store.path).identities) == ['Colin_Powell', 'Gerhard_Schroeder']
    assert_one_line_error(client.delete('/people/Tony_Blair'), 404)
    info = client.get('/info').json()
    assert info['gallery']['people'] == 2 and info['gallery']['images'] == 4 and info['embedding_size'] == 128
    assert info['threshold'] == 1.1 and info['enrollment'] == 'open' and info['version']
    assert_one_line_error(client.post('/enroll', data={'name': 'Nobody'}, files=upload('image', no_face_photo())), 422)
    assert 'Nobody' not in client.get('/people').json()['people']


def test_identify_py_index_is_served_and_a_replica_reloads_it(make_client, service, tmp_path, lfw_dir):
    """A gallery the writer changes is picked up by a read-only replica on the same file, which refuses changes."""
    writer = make_client(open_enrollment=True)
    writer.post('/enroll', data={'name': 'Tony_Blair'}, files=upload('image', lfw(lfw_dir, 'Tony_Blair', 1)))
    replica = TestClient(create_app(service, GalleryStore(writer.store.path, service.identity(), read_only=True),
                                    Settings(open_enrollment=True)))
    with replica:
        assert replica.get('/people').json()['people'] == {'Tony_Blair': 1}
        writer.post('/enroll', data={'name': 'Colin_Powell'}, files=upload('image', lfw(lfw_dir, 'Colin_Powell', 1)))
        (face,) = replica.post('/identify', files=upload('image', lfw(lfw_dir, 'Colin_Powell', 3))).json()['faces']
        assert face['identity'] == 'Colin_Powell'
        assert 'read-only' in assert_one_line_error(replica.delete('/people/Tony_Blair'), 403)


def test_api_key_rules(make_client, lfw_dir):
    photo = lfw(lfw_dir, 'Tony_Blair', 1)
    closed = make_client('closed.npz')
    assert 'open_enrollment' in assert_one_line_error(closed.post('/enroll', data={'name': 'A'}, files=upload('image', photo)), 403)
    assert_one_line_error(closed.delete('/people/A'), 403)
    keyed = make_client('keyed.npz', api_key=KEY)
    assert_one_line_error(keyed.post('/enroll', data={'name': 'A'}, files=upload('image', photo)), 401)
    assert_one_line_error(keyed.post('/enroll', data={'name': 'A'}, files=upload('image', photo),
                                     headers={'X-API-Key': 'wrong'}), 403)
    assert_one_line_error(keyed.delete('/people/A'), 401)
    assert keyed.post('/enroll', data={'name': 'A'}, files=upload('image', photo),
                      headers={'X-API-Key': KEY}).json()['added'] == 1
    assert keyed.get('/info').status_code == 200  # reads are open without protect_reads
    assert keyed.delete('/people/A', headers={'X-API-Key': KEY}).status_code == 200
    protected = make_client('protected.npz', api_key=KEY, protect_reads=True)
    for path in ('/info', '/people', '/metrics', '/docs', '/openapi.json'):
        assert_one_line_error(protected.get(path), 401)
        assert_one_line_error(protected.get(path, headers={'X-API-Key': 'nope'}), 403)
        assert protected.get(path, headers={'X-API-Key': KEY}).status_code == 200
    assert_one_line_error(protected.post('/embed', files=upload('image', photo)), 401)
    assert protected.get('/health').status_code == 200 and protected.get('/').status_code == 200
    with pytest.raises(UserError, match='protect_reads needs an API key'):
        Settings(protect_reads=True)


def png_bomb(side):
    """A valid grayscale PNG of side x side black pixels: a few hundred KB that decode to side**2 bytes."""
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    compressor, row, parts = zlib.compressobj(9), b'\0' * (side + 1), []
    for _ in range(side):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', side, side, 8, 0, 0, 0, 0))
            + chunk(b'IDAT', b''.join(parts)) + chunk(b'IEND', b''))


def test_size_limits_and_decompression_bomb(make_client, monkeypatch):
    client = make_client(max_upload_bytes=200_000, max_pixels=4_000_000)
    bomb = png_bomb(6000)  # 36 megapixels in about 35 KB
    assert len(bomb) < 100_000
    decoded = []
    original_load = ImageFile.ImageFile.load  # what decodes a PNG's pixels
    monkeypatch.setattr(ImageFile.ImageFile, 'load', lambda self: decoded.append(self.size) or original_load(self))
    error = assert_one_line_error(client.post('/embed', files=upload('image', bomb, 'bomb.png')), 400)
    assert 'bomb.png' in error and '6000x6000' in error and 'too large' in error
    assert decoded == []  # refused from the header: no pixel was decoded
    monkeypatch.setattr(ImageFile.ImageFile, 'load', original_load)
    assert decode_image(png_bomb(100), 'small.png', max_pixels=4_000_000).shape == (100, 100, 3)
    error = assert_one_line_error(client.post('/embed', files=upload('image', b'\xff' * 300_000)), 413)
    assert '200,000' in error
    # A body without Content-Length (chunked) is counted as it arrives.
    def chunks():
        for _ in range(30):
            yield b'x' * 10_000
    assert_one_line_error(client.post('/embed', content=chunks(), headers={'content-type': 'application/json'}), 413)


def test_bad_input_is_a_one_line_4xx_and_the_server_goes_on(make_client):
    client = make_client(open_enrollment=True)
    photo = sample('Colin_Powell_0049.jpg')
    cases = {
        'not an image': (400, dict(files=upload('image', b'GIF89a? no, just text pretending', 'fake.gif'))),
        'truncated jpeg': (400, dict(files=upload('image', photo[:len(photo) // 3], 'cut.jpg'))),
        'empty file': (400, dict(files=upload('image', b'', 'empty.jpg'))),
        'wrong field name': (400, dict(files=upload('file', photo))),
        'no field': (400, dict(data={'something': 'else'})),
        'image twice': (400, dict(files=[('image', ('a.jpg', photo)), ('image', ('b.jpg', photo))])),
        'text where a file goes': (400, dict(data={'image': 'hello'})),
        'invalid JSON': (400, dict(content=b'{"image": ', headers={'content-type': 'application/json'})),
        'JSON not an object': (400, dict(json=[1, 2])),
        'invalid base64': (400, dict(json={'image': 'not*base64!'})),
        'base64 of a non-image': (400, dict(json={'image': base64.b64encode(b'hello').decode()})),
        'number instead of base64': (400, dict(json={'image': 42})),
        'other content type': (415, dict(content=photo, headers={'content-type': 'image/jpeg'})),
        'broken multipart': (400, dict(content=b'--xx\r\nnonsense', headers={'content-type': 'multipart/form-data; boundary=xx'})),
    }
    for what, (status, request) in cases.items():
        error = assert_one_line_error(client.post('/embed', **request), status)
        assert error, what
    assert 'cut.jpg' in assert_one_line_error(client.post('/identify', files=upload('image', photo[:2000], 'cut.jpg')), 400)
    assert_one_line_error(client.post('/verify', files=upload('image1', photo)), 400)  # image2 missing
    assert_one_line_error(client.post('/enroll', files=upload('image', photo)), 400)  # no name
    assert_one_line_error(client.post('/enroll', data={'name': ' '}, files=upload('image', photo)), 400)
    assert_one_line_error(client.post('/identify?top_k=lots', files=upload('image', photo)), 400)
    assert_one_line_error(client.get('/no/such/page'), 404)
    assert_one_line_error(client.get('/embed'), 405)
    # Still serving after all that.
    assert client.get('/health').json() == {'status': 'ok'}
    assert len(client.post('/embed', files=upload('image', sample('Anthony_Hopkins_0001.jpg'))).json()['faces']) == 1
    metrics = client.get('/metrics').text
    refused = sum(status == 400 for status, _ in cases.values())
    assert f'facenet_requests_total{{endpoint="/embed",status="400"}} {refused}' in metrics
    assert 'facenet_requests_total{endpoint="/embed",status="415"} 1' in metrics
    assert 'facenet_errors_total{endpoint="/embed",kind="server"}' not in metrics


@pytest.fixture(scope='module')
def live(service, tmp_path_factory):
    store = GalleryStore(tmp_path_factory.mktemp('live') / 'gallery.npz', service.identity())
    server = LiveServer(create_app(service, store, Settings(open_enrollment=True, batch_window=0.02))).start()
    server.store = store
    yield server
    server.stop()


def test_concurrent_requests_are_batched_with_the_same_results(live, service, lfw_dir):
    photos = [lfw(lfw_dir, name, i) for name in ('George_W_Bush', 'Serena_Williams') for i in (1, 2, 3, 4)]
    expected = library_embeddings(service, *photos)
    before = httpx.get(live.url + '/metrics').text
    with httpx.Client(timeout=60) as http, concurrent.futures.ThreadPoolExecutor(len(photos)) as pool:
        answers = list(pool.map(lambda photo: http.post(live.url + '/embed', files=upload('image', photo)), photos))
    assert [answer.status_code for answer in answers] == [200] * len(photos)
    for answer, embedding in zip(answers, expected):
        np.testing.assert_allclose(answer.json()['faces'][0]['embedding'], embedding, atol=1e-4)
    after = httpx.get(live.url + '/metrics').text

    def batches(text):
        return int(text.split('facenet_batch_size_count ')[1].split()[0])
    assert batches(after) - batches(before) < len(photos)  # fewer model calls than requests


def test_concurrent_enroll_and_search_lose_and_tear_nothing(live, lfw_dir):
    people = ['Colin_Powell', 'Tony_Blair', 'Gerhard_Schroeder', 'George_W_Bush', 'Serena_Williams', 'Jennifer_Capriati']
    people = [name for name in people if (lfw_dir / name).is_dir()]
    probe = lfw(lfw_dir, 'Colin_Powell', 5)
    stop, seen, failures = threading.Event(), [], []

    def search(http):
        while not stop.is_set():
            answer = http.post(live.url + '/identify?top_k=10', files=upload('image', probe))
            if answer.status_code != 200:
                failures.append(answer.text)
                continue
            for face in answer.json()['faces']:
                names = [match['name'] for match in face['matches']]
                if len(set(names)) != len(names) or not set(names) <= set(people):
                    failures.append(names)  # a torn gallery: duplicated or unknown people
                seen.append(len(names))

    def enroll(http, name):
        files = [('image', (f'{i}.jpg', lfw(lfw_dir, name, i), 'image/jpeg')) for i in (1, 2)]
        return http.post(live.url + '/enroll', data={'name': name}, files=files)

    with httpx.Client(timeout=120) as http, concurrent.futures.ThreadPoolExecutor(len(people) + 2) as pool:
        searchers = [pool.submit(search, http) for _ in range(2)]
        answers = list(pool.map(lambda name: enroll(http, name), people))
        stop.set()
        for searcher in searchers:
            searcher.result()
    assert [answer.status_code for answer in answers] == [200] * len(people), [a.text for a in answers]
    assert failures == [] and seen
    assert live.store.people() == {name: 2 for name in people}
    on_disk = Gallery.load(live.store.path)
    assert sorted(on_disk.identities) == sorted(people) and len(on_disk) == 2 * len(people)
    np.testing.assert_array_equal(np.bincount(on_disk.labels), [2] * len(people))


class SlowService(FaceService):
    """The shared model, with each batch held long enough to stop the server in the middle of it."""

    def __init__(self, service, started):
        super().__init__(service.model, service.networks, service.standardization, service.image_size,
                         service.margin, service.threshold, service.model_name)
        self.started = started

    def detect(self, images):
        self.started.set()
        time.sleep(1.0)
        return super().detect(images)


def test_graceful_shutdown_finishes_in_flight_requests_and_keeps_the_gallery(service, tmp_path, lfw_dir):
    started = threading.Event()
    store = GalleryStore(tmp_path / 'gallery.npz', service.identity())
    server = LiveServer(create_app(SlowService(service, started), store, Settings(open_enrollment=True))).start()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(httpx.post, server.url + '/enroll', data={'name': 'Tony_Blair'},
                                files=upload('image', lfw(lfw_dir, 'Tony_Blair', 1)), timeout=60)
        assert started.wait(30)
        assert server.stop()  # what SIGTERM does; returns once the server has exited
        answer = in_flight.result()
    assert answer.status_code == 200 and answer.json()['added'] == 1
    assert Gallery.load(store.path).identities == ['Tony_Blair']
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + '/health', timeout=2)


def test_command_line_checks_before_loading(tmp_path):
    def check(*argv):
        return serve_command.check_arguments(serve_command.parse_arguments(['--gallery', str(tmp_path / 'g.npz'), *argv]))
    with pytest.raises(UserError, match='protect_reads needs an API key'):
        check('--protect_reads')
    with pytest.raises(UserError, match='not a TCP port'):
        check('--port', '70000')
    with pytest.raises(UserError, match='no such gallery index'):
        check('--read_only')
    settings, threshold = check('--api_key', KEY, '--threshold', '0.9')
    assert settings.api_key == KEY and threshold == 0.9
    with pytest.raises(UserError, match='lfw.json: no such'):
        check('--lfw_json', str(tmp_path / 'lfw.json'))


# --- the page in a real browser ------------------------------------------------------------------------------

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
CHROMEDRIVER = shutil.which('chromedriver')


@pytest.fixture(scope='module')
def browser():
    webdriver = pytest.importorskip('selenium.webdriver', reason="the browser test needs selenium: pip install -e '.[serve]'")
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip('the browser test needs Debian\'s chromium and chromium-driver: apt-get install chromium chromium-driver')
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1280,900'):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


def test_the_page_compares_enrols_and_searches_in_chromium(browser, live, lfw_dir, tmp_path):
    from selenium.webdriver.common.by import By  # pylint: disable=import-outside-toplevel
    from selenium.webdriver.support.ui import WebDriverWait  # pylint: disable=import-outside-toplevel
    wait = WebDriverWait(browser, 60)
    browser.get(live.url + '/')
    wait.until(lambda b: 'threshold 1.1000' in b.find_element(By.ID, 'info').text)
    hopkins = [str(SAMPLES / f'Anthony_Hopkins_000{i}.jpg') for i in (1, 2)]
    jolie = str(SAMPLES / 'Angelina_Jolie_0001.jpg')
    with httpx.Client(timeout=60) as http:
        def api_distance(first, second):
            return http.post(live.url + '/verify', files={'image1': open(first, 'rb'), 'image2': open(second, 'rb')}).json()['distance']
        expected_same, expected_different = api_distance(*hopkins), api_distance(hopkins[0], jolie)

    def compare(first, second):
        browser.find_element(By.ID, 'decision').text  # noqa: B018
        browser.execute_script("document.getElementById('distance').textContent = '-'")
        browser.find_element(By.ID, 'file1').send_keys(first)
        browser.find_element(By.ID, 'file2').send_keys(second)
        browser.find_element(By.ID, 'compare-button').click()
        wait.until(lambda b: b.find_element(By.ID, 'distance').text != '-')
        return browser.find_element(By.ID, 'distance').text, browser.find_element(By.ID, 'decision').text

    assert compare(*hopkins) == (f'{expected_same:.4f}', 'same person')
    crops = [browser.find_element(By.ID, f'crop{i}') for i in (1, 2)]
    assert all(crop.is_displayed() and browser.execute_script('return arguments[0].naturalWidth', crop) == 160
               for crop in crops)
    assert compare(hopkins[0], jolie) == (f'{expected_different:.4f}', 'different people')

    browser.find_element(By.ID, 'enroll-name').send_keys('Anthony Hopkins')
    browser.find_element(By.ID, 'enroll-files').send_keys(hopkins[0])
    browser.find_element(By.ID, 'enroll-button').click()
    wait.until(lambda b: 'Enrolled 1 new image(s) of Anthony Hopkins' in b.find_element(By.ID, 'enroll-result').text)
    assert live.store.people()['Anthony Hopkins'] == 1

    browser.find_element(By.ID, 'search-file').send_keys(hopkins[1])
    browser.find_element(By.ID, 'search-button').click()
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, '#search-result .identity'))
    assert browser.find_element(By.CSS_SELECTOR, '#search-result .identity').text == 'Identity: Anthony Hopkins'
    first_match = browser.find_element(By.CSS_SELECTOR, '#search-result tr.match')
    assert first_match.find_element(By.CLASS_NAME, 'name').text == 'Anthony Hopkins'
    assert first_match.find_element(By.CLASS_NAME, 'match-distance').text == f'{expected_same:.4f}'

    # An error from the API is shown on the page, not swallowed.
    browser.find_element(By.ID, 'search-file').send_keys(str(SAMPLES / 'README.md'))
    browser.find_element(By.ID, 'search-button').click()
    wait.until(lambda b: b.find_element(By.ID, 'error').is_displayed())
    assert 'not a readable image' in browser.find_element(By.ID, 'error').text


def test_batcher_batches_isolates_a_failing_item_and_drains_on_stop():
    from facenet_tf2.serving.batcher import BatcherStopped, DynamicBatcher  # pylint: disable=import-outside-toplevel
    calls = []

    def square(items):
        calls.append(len(items))
        if 'bad' in items:
            raise ValueError('bad item')
        time.sleep(0.05)
        return [item * item for item in items]
    batcher = DynamicBatcher(square, max_batch=4, window=0.05)
    futures = [batcher.submit(i) for i in range(10)] + [batcher.submit('bad')] + [batcher.submit(3)]
    batcher.stop()  # returns once everything submitted is done
    assert [future.result(0) for future in futures[:10]] == [i * i for i in range(10)]
    with pytest.raises(ValueError, match='bad item'):
        futures[10].result(0)
    assert futures[11].result(0) == 9  # batched with the bad item, run again alone
    assert max(calls) == 4 and sum(size for size in calls if size > 1) >= 10
    with pytest.raises(BatcherStopped):
        batcher.submit(1)
