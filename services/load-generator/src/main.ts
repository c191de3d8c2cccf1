import { runService } from '@bfl/kit';
import { service } from './app.js';

runService(service);
