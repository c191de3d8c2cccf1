/**
 * "Black Friday" (uid black-friday): the incident story at a glance. Browsing (traffic
 * class baseline) stays green while checkout (demo) degrades minute by minute, why it
 * fails (recommendation timeouts, then the checkout pool running dry), and the fix.
 */
import {
  BigValueColorMode,
  BigValueGraphMode,
  GraphDrawStyle,
  GraphThresholdsStyleConfigBuilder,
  GraphThresholdsStyleMode,
  ReduceDataOptionsBuilder,
  StackingConfigBuilder,
  StackingMode,
} from '@grafana/grafana-foundation-sdk/common';
import {
  AnnotationQueryBuilder,
  CustomVariableBuilder,
  type Dashboard,
  DashboardBuilder,
  DashboardCursorSync,
  DashboardLinkBuilder,
  DashboardLinkType,
  MappingType,
  RowBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { PromQueryFormat } from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { Milliseconds, NoUnit, PercentUnit, RequestsPerSecond, Short } from '@grafana/grafana-foundation-sdk/units';
import {
  CALLS,
  errorRatioBy,
  finish,
  fixedColor,
  latencyQuery,
  legend,
  PROMETHEUS,
  promQuery,
  quantileBy,
  RECOMMENDATIONS_TIMEOUT_MS,
  rateBy,
  tooltip,
} from './common.js';

export const BLACK_FRIDAY_UID = 'black-friday';

/** The frontend's server spans of both traffic classes: browse (baseline) and checkout (demo). */
const FRONTEND_SERVER = [
  'service_name="frontend"',
  'span_kind="SPAN_KIND_SERVER"',
  'http_route=~"/api/browse|/api/checkout"',
  'traffic_type=~"$traffic_type"',
];
/** The recommendation service's Postgres queries (its pool wait is a span of its own). */
const RECOMMENDATION_QUERY = [
  'service_name="recommendation"',
  'span_kind="SPAN_KIND_CLIENT"',
  'db_system_name="postgresql"',
  'traffic_type=~"$traffic_type"',
];
const POOL_ACQUIRE = ['span_name="pg.pool.acquire"', 'traffic_type=~"$traffic_type"'];
const STORY_POOLS = 'db_client_connection_pool_name=~"checkout|recommendation"';

/** Browse is green, checkout orange: the same colours in every per-class panel. */
const classColors = <T extends { overrideByName(name: string, properties: { id: string; value: unknown }[]): T }>(panel: T): T =>
  panel.overrideByName('baseline', fixedColor('green')).overrideByName('demo', fixedColor('orange'));

const thresholds = (...steps: [number | null, string][]) =>
  new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps(steps.map(([value, color]) => ({ value, color })));

const series = (title: string, unit: string, description: string) =>
  new timeseries.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(PROMETHEUS)
    .unit(unit)
    .legend(legend())
    .tooltip(tooltip())
    .lineWidth(2)
    .fillOpacity(10)
    .height(8)
    .span(8);

const errorRatio = errorRatioBy(['traffic_type'], FRONTEND_SERVER);
const p95 = quantileBy(0.95, ['traffic_type'], FRONTEND_SERVER);

export function blackFridayDashboard(): Dashboard {
  const builder = new DashboardBuilder('Black Friday')
    .uid(BLACK_FRIDAY_UID)
    .description(
      'The Black Friday incident: browsing (baseline) stays healthy while checkout (demo) ramps from 800 to 4200 rpm, ' +
        'its error rate climbs to about 78 % and its p95 to the frontend’s 5 s recommendations timeout, until the fix.',
    )
    .tags(['black-friday-lab'])
    .readonly()
    .timezone('browser')
    .tooltip(DashboardCursorSync.Crosshair)
    .time({ from: 'now-30m', to: 'now' })
    .refresh('5s')
    .link(
      new DashboardLinkBuilder('Service RED')
        .type(DashboardLinkType.Link)
        .url('/d/service-red/service-red')
        .icon('dashboard')
        .tooltip('Rate, errors and duration of one service by route, and its calls to its dependencies')
        .keepTime(true),
    )
    .link(
      new DashboardLinkBuilder('Traces (Jaeger)')
        .type(DashboardLinkType.Link)
        .url('http://localhost:16686/search?service=frontend')
        .icon('external link')
        .tooltip('The traces behind these numbers in the Jaeger UI')
        .targetBlank(true),
    )
    .withVariable(
      new CustomVariableBuilder('traffic_type')
        .label('Traffic class')
        .description('baseline = POST /api/browse (stays healthy), demo = POST /api/checkout (the incident)')
        .values('baseline,demo')
        .multi(true)
        .includeAll(true)
        .allValue('.+')
        .current({ text: ['All'], value: ['$__all'] }),
    )
    .annotation(
      new AnnotationQueryBuilder()
        .name('Firing alerts')
        .datasource(PROMETHEUS)
        .enable(true)
        .iconColor('red')
        .expr('ALERTS{alertstate="firing"}')
        .step('10s')
        .titleFormat('{{alertname}}')
        .textFormat('{{alertname}} is firing (severity {{severity}})')
        .tagKeys('alertname,severity,traffic_type')
        .useValueForTime(false),
    )
    // --- Now ---------------------------------------------------------------
    .withPanel(
      new stat.PanelBuilder()
        .title('Demo minute')
        .description(
          'The demo minute of the running scenario (lab_demo_minute, the same in every service): 0 is the calm start, ' +
            'the ramp follows, the recovery minutes are the fix. "no scenario" between runs.',
        )
        .datasource(PROMETHEUS)
        .withTarget(promQuery('A', 'max(lab_demo_minute)', 'demo minute').instant())
        .unit(NoUnit)
        .decimals(0)
        .mappings([{ type: MappingType.ValueToText, options: { '-1': { text: 'no scenario', color: 'text' } } }])
        .thresholds(thresholds([null, 'blue']))
        .colorMode(BigValueColorMode.Value)
        .graphMode(BigValueGraphMode.None)
        .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
        .height(5)
        .span(4),
    )
    .withPanel(
      new stat.PanelBuilder()
        .title('Error rate now, by traffic class')
        .description(
          'Share of frontend requests that fail, per traffic class. Browse (baseline) stays at 0-2 %; checkout (demo) ' +
            'climbs to about 78 % at the peak and returns under 2 % after the fix. Red above 14.4 %: the error-budget burn alert.',
        )
        .datasource(PROMETHEUS)
        .withTarget(promQuery('A', errorRatio, '{{traffic_type}}'))
        .unit(PercentUnit)
        .decimals(1)
        .thresholds(thresholds([null, 'green'], [0.02, 'orange'], [0.144, 'red']))
        .colorMode(BigValueColorMode.Value)
        .graphMode(BigValueGraphMode.Area)
        .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
        .height(5)
        .span(10),
    )
    .withPanel(
      new stat.PanelBuilder()
        .title('p95 latency now, by traffic class')
        .description(
          'p95 of frontend request duration per traffic class. Browse stays at 250-500 ms; checkout goes from about 500 ms ' +
            'to about 5000 ms, the frontend’s timeout on recommendations. Red from 4 s: the checkout latency alert.',
        )
        .datasource(PROMETHEUS)
        .withTarget(promQuery('A', p95, '{{traffic_type}}'))
        .unit(Milliseconds)
        .decimals(0)
        .thresholds(thresholds([null, 'green'], [1000, 'orange'], [4000, 'red']))
        .colorMode(BigValueColorMode.Value)
        .graphMode(BigValueGraphMode.Area)
        .reduceOptions(new ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
        .height(5)
        .span(10),
    )
    // --- Traffic classes ---------------------------------------------------------
    .withRow(new RowBuilder('Browse (baseline) vs checkout (demo): rate, errors, latency'))
    .withPanel(
      classColors(
        series(
          'Request rate by traffic class',
          RequestsPerSecond,
          'Requests per second reaching the frontend. Baseline browsing holds about 100 rpm; demo checkout ramps 800 → 4200 rpm. ' +
            'Arrivals are open-model, so the rate does not drop when the system slows: the load keeps coming.',
        ).withTarget(promQuery('A', rateBy(CALLS, ['traffic_type'], FRONTEND_SERVER), '{{traffic_type}}')),
      ),
    )
    .withPanel(
      classColors(
        series(
          'Error rate by traffic class',
          PercentUnit,
          'Failed share of frontend requests. Browse stays green (0-2 %); checkout climbs from 0 % to about 78 % as ' +
            'recommendations time out and the checkout pool runs dry, then falls back after the fix. Dashed line: 14.4 %, ' +
            'the burn rate that pages (CheckoutErrorBudgetBurn).',
        )
          .withTarget(promQuery('A', errorRatio, '{{traffic_type}}'))
          .min(0)
          .max(1)
          .thresholds(thresholds([null, 'green'], [0.144, 'red']))
          .thresholdsStyle(new GraphThresholdsStyleConfigBuilder().mode(GraphThresholdsStyleMode.Dashed)),
      ),
    )
    .withPanel(
      classColors(
        series(
          'p95 latency by traffic class',
          Milliseconds,
          'p95 of frontend request duration. Browse stays at 250-500 ms; checkout climbs from about 500 ms to about 5000 ms, ' +
            'pinned at the frontend’s 5 s recommendations timeout (dashed line), and comes back after the fix. ' +
            'Exemplar points open their trace in Jaeger.',
        )
          .withTarget(latencyQuery('A', p95, '{{traffic_type}}'))
          .min(0)
          .thresholds(thresholds([null, 'green'], [RECOMMENDATIONS_TIMEOUT_MS, 'red']))
          .thresholdsStyle(new GraphThresholdsStyleConfigBuilder().mode(GraphThresholdsStyleMode.Dashed)),
      ),
    )
    // --- Why it fails ------------------------------------------------------------
    .withRow(new RowBuilder('Why checkout fails'))
    .withPanel(
      series(
        'Failure reasons over time',
        RequestsPerSecond,
        'Failed frontend requests per second by failure.reason. First "recommendations-timeout": the slowed recommendation ' +
          'query queues on its small pool and checkouts give up after 5 s; later also "pool-exhausted": the checkout ' +
          'database pool runs dry. Both disappear after the fix; browse has (almost) none.',
      )
        .withTarget(
          promQuery(
            'A',
            rateBy(CALLS, ['traffic_type', 'failure_reason'], [...FRONTEND_SERVER, 'status_code="STATUS_CODE_ERROR"']),
            '{{traffic_type}}: {{failure_reason}}',
          ),
        )
        .drawStyle(GraphDrawStyle.Bars)
        .fillOpacity(80)
        .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
        .overrideByRegexp('.*recommendations-timeout', fixedColor('orange'))
        .overrideByRegexp('.*pool-exhausted', fixedColor('red'))
        .span(14),
    )
    .withPanel(
      new table.PanelBuilder()
        .title('Checkout outcomes in the time range')
        .description(
          'Checkouts counted by the frontend (lab_checkout_outcomes_total) over the selected time range, by traffic class, ' +
            'outcome and failure reason: how many orders the incident cost.',
        )
        .datasource(PROMETHEUS)
        .withTarget(
          promQuery(
            'A',
            'sum by (traffic_type, outcome, failure_reason) (increase(lab_checkout_outcomes_total{traffic_type=~"$traffic_type"}[$__range]))',
          )
            .instant()
            .format(PromQueryFormat.Table),
        )
        .withTransformation({
          id: 'organize',
          options: {
            excludeByName: { Time: true },
            renameByName: { traffic_type: 'traffic class', failure_reason: 'failure reason', Value: 'checkouts' },
          },
        })
        .unit(Short)
        .decimals(0)
        .height(8)
        .span(10),
    )
    // --- Database ----------------------------------------------------------------
    .withRow(new RowBuilder('The database underneath'))
    .withPanel(
      classColors(
        series(
          'Recommendation query duration (p95)',
          Milliseconds,
          'p95 of the recommendation service’s Postgres query (its client spans). The scenario’s knob raises the query’s ' +
            'cost minute by minute; this is where the checkout slowdown starts. Exemplar points open their trace.',
        ).withTarget(latencyQuery('A', quantileBy(0.95, ['traffic_type'], RECOMMENDATION_QUERY), '{{traffic_type}}')),
      ),
    )
    .withPanel(
      series(
        'DB pool wait (p95 of pg.pool.acquire)',
        Milliseconds,
        'p95 time a request waits for a connection of its service’s bounded Postgres pool (pg.pool.acquire spans). ' +
          'When slow queries hold the recommendation pool, the wait grows towards the 5 s timeout: queueing, not the query, ' +
          'eats the budget. Exemplar points open their trace.',
      ).withTarget(latencyQuery('A', quantileBy(0.95, ['service_name'], POOL_ACQUIRE), '{{service_name}}')),
    )
    .withPanel(
      series(
        'DB pools: connections in use / requests waiting',
        Short,
        'Connections in use (solid) and requests waiting for one (dashed) in the checkout and recommendation pools. ' +
          'A full pool with a growing queue is the "pool-exhausted" failure; after the fix both drain.',
      )
        .withTarget(
          promQuery(
            'A',
            `sum by (db_client_connection_pool_name) (db_client_connection_count{${STORY_POOLS}, db_client_connection_state="used"})`,
            '{{db_client_connection_pool_name}} in use',
          ),
        )
        .withTarget(
          promQuery(
            'B',
            `sum by (db_client_connection_pool_name) (db_client_connection_pending_requests{${STORY_POOLS}})`,
            '{{db_client_connection_pool_name}} waiting',
          ),
        )
        .min(0)
        .decimals(0)
        .overrideByRegexp('.* waiting', [{ id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } }]),
    )
    .withPanel(
      series(
        'DB pools: share of time with a queue',
        PercentUnit,
        'How much of the time at least one request waited for a connection (the services look every 50 ms). ' +
          'Near 100 % the pool is dry: CheckoutDbPoolExhausted needs at least half of the time, so the burst the fix ' +
          'releases (many waiting for a fraction of a second) stays a short spike here.',
      )
        .withTarget(
          promQuery(
            'A',
            rateBy('lab_db_client_connection_waiting_time_seconds_total', ['db_client_connection_pool_name'], [STORY_POOLS]),
            '{{db_client_connection_pool_name}}',
          ),
        )
        .min(0)
        .max(1),
    );
  return finish(builder);
}
