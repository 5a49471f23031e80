// artplayer-danmaku.js: our comments in an unmodified ArtPlayer 5 with
// artplayer-plugin-danmuku 5 (both from npm; this repo does not vendor them).
//
// Part 1, the adapter (`danmakuPlugin`), is what a site copies. It wraps the plugin:
// - stored comments: our bilibili XML export, GET /api/videos/{id}/danmaku.xml, is the
//   plugin's `danmuku` option: a loader that fetches it with the viewer's token (so a
//   member gets the members-only comments and member-tier videos too) and reads each
//   `<d p="time,mode,size,colour,…,id">` (the plugin's own URL loader sends no token and
//   drops the leading zeros of colours);
// - live comments: DanmakuClient's 'danmaku' events go to the plugin's `emit`, drawn now;
// - the send box: the plugin's `beforeEmit` posts through DanmakuClient.post; the plugin
//   then draws the stored comment itself, and the server never echoes it to its poster,
//   so it is drawn once (an id set guards that too);
// - modes: ours scroll/top/bottom are the plugin's 0/1/2; colours stay '#rrggbb'.
// Text reaches the DOM only through the plugin (it sets textContent); nothing here
// writes HTML.
//
//   const client = new DanmakuClient({ getToken });
//   const art = new Artplayer({ container, url,
//     plugins: [danmakuPlugin(artplayerPluginDanmuku, { video: '42', client })] });
//   client.connect();
//
// Part 2 wires the example page, static/examples/artplayer.html.

import { DanmakuClient, request } from '../lib/danmaku-client.js';

/** Our modes as the plugin's mode numbers. */
export const ART_MODE = { scroll: 0, top: 1, bottom: 2 };
/** The plugin's mode numbers as our modes. */
export const OUR_MODE = ['scroll', 'top', 'bottom'];

/** bilibili XML modes (1-3 scroll, 4 bottom, 5 top) as the plugin's mode numbers. */
const XML_MODE = { 1: 0, 2: 0, 3: 0, 4: 2, 5: 1 };

/**
 * Reads our bilibili XML export into the plugin's danmu objects, in video-time order. Text
 * comes from the parsed document's text nodes; nothing is ever parsed as HTML.
 */
export function parseXml(xml) {
  const doc = new DOMParser().parseFromString(xml, 'application/xml');
  if (doc.querySelector('parsererror')) throw new Error('the XML export could not be parsed');
  const out = [];
  for (const d of doc.getElementsByTagName('d')) {
    const p = (d.getAttribute('p') || '').split(',');
    const time = Number(p[0]);
    const mode = XML_MODE[p[1]];
    const rgb = Number(p[3]);
    if (!Number.isFinite(time) || mode === undefined || !(rgb >= 0 && rgb <= 0xffffff)) continue;
    out.push({ id: p[7], text: d.textContent, time, mode, color: `#${rgb.toString(16).padStart(6, '0')}` });
  }
  return out.sort((a, b) => a.time - b.time);
}

/** A comment view as the plugin's danmu: our id (for dedupe and data-id), text, mode, colour. */
export function toArt(view) {
  return { id: String(view.id), text: view.text, mode: ART_MODE[view.mode] ?? 0, color: view.color };
}

/**
 * The plugin, wired to the server: pass it where `artplayerPluginDanmuku(option)` would
 * go. `plugin` is the package's export; `options` are its options (ours win for
 * `danmuku`, `filter` and `beforeEmit`). The client says where the server is (its `url`
 * or `baseUrl`) and who the viewer is. `onError(error)` hears a failed XML load, refused
 * posts and subscriptions (a DanmakuError with `code`), e.g. to show them by the player.
 */
export function danmakuPlugin(plugin, { video, client, onError = () => {}, options = {} }) {
  const queued = new Set(); // our comment ids handed to the plugin
  const option = {
    ...options,
    // The plugin calls this on every full load() and empties its queue once it resolves:
    // our record of queued ids is reset at that same moment, so the XML copy of a live
    // comment the plugin just dropped is drawn again. A failure is reported, not thrown.
    danmuku: () => client.exportXml(video).then((xml) => {
      queued.clear();
      return parseXml(xml);
    }, (e) => {
      onError(e);
      return [];
    }),
    // Every danmu passes here before the plugin queues it: drop an id already queued (a
    // live comment that is also in the XML).
    filter(danmu) {
      if (danmu.id === undefined) return true;
      if (queued.has(danmu.id)) return false;
      queued.add(danmu.id);
      return true;
    },
    // The send box: store the comment first; the plugin draws it (with a border) only
    // when this resolves true, from this same object, so it gets the stored values.
    async beforeEmit(danmu) {
      try {
        const view = await client.post(video, {
          text: danmu.text,
          time: Math.round((danmu.time || 0) * 1000) / 1000,
          mode: OUR_MODE[danmu.mode] ?? 'scroll',
          color: String(danmu.color || '#ffffff').toLowerCase(),
        });
        Object.assign(danmu, toArt(view));
        return true;
      } catch (e) {
        onError(e);
        return false;
      }
    },
  };
  return (art) => {
    const result = plugin(option)(art);
    // Live comments are drawn now (no `time`: the plugin uses the current position).
    // Comments the room missed while disconnected (replayed or refetched after a
    // reconnect) join the timeline at their video time instead of bursting on screen.
    const offDanmaku = client.on('danmaku', (view, meta = {}) => {
      if (view.video !== video) return;
      const danmu = toArt(view);
      if (queued.has(danmu.id)) return;
      if (meta.replayed || meta.refetched) danmu.time = view.time;
      result.emit(danmu);
    });
    // Another viewer on the same socket (a sign-in, a sign-out) may see other comments:
    // load the XML again for them.
    const offWelcome = client.on('welcome', (_, m = {}) => {
      if (m.reconnect && !m.sameIdentity) result.load();
    });
    client.subscribe(`video:${video}`).catch(onError);
    art.on('destroy', () => {
      offDanmaku();
      offWelcome();
      client.unsubscribe(`video:${video}`).catch(() => {});
    });
    return result;
  };
}

// ---------------------------------------------------------------------------------------
// Part 2: the example page. `?video=<id>` (default demo), `&src=<video url>` (default the
// demo clip), `&user=<name>&role=free|member|admin` to sign in with a demo token (servers
// run with --demo; a real site passes its own getToken). Without a user it is a guest.

const VIDEO_RE = /^[A-Za-z0-9\-_.]{1,64}$/;

/** Shows a line under the player (text only). */
function say(text, kind = 'info') {
  const status = document.getElementById('status');
  status.textContent = text;
  status.dataset.kind = kind;
}

/** `?src=` when it is an http(s) or blob URL, else the demo clip (never javascript: or data:). */
function videoSource(src) {
  if (!src) return '/demo.webm';
  try {
    const u = new URL(src, location.href);
    if (['http:', 'https:', 'blob:'].includes(u.protocol)) return u.href;
  } catch {
    // not a URL: fall through
  }
  say('?src= must be an http(s) URL: playing the demo clip', 'error');
  return '/demo.webm';
}

/** Builds the player, or says what is missing. */
function boot() {
  const params = new URLSearchParams(location.search);
  const video = params.get('video') || 'demo';
  if (!VIDEO_RE.test(video)) return say('?video= is not a video id', 'error');
  if (typeof window.Artplayer !== 'function' || typeof window.artplayerPluginDanmuku !== 'function') {
    return say('ArtPlayer is missing: put artplayer.js and artplayer-plugin-danmuku.js '
      + '(npm packages artplayer@5 and artplayer-plugin-danmuku@5, their dist/ files) in '
      + '/examples/vendor/, or point the two script tags at a CDN. See examples/README.md.', 'error');
  }
  const user = params.get('user');
  const role = params.get('role') || 'free';
  // A demo token per ask: the client asks again before the token expires.
  const getToken = user
    ? async () => (await request('POST', '/api/demo/token', { sub: user, role, name: user })).token
    : null;
  const client = new DanmakuClient({ getToken });
  const art = new window.Artplayer({
    container: '#player',
    url: videoSource(params.get('src')),
    muted: true,
    loop: true,
    plugins: [danmakuPlugin(window.artplayerPluginDanmuku, {
      video,
      client,
      onError: (e) => say(`${e.code || 'error'}: ${e.message}`, 'error'),
      options: { margin: [10, '10%'], speed: 7 },
    })],
  });
  client.on('state', (state) => {
    document.getElementById('player').dataset.conn = state;
  });
  client.connect().then(
    (welcome) => say(`connected as ${welcome.user.name} (${welcome.user.role}) to video ${video}`),
    (e) => say(`cannot connect: ${e.code}: ${e.message}`, 'error'),
  );
  // For devtools and the e2e scenario.
  window.artplayerExample = { art, client, video };
}

// Only on the example page, so a site can import the adapter alone.
if (document.documentElement.dataset.example === 'artplayer') boot();
