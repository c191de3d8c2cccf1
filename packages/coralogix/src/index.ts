export * from './alerts.js';
export * from './api.js';
export * from './check.js';
export * from './cx-schema.js';
export * from './promql.js';
