'use strict';
// plotly.js 4.1.1's src/core.js, with only the components Gymnos's run and compare pages use registered (and so
// bundled): no annotations, images, update menus, sliders, range sliders or selectors, grid, error bars. The
// registry gives the plotting code a no-op for a component that is not registered, as for any partial bundle.
// Keep it in step with node_modules/plotly.js/src/core.js when the version changes (scripts/build-plotly).

exports.version = require('plotly.js/src/version').version;
require('native-promise-only');
require('plotly.js/build/plotcss');

var Registry = require('plotly.js/src/registry');
var register = (exports.register = Registry.register);

var plotApi = require('plotly.js/src/plot_api');
var methodNames = Object.keys(plotApi);
for (var i = 0; i < methodNames.length; i++) {
    var name = methodNames[i];
    if (name.charAt(0) !== '_') exports[name] = plotApi[name];
    register({ moduleType: 'apiMethod', name: name, fn: plotApi[name] });
}

register(require('plotly.js/src/traces/scatter'));

register([
    require('plotly.js/src/components/selections'), // the cartesian drag box needs it (zoom), bundled anyway
    require('plotly.js/src/components/shapes'), // epoch lines of the step and system charts
    require('plotly.js/src/components/colorscale'),
    require('plotly.js/src/components/colorbar'), // the confusion matrix's scale
    require('plotly.js/src/components/legend'), // after shapes, as in core.js
    require('plotly.js/src/components/fx'), // hover; after legend, as in core.js
    require('plotly.js/src/components/modebar')
]);

register([require('plotly.js/src/locale-en'), require('plotly.js/src/locale-en-us')]);

exports.Icons = require('plotly.js/src/fonts/ploticon');

var Fx = require('plotly.js/src/components/fx');
var Plots = require('plotly.js/src/plots/plots');

exports.Plots = { resize: Plots.resize, graphJson: Plots.graphJson, sendDataToCloud: Plots.sendDataToCloud };
exports.Fx = { hover: Fx.hover, unhover: Fx.unhover, loneHover: Fx.loneHover, loneUnhover: Fx.loneUnhover };
exports.Snapshot = require('plotly.js/src/snapshot');
exports.PlotSchema = require('plotly.js/src/plot_api/plot_schema');
