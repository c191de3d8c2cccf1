/**
 * "Service RED" (uid service-red): rate, errors and duration of one service's server
 * spans per route, and of its client calls per dependency, from the span metrics.
 */
import { GraphThresholdsStyleConfigBuilder, GraphThresholdsStyleMode } from '@grafana/grafana-foundation-sdk/common';
import {
  type Dashboard,
  DashboardBuilder,
  DashboardCursorSync,
  DashboardLinkBuilder,
  DashboardLinkType,
  QueryVariableBuilder,
  RowBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  VariableRefresh,
  VariableSort,
} from '@grafana/grafana-foundation-sdk/dashboard';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { Milliseconds, PercentUnit, RequestsPerSecond } from '@grafana/grafana-foundation-sdk/units';
import { CALLS, errorRatioBy, finish, latencyQuery, legend, PROMETHEUS, promQuery, quantileBy, rateBy, tooltip } from './common.js';

export const SERVICE_RED_UID = 'service-red';

const SERVER = ['service_name="$service"', 'span_kind="SPAN_KIND_SERVER"'];
const CLIENT = ['service_name="$service"', 'span_kind="SPAN_KIND_CLIENT"'];
const SERVICES = `label_values(${CALLS}, service_name)`;

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
    .min(0)
    .height(9)
    .span(8);

const errorLine = () =>
  new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
    { value: null, color: 'green' },
    { value: 0.02, color: 'red' },
  ]);

/** p50, p95 and p99 of the span duration per the given labels, as queries A, B, C. */
const quantiles = (panel: timeseries.PanelBuilder, labels: string[], matchers: string[], legendFormat: string) =>
  panel
    .withTarget(latencyQuery('A', quantileBy(0.5, labels, matchers), `p50 ${legendFormat}`))
    .withTarget(latencyQuery('B', quantileBy(0.95, labels, matchers), `p95 ${legendFormat}`))
    .withTarget(latencyQuery('C', quantileBy(0.99, labels, matchers), `p99 ${legendFormat}`));

export function serviceRedDashboard(): Dashboard {
  const builder = new DashboardBuilder('Service RED')
    .uid(SERVICE_RED_UID)
    .description(
      'Rate, errors and duration (RED) of one service from the span metrics: its server spans per route, and its client ' +
        'calls per dependency. In the story, frontend /api/checkout degrades while /api/browse stays green; recommendation ' +
        'and its Postgres calls show where the time goes.',
    )
    .tags(['black-friday-lab'])
    .readonly()
    .timezone('browser')
    .tooltip(DashboardCursorSync.Crosshair)
    .time({ from: 'now-30m', to: 'now' })
    .refresh('5s')
    .link(
      new DashboardLinkBuilder('Black Friday')
        .type(DashboardLinkType.Link)
        .url('/d/black-friday/black-friday')
        .icon('dashboard')
        .tooltip('The incident story: browse vs checkout')
        .keepTime(true),
    )
    .withVariable(
      new QueryVariableBuilder('service')
        .label('Service')
        .description('service.name of the spans (every service that reports span metrics)')
        .datasource(PROMETHEUS)
        .query(SERVICES)
        .definition(SERVICES)
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .sort(VariableSort.AlphabeticalAsc)
        .current({ text: 'frontend', value: 'frontend' }),
    )
    .withRow(new RowBuilder('$service: server spans by route'))
    .withPanel(
      series(
        'Request rate by route',
        RequestsPerSecond,
        'Requests per second $service serves, per http.route (SERVER spans). For frontend: /api/checkout ramps with the ' +
          'demo traffic while /api/browse stays flat.',
      ).withTarget(promQuery('A', rateBy(CALLS, ['http_route'], SERVER), '{{http_route}}')),
    )
    .withPanel(
      series(
        'Error rate by route',
        PercentUnit,
        'Share of $service’s requests that end in an error status, per route. For frontend: /api/checkout climbs to about ' +
          '78 % at the peak of the incident, /api/browse stays near 0. Dashed line: 2 %.',
      )
        .withTarget(promQuery('A', errorRatioBy(['http_route'], SERVER), '{{http_route}}'))
        .max(1)
        .thresholds(errorLine())
        .thresholdsStyle(new GraphThresholdsStyleConfigBuilder().mode(GraphThresholdsStyleMode.Dashed)),
    )
    .withPanel(
      quantiles(
        series(
          'Duration by route (p50, p95, p99)',
          Milliseconds,
          'Server span duration of $service per route. For frontend: /api/checkout’s p95 rises to about 5000 ms (the ' +
            'recommendations timeout), /api/browse stays at 250-500 ms. Exemplar points open their trace in Jaeger.',
        ),
        ['http_route'],
        SERVER,
        '{{http_route}}',
      ),
    )
    .withRow(new RowBuilder('$service: client calls to its dependencies'))
    .withPanel(
      series(
        'Client call rate by dependency',
        RequestsPerSecond,
        'Calls per second $service makes (CLIENT spans), per peer.service and span name: HTTP calls to other services, ' +
          'Postgres and Redis.',
      ).withTarget(promQuery('A', rateBy(CALLS, ['peer_service', 'span_name'], CLIENT), '{{peer_service}} {{span_name}}')),
    )
    .withPanel(
      series(
        'Client error rate by dependency',
        PercentUnit,
        'Share of $service’s calls to each dependency that fail. For frontend: calls to product-catalog (recommendations) ' +
          'time out during the incident.',
      )
        .withTarget(promQuery('A', errorRatioBy(['peer_service', 'span_name'], CLIENT), '{{peer_service}} {{span_name}}'))
        .max(1)
        .thresholds(errorLine())
        .thresholdsStyle(new GraphThresholdsStyleConfigBuilder().mode(GraphThresholdsStyleMode.Dashed)),
    )
    .withPanel(
      series(
        'Client call duration by dependency (p95)',
        Milliseconds,
        'p95 duration of $service’s calls to each dependency: which callee the time is spent in. Exemplar points open their trace.',
      ).withTarget(latencyQuery('A', quantileBy(0.95, ['peer_service', 'span_name'], CLIENT), '{{peer_service}} {{span_name}}')),
    );
  return finish(builder);
}
