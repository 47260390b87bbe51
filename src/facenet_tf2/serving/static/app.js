// The facenet-serve page: plain browser JavaScript calling the same JSON API as any client.
'use strict';

const $ = (id) => document.getElementById(id);

function headers() {
  const key = $('api-key').value;
  return key ? { 'X-API-Key': key } : {};
}

function showError(message) {
  const box = $('error');
  box.textContent = message;
  box.hidden = !message;
}

async function post(url, form) {
  const response = await fetch(url, { method: 'POST', body: form, headers: headers() });
  const answer = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

function text(tag, content, className) {
  const element = document.createElement(tag);
  element.textContent = content;
  if (className) element.className = className;
  return element;
}

// Each drop zone feeds its file input and previews the (first) photo.
for (const zone of document.querySelectorAll('.drop')) {
  const input = zone.querySelector('input');
  const preview = zone.querySelector('img');
  const show = () => {
    if (input.files.length) {
      preview.src = URL.createObjectURL(input.files[0]);
      preview.hidden = false;
    }
  };
  input.addEventListener('change', show);
  zone.addEventListener('dragover', (event) => { event.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    input.files = event.dataTransfer.files;
    show();
  });
}

async function loadInfo() {
  try {
    const response = await fetch('/info', { headers: headers() });
    const info = await response.json();
    if (!response.ok) throw new Error(info.error);
    $('info').textContent = `model ${info.model} (${info.embedding_size}-d), threshold ${info.threshold.toFixed(4)}, ` +
      `gallery ${info.gallery.people} people / ${info.gallery.images} images, enrolment ${info.enrollment}`;
  } catch (error) {
    $('info').textContent = `server information unavailable: ${error.message}`;
  }
}

$('compare-button').addEventListener('click', async () => {
  showError('');
  const form = new FormData();
  if (!$('file1').files.length || !$('file2').files.length) return showError('choose two photos to compare');
  form.append('image1', $('file1').files[0]);
  form.append('image2', $('file2').files[0]);
  $('decision').textContent = 'comparing…';
  try {
    const answer = await post('/verify?crops=true', form);
    $('crop1').src = answer.faces[0].crop; $('crop1').hidden = false;
    $('crop2').src = answer.faces[1].crop; $('crop2').hidden = false;
    $('distance').textContent = answer.distance.toFixed(4);
    $('threshold').textContent = answer.threshold.toFixed(4);
    $('decision').textContent = answer.same_person ? 'same person' : 'different people';
    $('decision').className = answer.same_person ? 'same' : 'different';
  } catch (error) {
    $('decision').textContent = '–';
    showError(error.message);
  }
});

$('search-button').addEventListener('click', async () => {
  showError('');
  const result = $('search-result');
  if (!$('search-file').files.length) return showError('choose a photo to search');
  const form = new FormData();
  form.append('image', $('search-file').files[0]);
  result.replaceChildren(text('p', 'searching…'));
  try {
    const answer = await post('/identify?crops=true', form);
    result.replaceChildren(text('p', `${answer.faces.length} face(s) found`, 'face-count'));
    answer.faces.forEach((face, index) => {
      const row = document.createElement('div');
      row.className = 'face';
      const crop = document.createElement('img');
      crop.src = face.crop; crop.alt = `face ${index + 1}`; crop.width = 80; crop.height = 80;
      const details = document.createElement('div');
      details.append(text('p', face.identity ? `Identity: ${face.identity}` : 'Identity: unknown', 'identity'));
      const table = document.createElement('table');
      table.append(text('tr', ''));
      table.firstChild.append(text('th', 'match'), text('th', 'distance'));
      for (const match of face.matches) {
        const line = document.createElement('tr');
        line.className = 'match';
        line.append(text('td', match.name, 'name'), text('td', match.distance.toFixed(4), 'match-distance'));
        table.append(line);
      }
      if (!face.matches.length) details.append(text('p', 'the gallery is empty'));
      details.append(table);
      row.append(crop, details);
      result.append(row);
    });
  } catch (error) {
    result.replaceChildren();
    showError(error.message);
  }
});

$('enroll-button').addEventListener('click', async () => {
  showError('');
  const files = $('enroll-files').files;
  if (!$('enroll-name').value.trim() || !files.length) return showError('give a name and at least one photo');
  const form = new FormData();
  form.append('name', $('enroll-name').value.trim());
  for (const file of files) form.append('image', file);
  $('enroll-result').textContent = 'enrolling…';
  try {
    const answer = await post('/enroll', form);
    $('enroll-result').textContent = `Enrolled ${answer.added} new image(s) of ${answer.name}; ` +
      `the gallery holds ${answer.gallery_people} people`;
    loadInfo();
  } catch (error) {
    $('enroll-result').textContent = '';
    showError(error.message);
  }
});

$('api-key').addEventListener('change', loadInfo);
loadInfo();
