// plotly-gymnos-cartesian: the basic bundle and heatmaps (a classifier's confusion matrix).
var Plotly = require('./core');
Plotly.register([require('plotly.js/lib/bar'), require('plotly.js/lib/heatmap')]);
module.exports = Plotly;
