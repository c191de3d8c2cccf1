import { runService } from '@bfl/kit';
import { startTelemetry } from '@bfl/telemetry';
import { service } from './service/app.js';

// Started by the preload when telemetry is wanted; otherwise the scenario requests still
// carry the story's baggage (traffic.type, demo.minute) to the services.
startTelemetry({ autoInstrument: false, propagateAlways: true });
runService(service);
