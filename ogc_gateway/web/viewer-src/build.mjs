// Builds ../static/{pages,viewer}.{js,css} and ../static/LICENSES.txt: `npm ci && npm run build`.
import { build } from 'esbuild';
import { readFileSync, writeFileSync } from 'node:fs';

await build({
  entryPoints: { pages: 'src/pages.js', viewer: 'src/viewer.js' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outdir: '../static',
  legalComments: 'none',        // the licences are in LICENSES.txt beside the bundle
  logLevel: 'info',
});

const pkg = (name) => JSON.parse(readFileSync(`node_modules/${name}/package.json`, 'utf8'));
const licence = (name, file) => {
  const p = pkg(name);
  return `${p.name} ${p.version} (${p.license}) — ${p.homepage || ''}\n\n${readFileSync(`node_modules/${name}/${file}`, 'utf8').trim()}\n`;
};
writeFileSync('../static/LICENSES.txt',
  'Third-party code bundled into viewer.js and viewer.css (built from web/viewer-src/ by esbuild):\n\n'
  + [licence('ol', 'LICENSE.md'), licence('proj4', 'LICENSE.md')].join('\n' + '-'.repeat(72) + '\n\n'));
