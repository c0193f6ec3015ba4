// The map viewer of one image service: OpenLayers showing exportImage (dynamic) or WMTS tiles, in
// Web Mercator or the service's own CRS; templates, bands, time, dimensions, legend, identify,
// footprints, and the current map as exportImage / WMS / WCS requests. Settings come from the
// page's JSON block (#viewer-config); everything else is asked of the server like any client would.
import 'ol/ol.css';
import './viewer.css';
import Map from 'ol/Map.js';
import View from 'ol/View.js';
import ImageLayer from 'ol/layer/Image.js';
import TileLayer from 'ol/layer/Tile.js';
import VectorLayer from 'ol/layer/Vector.js';
import ImageSource from 'ol/source/Image.js';
import WMTS, { optionsFromCapabilities } from 'ol/source/WMTS.js';
import WMTSCapabilities from 'ol/format/WMTSCapabilities.js';
import VectorSource from 'ol/source/Vector.js';
import EsriJSON from 'ol/format/EsriJSON.js';
import ScaleLine from 'ol/control/ScaleLine.js';
import MousePosition from 'ol/control/MousePosition.js';
import { defaults as defaultControls } from 'ol/control/defaults.js';
import { Fill, Stroke, Style } from 'ol/style.js';
import { get as getProjection, transformExtent } from 'ol/proj.js';
import { register } from 'ol/proj/proj4.js';
import { getWidth, getHeight } from 'ol/extent.js';
import { createStringXY } from 'ol/coordinate.js';
import proj4 from 'proj4';
import { getImage, getJSON, withToken } from './session.js';

const config = JSON.parse(document.getElementById('viewer-config').textContent);
const urls = config.urls;
const $ = (id) => document.getElementById(id);

// --- state -----------------------------------------------------------------------------------------
const state = {
  mode: 'export',                 // export | wmts
  projection: 'EPSG:3857',        // EPSG:3857 | native
  template: '',
  bandIds: config.defaultBandIds,
  timeIndex: config.times.length ? config.times.length - 1 : null,
  allTimes: false,                // REST requests without time: every item (WMTS keeps one time)
  variable: null,
  dimensions: {},                 // StdZ -> value (multidimensional services)
};
let loads = 0;                    // requests in flight (the page tells when the map is ready)

function status(text, isError = false) {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('error', isError);
}

function busy(delta) {
  loads += delta;
  document.body.dataset.loading = String(loads);
}

// --- projections -------------------------------------------------------------------------------------
const nativeInfo = config.projection;
const nativeCode = nativeInfo.code || 'SERVICE:CRS';
if (nativeInfo.proj4 && !getProjection(nativeCode)) {
  proj4.defs(nativeCode, nativeInfo.proj4);
  register(proj4);
}
const nativeSR = nativeInfo.wkid ? String(nativeInfo.wkid) : JSON.stringify(nativeInfo.sr);

function viewCode() { return state.projection === 'native' ? nativeCode : 'EPSG:3857'; }
function viewSR() { return state.projection === 'native' ? nativeSR : '3857'; }
function nativeExtentIn(code) { return transformExtent(config.extent, nativeCode, code, 16); }

// --- request parameters shared by every face -------------------------------------------------------
function timeMs() { return state.timeIndex === null || state.allTimes ? null : config.times[state.timeIndex]; }
function timeIso() { return state.timeIndex === null ? null : config.timeLabels[state.timeIndex]; }

function mosaicRule() {
  const defs = Object.entries(state.dimensions).map(([dimensionName, value]) => ({
    variableName: state.variable || '', dimensionName, values: [value], isSlice: true,
  }));
  if (!defs.length && state.variable) defs.push({ variableName: state.variable, dimensionName: '', values: [] });
  return defs.length ? JSON.stringify({ multidimensionalDefinition: defs }) : null;
}

function restParams() {
  const p = {};
  if (state.template) p.renderingRule = JSON.stringify({ rasterFunction: state.template });
  if (timeMs() !== null) p.time = String(timeMs());
  const rule = mosaicRule();
  if (rule) p.mosaicRule = rule;
  return p;
}

function url(base, params) {
  const u = new URL(base, location.href);
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== '') u.searchParams.set(k, v);
  return u.toString();
}

function exportUrl(extent, width, height) {
  const p = {
    bbox: extent.join(','), bboxSR: viewSR(), imageSR: viewSR(), size: `${width},${height}`,
    format: 'png32', f: 'image', ...restParams(),
  };
  if (state.bandIds && !state.template) p.bandIds = state.bandIds.join(',');
  return url(`${urls.rest}/exportImage`, p);
}

// --- layers ------------------------------------------------------------------------------------------
function exportSource() {
  return new ImageSource({
    projection: viewCode(),
    loader: async (extent, resolution) => {
      const width = Math.round(getWidth(extent) / resolution);
      const height = Math.round(getHeight(extent) / resolution);
      busy(1);
      try {
        const src = await getImage(exportUrl(extent, width, height));
        const image = new Image();
        image.src = src;
        await image.decode();
        status(`exportImage ${width}×${height}`);
        return image;
      } catch (exc) {
        status(exc.message, true);
        throw exc;
      } finally {
        busy(-1);
      }
    },
  });
}

// WMTS as a WMTS client: the layer's capabilities give the tile matrix set and its limits, so no
// tile outside the service's coverage is ever asked for.
let capabilities = null;
function wmtsCapabilities() {
  if (!capabilities) {
    capabilities = fetch(withToken(urls.wmts))
      .then((resp) => { if (!resp.ok) throw new Error(`WMTS capabilities: HTTP ${resp.status}`); return resp.text(); })
      .then((text) => new WMTSCapabilities().read(text));
  }
  return capabilities;
}

function wmtsSource(caps) {
  const options = optionsFromCapabilities(caps, {
    layer: config.name, matrixSet: 'WebMercatorQuad', format: 'image/png', requestEncoding: 'REST',
    crossOrigin: 'anonymous',
  });
  options.style = state.template || 'default';     // the identifier (OpenLayers would match a title)
  options.urls = options.urls.filter((u) => u.endsWith('.png'))      // one format, not all of them in turn
    .map((u) => withToken(u).replace(/%7B/g, '{').replace(/%7D/g, '}'));
  if (timeIso()) options.dimensions = { ...options.dimensions, Time: timeIso() };
  const source = new WMTS(options);
  source.on('tileloadstart', () => busy(1));
  source.on('tileloadend', () => { busy(-1); status('WMTS tiles (WebMercatorQuad)'); });
  source.on('tileloaderror', () => { busy(-1); status('a WMTS tile failed to load', true); });
  return source;
}

const imageLayer = new ImageLayer({ className: 'export-layer' });
const tileLayer = new TileLayer({ className: 'wmts-layer', visible: false });
const footprints = new VectorLayer({
  visible: false,
  style: new Style({ stroke: new Stroke({ color: '#d33', width: 2 }), fill: new Fill({ color: 'rgba(221,51,51,0.05)' }) }),
});

const map = new Map({
  target: 'map',
  layers: [imageLayer, tileLayer, footprints],
  controls: defaultControls().extend([
    new ScaleLine(),
    new MousePosition({ coordinateFormat: createStringXY(4), className: 'mouse-position' }),
  ]),
});

function refresh() {
  const wmts = state.mode === 'wmts';
  imageLayer.setVisible(!wmts);
  tileLayer.setVisible(wmts);
  if (wmts) {
    busy(1);
    wmtsCapabilities()
      .then((caps) => tileLayer.setSource(wmtsSource(caps)))
      .catch((exc) => status(exc.message, true))
      .finally(() => busy(-1));
  } else {
    imageLayer.setSource(exportSource());
  }
  if (footprints.getVisible()) loadFootprints();
  loadLegend();
  showUrls();
}

function setView() {
  const code = viewCode();
  const extent = nativeExtentIn(code);
  const view = new View({ projection: getProjection(code) });
  map.setView(view);
  view.fit(extent, { padding: [10, 10, 10, 10] });
  view.on('change', showUrls);
}

// --- the current map as requests ---------------------------------------------------------------------
// WMS names StdZ ELEVATION, the variable DIM_VARIABLE and any other dimension DIM_{NAME}.
function wmsDimensions() {
  const out = {};
  for (const [name, value] of Object.entries(state.dimensions)) {
    out[name === 'StdZ' ? 'ELEVATION' : `DIM_${name.toUpperCase()}`] = String(value);
  }
  if (state.variable && state.variableCount > 1) out.DIM_VARIABLE = state.variable;
  return out;
}

function showUrls() {
  const size = map.getSize();
  const view = map.getView();
  if (!size || !view) return;
  const extent = view.calculateExtent(size).map((v) => Number(v.toPrecision(10)));
  const [width, height] = size.map(Math.round);
  const code = viewCode();
  const epsg = state.projection === 'native' ? nativeInfo.code : 'EPSG:3857';
  const northFirst = state.projection === 'native' && nativeInfo.northFirst;
  const wmsBox = northFirst ? [extent[1], extent[0], extent[3], extent[2]] : extent;
  const links = {
    'url-export': exportUrl(extent, width, height).replace('format=png32', 'format=png'),
    'url-wms': url(urls.wms_base, {
      SERVICE: 'WMS', VERSION: '1.3.0', REQUEST: 'GetMap', LAYERS: config.name, STYLES: state.template,
      CRS: epsg || code, BBOX: wmsBox.join(','), WIDTH: width, HEIGHT: height, FORMAT: 'image/png',
      TRANSPARENT: 'TRUE', TIME: timeIso(), ...wmsDimensions(),
    }),
    'url-wcs': url(urls.wcs_base, {
      SERVICE: 'WCS', VERSION: '1.0.0', REQUEST: 'GetCoverage', COVERAGE: config.name, CRS: epsg || code,
      BBOX: extent.join(','), WIDTH: width, HEIGHT: height, FORMAT: 'GeoTIFF', TIME: timeIso(),
    }),
  };
  for (const [id, href] of Object.entries(links)) {
    const a = $(id);
    a.href = withToken(href);
    // readable (form encoding: '+' is a space, a real '+' is %2B); the link itself stays exact
    try { a.textContent = decodeURIComponent(href.replace(/\+/g, ' ')); } catch { a.textContent = href; }
  }
}

// --- legend, identify, footprints ----------------------------------------------------------------------
async function loadLegend() {
  const box = $('legend');
  try {
    const p = restParams();
    delete p.time;
    const answer = await getJSON(url(`${urls.rest}/legend`, { f: 'json', renderingRule: p.renderingRule,
      bandIds: state.bandIds && !state.template ? state.bandIds.join(',') : null }));
    box.replaceChildren();
    for (const layer of answer.layers || []) {
      for (const entry of layer.legend || []) {
        const row = document.createElement('div');
        row.className = 'legend-row';
        const img = document.createElement('img');
        img.src = `data:${entry.contentType};base64,${entry.imageData}`;
        img.alt = '';
        const label = document.createElement('span');
        label.textContent = entry.label;
        row.append(img, label);
        box.append(row);
      }
    }
  } catch (exc) {
    box.textContent = `Legend: ${exc.message}`;
  }
}

function cell(tag, text) {
  const el = document.createElement(tag);
  el.textContent = text;
  return el;
}

async function identify(coordinate) {
  const box = $('identify');
  const [x, y] = coordinate;
  const sr = state.projection === 'native' && !nativeInfo.wkid ? nativeInfo.sr : { wkid: Number(viewSR()) };
  const geometry = JSON.stringify({ x, y, spatialReference: sr });
  box.textContent = 'Identifying…';
  box.dataset.x = x;
  box.dataset.y = y;
  box.dataset.sr = JSON.stringify(sr);
  try {
    const answer = await getJSON(url(`${urls.rest}/identify`, {
      geometry, geometryType: 'esriGeometryPoint', returnGeometry: 'false', returnCatalogItems: 'true',
      f: 'json', ...restParams(),
    }));
    box.replaceChildren();
    const table = document.createElement('table');
    const crsName = state.projection === 'native' ? nativeInfo.name : 'Web Mercator (EPSG:3857)';
    const rows = [['Point', `${x.toFixed(4)}, ${y.toFixed(4)} (${crsName})`], ['Value', answer.value]];
    if (answer.properties && answer.properties.Values) rows.push(['Values', answer.properties.Values.join(' | ')]);
    for (const [k, v] of rows) {
      const tr = document.createElement('tr');
      tr.append(cell('th', k), cell('td', String(v)));
      if (k === 'Value') tr.lastChild.className = 'identify-value';
      table.append(tr);
    }
    box.append(table);
    const items = (answer.catalogItems && answer.catalogItems.features) || [];
    if (items.length) {
      box.append(cell('p', `${items.length} catalog item${items.length === 1 ? '' : 's'} under the point:`));
      const list = document.createElement('ul');
      list.className = 'items';
      for (const feature of items) {
        const a = feature.attributes || {};
        const li = document.createElement('li');
        const link = document.createElement('a');
        link.href = withToken(`${urls.rest}/${a.OBJECTID}`);
        link.textContent = `${a.OBJECTID}: ${a.Name || ''}`;
        li.append(link);
        list.append(li);
      }
      box.append(list);
    }
    box.dataset.done = String(Date.now());
  } catch (exc) {
    box.replaceChildren(cell('p', exc.message));
    box.firstChild.className = 'error';
  }
}

async function loadFootprints() {
  try {
    const answer = await getJSON(url(`${urls.rest}/query`, {
      where: '1=1', outFields: 'OBJECTID,Name', returnGeometry: 'true', outSR: viewSR(), f: 'json',
      time: timeMs() === null ? null : String(timeMs()),
    }));
    const features = new EsriJSON().readFeatures(answer);
    footprints.setSource(new VectorSource({ features }));
    status(`${features.length} footprint${features.length === 1 ? '' : 's'}`);
  } catch (exc) {
    status(`Footprints: ${exc.message}`, true);
  }
}

// --- multidimensional services: a variable and a value per dimension --------------------------------
async function loadDimensions() {
  const box = $('dimensions');
  const answer = await getJSON(url(`${urls.rest}/multidimensionalInfo`, { f: 'json' }));
  const variables = (answer.multidimensionalInfo && answer.multidimensionalInfo.variables) || [];
  if (!variables.length) return;
  box.hidden = false;
  const choose = (label, id, options, onChange) => {
    const l = document.createElement('label');
    l.htmlFor = id;
    l.textContent = label;
    const select = document.createElement('select');
    select.id = id;
    for (const [value, text] of options) select.append(new Option(text, value));
    select.addEventListener('change', () => { onChange(select.value); refresh(); });
    box.append(l, select);
    return select;
  };
  state.variable = variables[0].name;
  state.variableCount = variables.length;
  if (variables.length > 1) {
    choose('Variable', 'variable', variables.map((v) => [v.name, `${v.name} (${v.unit || ''})`]), (v) => { state.variable = v; });
  }
  for (const dim of variables[0].dimensions || []) {
    if (dim.name === 'StdTime') continue;
    state.dimensions[dim.name] = dim.values[0];
    choose(`${dim.description || dim.name} (${dim.unit || ''})`, `dim-${dim.name}`,
      dim.values.map((v) => [String(v), String(v)]), (v) => { state.dimensions[dim.name] = Number(v); });
  }
  refresh();
}

// --- controls ----------------------------------------------------------------------------------------
function showTime() {
  if (state.timeIndex !== null) $('time-label').textContent = config.timeLabels[state.timeIndex];
}

for (const radio of document.querySelectorAll('input[name=mode]')) {
  radio.addEventListener('change', () => {
    state.mode = radio.value;
    $('time').disabled = state.allTimes && state.mode === 'export';
    refresh();
  });
}
$('projection').addEventListener('change', (e) => { state.projection = e.target.value; setView(); refresh(); });
$('template').addEventListener('change', (e) => {
  state.template = e.target.value;
  for (const c of ['red', 'green', 'blue']) $(`band-${c}`).disabled = Boolean(state.template);  // a template picks its bands
  refresh();
});
for (const ch of ['red', 'green', 'blue']) {
  const select = $(`band-${ch}`);
  select.addEventListener('change', () => {
    state.bandIds = ['red', 'green', 'blue'].map((c) => Number($(`band-${c}`).value));
    refresh();
  });
}
if (config.bandNames.length >= 3) {
  const ids = config.defaultBandIds || [0, 1, 2];
  ['red', 'green', 'blue'].forEach((c, i) => { $(`band-${c}`).value = String(ids[i] ?? 0); });
}
$('time').addEventListener('change', (e) => { state.timeIndex = Number(e.target.value); showTime(); refresh(); });
$('time-all').addEventListener('change', (e) => {
  state.allTimes = e.target.checked;
  $('time').disabled = e.target.checked && state.mode === 'export';
  refresh();
});
$('time').addEventListener('input', (e) => { $('time-label').textContent = config.timeLabels[Number(e.target.value)]; });
$('footprints').addEventListener('change', (e) => {
  footprints.setVisible(e.target.checked);
  if (e.target.checked) loadFootprints();
});
if (!config.catalog) $('footprints').disabled = true;

map.on('singleclick', (event) => identify(event.coordinate));
// A finished picture (nothing loading, nothing pending): tests and scripts wait for this count.
map.on('rendercomplete', () => {
  if (loads === 0) document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
});

showTime();
setView();
refresh();
if (config.multidimensional) loadDimensions().catch((exc) => status(exc.message, true));
window.ogcGatewayViewer = { map, state, refresh };
