/** Grafana dashboards as code (Grafana Foundation SDK), rendered to observability/grafana/dashboards. */
export { BLACK_FRIDAY_UID, blackFridayDashboard } from './black-friday.js';
export { JAEGER, PROMETHEUS } from './common.js';
export { DASHBOARDS, FIX, renderAll, renderDashboard, staleFiles, writeAll } from './generator.js';
export { annotationQueries, type DashboardJson, type PanelJson, type PanelQuery, panelQueries, substitute } from './queries.js';
export { SERVICE_RED_UID, serviceRedDashboard } from './service-red.js';
