// Builds static/vendor/plotly/plotly-gymnos-{basic,cartesian}.min.js from plotly.js's sources in node_modules
// (scripts/build-plotly installs them from package-lock.json first). Plotly's own esbuild settings
// (node_modules/plotly.js/esbuild-config.js) but for the entry points, minified, with a banner saying what it is.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const target = join(here, '..', '..', 'static', 'vendor', 'plotly');
const plotly = JSON.parse(readFileSync(join(here, 'node_modules', 'plotly.js', 'package.json'), 'utf8')).version;
const built = JSON.parse(readFileSync(join(here, 'node_modules', 'esbuild', 'package.json'), 'utf8')).version;

for (const bundle of ['basic', 'cartesian']) {
    // V8's compile hint comes first: the page calls most of Plotly as it opens, so Chromium compiles every function
    // on its streaming thread while the file downloads instead of one by one on the main thread at the first draw.
    const banner = [
        '//# allFunctionsCalledOnLoad',
        `/*! plotly.js ${plotly} (MIT licence, Plotly Technologies Inc.: LICENSE), Gymnos's "${bundle}" bundle:`,
        ` * tools/plotly/${bundle}.js built with esbuild ${built} by scripts/build-plotly. */`,
    ].join('\n');
    await esbuild.build({
        entryPoints: [join(here, `${bundle}.js`)],
        outfile: join(target, `plotly-gymnos-${bundle}.min.js`),
        format: 'iife',
        globalName: 'Plotly',
        bundle: true,
        minify: true,
        legalComments: 'eof', // the bundled packages' own licence notices, kept
        banner: { js: banner },
        alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
        define: { global: 'window', 'define.amd': 'false' },
        // src/registry.js requires maplibre's stylesheet for map subplots, which these bundles have none of.
        loader: { '.css': 'empty' },
        target: 'es2016',
        logLevel: 'info',
    });
}
