// The pages' session: a token from generateToken kept in sessionStorage, added to every request
// the pages make to this server, and the sign-in form shown when the server asks for one.

const KEY = 'ogc-gateway-token';

export function currentToken() {
  let saved = null;
  try { saved = JSON.parse(sessionStorage.getItem(KEY) || 'null'); } catch { saved = null; }
  if (!saved || !saved.token) return null;
  if (saved.expires && saved.expires < Date.now()) { sessionStorage.removeItem(KEY); return null; }
  return saved;
}

/** The URL with `token=` when signed in; other hosts' URLs are never given the token. */
export function withToken(url) {
  const u = new URL(url, location.href);
  const saved = currentToken();
  if (saved && u.origin === location.origin) u.searchParams.set('token', saved.token);
  return u.toString();
}

/** A REST error ({"error": {...}}) as an exception; 498/499 open the sign-in form. */
export class ServerError extends Error {
  constructor(error) {
    const details = (error.details || []).filter(Boolean).join('; ');
    super(`${error.message || 'Error'}${details ? ` (${details})` : ''} [code ${error.code}]`);
    this.code = error.code;
    if (error.code === 498 || error.code === 499) showSignIn(this.message);
  }
}

export async function getJSON(url) {
  const resp = await fetch(withToken(url));
  const text = await resp.text();
  let body;
  try { body = JSON.parse(text); } catch { throw new Error(`HTTP ${resp.status}: not JSON (${text.slice(0, 200)})`); }
  if (body && body.error) throw new ServerError(body.error);
  return body;
}

/** An image request's answer: a blob URL, or the server's error (a JSON body) as an exception. */
export async function getImage(url) {
  const resp = await fetch(withToken(url));
  const type = resp.headers.get('Content-Type') || '';
  if (!type.startsWith('image/')) {
    const text = await resp.text();
    let body = null;
    try { body = JSON.parse(text); } catch { /* not JSON */ }
    if (body && body.error) throw new ServerError(body.error);
    throw new Error(`HTTP ${resp.status}: ${text.slice(0, 200)}`);
  }
  return URL.createObjectURL(await resp.blob());
}

function byId(id) { return document.getElementById(id); }

export function showSignIn(why) {
  const form = byId('sign-in');
  if (!form) return;
  if (why) byId('sign-in-why').textContent = why;
  form.hidden = false;
}

function showSession() {
  const saved = currentToken();
  const box = byId('signed-in');
  if (!box) return;
  box.hidden = !saved;
  if (saved) byId('signed-user').textContent = saved.user || '';
}

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  const body = new URLSearchParams({
    username: form.username.value, password: form.password.value,
    client: 'referer', referer: location.origin, expiration: '60', f: 'json',
  });
  const error = byId('sign-in-error');
  error.textContent = '';
  try {
    const resp = await fetch(document.body.dataset.tokenUrl, { method: 'POST', body });
    const answer = await resp.json();
    if (answer.error || !answer.token) throw new Error(answer.error ? answer.error.message : 'no token in the answer');
    sessionStorage.setItem(KEY, JSON.stringify({ token: answer.token, expires: answer.expires, user: form.username.value }));
    location.replace(withToken(location.href));
  } catch (exc) {
    error.textContent = `Sign-in failed: ${exc.message}`;
  }
}

function signOut() {
  sessionStorage.removeItem(KEY);
  const u = new URL(location.href);
  u.searchParams.delete('token');
  location.replace(u.toString());
}

/** Links, forms and images of this server carry the token (a restricted page needs it too). */
function passTokenOn() {
  if (!currentToken()) return;
  document.addEventListener('click', (event) => {
    const link = event.target.closest('a[href]');
    if (link && new URL(link.href, location.href).origin === location.origin) link.href = withToken(link.href);
  }, true);
  document.addEventListener('submit', (event) => {
    const form = event.target;
    if (form.id === 'sign-in' || form.elements.namedItem('token')) return;
    const input = document.createElement('input');
    input.type = 'hidden'; input.name = 'token'; input.value = currentToken().token;
    form.appendChild(input);
  }, true);
  for (const img of document.querySelectorAll('img[src]')) {
    if (!img.src.startsWith('data:') && !img.src.startsWith('blob:')) img.src = withToken(img.src);
  }
}

async function copy(button) {
  const source = byId(button.dataset.copy);
  const text = source.href && source.tagName === 'A' && source.getAttribute('href') !== '#' ? source.href : source.textContent;
  try {
    await navigator.clipboard.writeText(text.trim());
  } catch {
    const range = document.createRange();       // no clipboard API (plain http on another host)
    range.selectNodeContents(source);
    const selection = getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand('copy');
  }
  button.textContent = 'Copied';
  setTimeout(() => { button.textContent = 'Copy'; }, 1500);
}

/** An image that did not load (exportImage answered an error): show the server's message. */
async function explainBrokenImage(img) {
  const where = img.closest('[data-result]') || img.parentElement;
  const note = document.createElement('p');
  note.className = 'error';
  note.setAttribute('role', 'alert');
  try {
    await getImage(img.src);
    return;
  } catch (exc) {
    note.textContent = exc.message;
  }
  where.appendChild(note);
}

export function start() {
  showSession();
  passTokenOn();
  const form = byId('sign-in');
  if (form) form.addEventListener('submit', signIn);
  const show = byId('show-sign-in');
  if (show) show.addEventListener('click', () => showSignIn());
  const out = byId('sign-out');
  if (out) out.addEventListener('click', signOut);
  document.addEventListener('click', (event) => {
    const button = event.target.closest('button.copy');
    if (button) copy(button);
  });
  for (const img of document.querySelectorAll('img.result')) {
    if (img.complete && img.naturalWidth === 0) explainBrokenImage(img);
    else img.addEventListener('error', () => explainBrokenImage(img), { once: true });
  }
  // Is security on? Offer the sign-in before a request is refused.
  const info = document.body.dataset.infoUrl;
  if (info && show && !currentToken()) {
    getJSON(`${info}?f=json`).then((answer) => {
      if (answer.authInfo && answer.authInfo.isTokenBasedSecurity) show.hidden = false;
    }).catch(() => {});
  }
}
