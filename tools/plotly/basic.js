// plotly-gymnos-basic: lines, markers and bars (a regressor's run page, the compare page of regressors).
var Plotly = require('./core');
Plotly.register([require('plotly.js/lib/bar')]);
module.exports = Plotly;
